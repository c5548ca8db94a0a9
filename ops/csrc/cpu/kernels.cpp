#include "kernels.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include "../common/row_update.h"
#include "thread_pool.h"

namespace recforge {
namespace cpu {
namespace {

// Below this many multiply-adds a call runs on the calling thread: waking workers costs more.
constexpr int64_t kMinParallelWork = 1 << 15;

int threads_for(const Problem& p, int num_threads) {
  return p.num_indices * p.max_dim < kMinParallelWork ? 1 : num_threads;
}

template <typename T>
struct Tag {
  using type = T;
};

// Calls fn(Tag<Scalar>, Tag<Index>) for the problem's weight and index types.
template <typename Fn>
void dispatch(const Problem& p, Fn&& fn) {
  auto by_index = [&](auto scalar) {
    if (p.index_bits == 32) {
      fn(scalar, Tag<int32_t>{});
    } else {
      fn(scalar, Tag<int64_t>{});
    }
  };
  if (p.scalar_bits == 32) {
    by_index(Tag<float>{});
  } else {
    by_index(Tag<double>{});
  }
}

template <typename S>
inline void axpy(int64_t n, S a, const S* __restrict x, S* __restrict y) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

template <typename S>
inline S dot(int64_t n, const S* __restrict x, const S* __restrict y) {
  S sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += x[i] * y[i];
  return sum;
}

// Typed access to a problem's inputs. Bag ranges are clamped to the indices, and table ranges are
// made disjoint and ascending, so malformed offsets (possible with bounds_check="off") can never
// make a kernel address memory outside its buffers.
template <typename S, typename I>
struct Inputs {
  const Problem& p;
  const I* indices;
  const int64_t* offsets;
  const S* psw;

  explicit Inputs(const Problem& problem)
      : p(problem),
        indices(reinterpret_cast<const I*>(problem.indices)),
        offsets(reinterpret_cast<const int64_t*>(problem.offsets)),
        psw(reinterpret_cast<const S*>(problem.per_sample_weights)) {}

  int64_t clamp(int64_t v) const { return std::min(std::max<int64_t>(v, 0), p.num_indices); }

  // Positions [begin, end) of bag k = t * B + b.
  std::pair<int64_t, int64_t> bag(int64_t k) const {
    const int64_t begin = clamp(offsets[k]);
    return {begin, std::max(begin, clamp(offsets[k + 1]))};
  }

  // Positions [begin, end) of all bags of each table.
  std::vector<std::pair<int64_t, int64_t>> table_ranges() const {
    std::vector<std::pair<int64_t, int64_t>> ranges(p.num_tables());
    int64_t previous_end = 0;
    for (int64_t t = 0; t < p.num_tables(); ++t) {
      const int64_t begin = std::max(previous_end, clamp(offsets[t * p.batch_size]));
      const int64_t end = std::max(begin, clamp(offsets[(t + 1) * p.batch_size]));
      ranges[t] = {begin, end};
      previous_end = end;
    }
    return ranges;
  }

  bool valid(int64_t t, int64_t index) const { return index >= 0 && index < p.rows[t]; }

  S sample_weight(int64_t position) const { return psw ? psw[position] : S(1); }

  // The factor mean pooling applies to every row of a bag of `length` positions.
  S pooling_scale(int64_t length) const {
    return p.mean && length > 0 ? S(1) / static_cast<S>(length) : S(1);
  }
};

template <typename S, typename I>
void forward_impl(const Problem& p, const S* weights, S* out, int num_threads) {
  const Inputs<S, I> in(p);
  const int64_t B = p.batch_size;
  parallel_for(p.num_bags(), 16, num_threads, [&](int64_t lo, int64_t hi) {
    for (int64_t k = lo; k < hi; ++k) {
      const int64_t t = k / B;
      const int64_t D = p.dims[t];
      const S* table = weights + p.weight_offset[t];
      S* o = out + (k % B) * p.total_dim + p.column_offset[t];
      std::fill(o, o + D, S(0));
      const auto [begin, end] = in.bag(k);
      for (int64_t j = begin; j < end; ++j) {
        const int64_t index = in.indices[j];
        if (!in.valid(t, index)) continue;
        if (j + 4 < end && in.valid(t, in.indices[j + 4])) {
          __builtin_prefetch(table + static_cast<int64_t>(in.indices[j + 4]) * D);
        }
        axpy(D, in.sample_weight(j), table + index * D, o);
      }
      const S scale = in.pooling_scale(end - begin);
      if (scale != S(1)) {
        for (int64_t d = 0; d < D; ++d) o[d] *= scale;
      }
    }
  });
}

template <typename S, typename I>
int64_t first_invalid_impl(const Problem& p, int num_threads) {
  const Inputs<S, I> in(p);
  const auto ranges = in.table_ranges();
  for (int64_t t = 0; t < p.num_tables(); ++t) {
    const int64_t begin = ranges[t].first;
    std::atomic<int64_t> first{std::numeric_limits<int64_t>::max()};
    parallel_for(ranges[t].second - begin, 1 << 15, num_threads, [&](int64_t lo, int64_t hi) {
      for (int64_t j = begin + lo; j < begin + hi; ++j) {
        if (in.valid(t, in.indices[j])) continue;
        int64_t seen = first.load();
        while (j < seen && !first.compare_exchange_weak(seen, j)) {
        }
        return;
      }
    });
    if (first.load() != std::numeric_limits<int64_t>::max()) return first.load();
  }
  return -1;
}

// Stable LSD radix sort of (key, value) pairs by key, keys < 2^bits. Sorts in place.
void radix_sort(uint64_t* keys, int64_t* values, uint64_t* keys_tmp, int64_t* values_tmp,
                int64_t n, int bits) {
  constexpr int kDigitBits = 11;
  constexpr uint64_t kMask = (1u << kDigitBits) - 1;
  if (n <= 1 || bits == 0) return;
  std::vector<int64_t> count(kMask + 1);
  uint64_t* src_keys = keys;
  int64_t* src_values = values;
  uint64_t* dst_keys = keys_tmp;
  int64_t* dst_values = values_tmp;
  for (int shift = 0; shift < bits; shift += kDigitBits) {
    std::fill(count.begin(), count.end(), 0);
    for (int64_t i = 0; i < n; ++i) ++count[(src_keys[i] >> shift) & kMask];
    int64_t total = 0;
    for (auto& c : count) {
      const int64_t here = c;
      c = total;
      total += here;
    }
    for (int64_t i = 0; i < n; ++i) {
      const int64_t at = count[(src_keys[i] >> shift) & kMask]++;
      dst_keys[at] = src_keys[i];
      dst_values[at] = src_values[i];
    }
    std::swap(src_keys, dst_keys);
    std::swap(src_values, dst_values);
  }
  if (src_keys != keys) {
    std::copy(src_keys, src_keys + n, keys);
    std::copy(src_values, src_values + n, values);
  }
}

int bit_width(uint64_t x) {
  int bits = 0;
  while (x != 0) {
    ++bits;
    x >>= 1;
  }
  return bits;
}

// The batch's valid positions grouped by (table, row), each group in position order.
struct Segments {
  std::unique_ptr<uint64_t[]> rows;      // the row (index within its table) at each slot
  std::unique_ptr<int64_t[]> positions;  // the position in `indices` at each slot
  std::unique_ptr<int32_t[]> sample;     // the sample b of each position
  std::vector<int64_t> begin;            // segment u covers slots [begin[u], end[u])
  std::vector<int64_t> end;
  std::vector<int32_t> table;  // the table of segment u
};

template <typename S, typename I>
Segments build_segments(const Inputs<S, I>& in, int num_threads) {
  const Problem& p = in.p;
  const int64_t n = p.num_indices;
  const int64_t T = p.num_tables();
  const int64_t B = p.batch_size;
  Segments s;
  s.rows.reset(new uint64_t[n]);
  s.positions.reset(new int64_t[n]);
  s.sample.reset(new int32_t[n]);
  std::unique_ptr<uint64_t[]> rows_tmp(new uint64_t[n]);
  std::unique_ptr<int64_t[]> positions_tmp(new int64_t[n]);

  std::fill(s.sample.get(), s.sample.get() + n, 0);
  parallel_for(p.num_bags(), 64, num_threads, [&](int64_t lo, int64_t hi) {
    for (int64_t k = lo; k < hi; ++k) {
      const auto [begin, end] = in.bag(k);
      std::fill(s.sample.get() + begin, s.sample.get() + end, static_cast<int32_t>(k % B));
    }
  });

  // Per table: gather its valid positions into its own slot range and sort them by row.
  const auto ranges = in.table_ranges();
  std::vector<int64_t> valid_end(T), segments_of(T);
  parallel_for(T, 1, num_threads, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const auto [begin, end] = ranges[t];
      int64_t slot = begin;
      for (int64_t j = begin; j < end; ++j) {
        const int64_t index = in.indices[j];
        if (!in.valid(t, index)) continue;
        s.rows[slot] = static_cast<uint64_t>(index);
        s.positions[slot] = j;
        ++slot;
      }
      radix_sort(s.rows.get() + begin, s.positions.get() + begin, rows_tmp.get() + begin,
                 positions_tmp.get() + begin, slot - begin,
                 bit_width(static_cast<uint64_t>(std::max<int64_t>(p.rows[t] - 1, 0))));
      int64_t segments = slot > begin ? 1 : 0;
      for (int64_t j = begin + 1; j < slot; ++j) segments += s.rows[j] != s.rows[j - 1];
      valid_end[t] = slot;
      segments_of[t] = segments;
    }
  });

  std::vector<int64_t> first_segment(T + 1, 0);
  for (int64_t t = 0; t < T; ++t) first_segment[t + 1] = first_segment[t] + segments_of[t];
  const int64_t U = first_segment[T];
  s.begin.resize(U);
  s.end.resize(U);
  s.table.resize(U);
  parallel_for(T, 1, num_threads, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      int64_t u = first_segment[t];
      for (int64_t j = ranges[t].first; j < valid_end[t]; ++j) {
        if (j > ranges[t].first && s.rows[j] == s.rows[j - 1]) continue;
        if (u > first_segment[t]) s.end[u - 1] = j;
        s.begin[u] = j;
        s.table[u] = static_cast<int32_t>(t);
        ++u;
      }
      if (u > first_segment[t]) s.end[u - 1] = valid_end[t];
    }
  });
  return s;
}

// Writes a row's aggregated gradient into a dense gradient or applies the optimizer to the row.
template <typename S>
struct RowWriter {
  const Problem& p;
  Coefs<S> c;
  S* target;
  S* m1;
  S* m2;

  RowWriter(const Problem& problem, const UpdateArgs& u)
      : p(problem),
        c(make_coefs<S>(u)),
        target(reinterpret_cast<S*>(u.target)),
        m1(reinterpret_cast<S*>(u.momentum1)),
        m2(reinterpret_cast<S*>(u.momentum2)) {}

  void operator()(int64_t t, int64_t row, const S* g) const {
    const int64_t D = p.dims[t];
    const int64_t at = p.weight_offset[t] + row * D;
    S* w = target + at;
    switch (c.kind) {
      case Update::kGradient:
        std::copy(g, g + D, w);
        break;
      case Update::kSgd:
        for (int64_t d = 0; d < D; ++d) sgd_step(w[d], g[d], c);
        break;
      case Update::kAdagrad:
        for (int64_t d = 0; d < D; ++d) adagrad_step(w[d], m1[at + d], g[d], c);
        break;
      case Update::kRowwiseAdagrad: {
        const S factor = rowwise_adagrad_factor(m1[p.row_base[t] + row],
                                                dot(D, g, g) / static_cast<S>(D), c);
        axpy(D, -factor, g, w);
        break;
      }
      case Update::kAdam:
        for (int64_t d = 0; d < D; ++d) adam_step(w[d], m1[at + d], m2[at + d], g[d], c);
        break;
    }
  }
};

template <typename S, typename I>
void backward_impl(const Problem& p, const S* grad_out, const UpdateArgs& update,
                   int num_threads) {
  const Inputs<S, I> in(p);
  const Segments s = build_segments(in, num_threads);
  const RowWriter<S> write(p, update);
  const int64_t B = p.batch_size;
  parallel_for(static_cast<int64_t>(s.begin.size()), 8, num_threads, [&](int64_t lo, int64_t hi) {
    std::vector<S> acc(p.max_dim);
    for (int64_t u = lo; u < hi; ++u) {
      const int64_t t = s.table[u];
      const int64_t D = p.dims[t];
      std::fill(acc.begin(), acc.begin() + D, S(0));
      for (int64_t j = s.begin[u]; j < s.end[u]; ++j) {
        const int64_t position = s.positions[j];
        const int64_t b = s.sample[position];
        const auto [begin, end] = in.bag(t * B + b);
        const S coeff = in.sample_weight(position) * in.pooling_scale(end - begin);
        axpy(D, coeff, grad_out + b * p.total_dim + p.column_offset[t], acc.data());
      }
      write(t, static_cast<int64_t>(s.rows[s.begin[u]]), acc.data());
    }
  });
}

template <typename S, typename I>
void grad_psw_impl(const Problem& p, const S* grad_out, const S* weights, S* grad_psw,
                   int num_threads) {
  const Inputs<S, I> in(p);
  const int64_t B = p.batch_size;
  parallel_for(p.num_bags(), 16, num_threads, [&](int64_t lo, int64_t hi) {
    for (int64_t k = lo; k < hi; ++k) {
      const int64_t t = k / B;
      const int64_t D = p.dims[t];
      const S* table = weights + p.weight_offset[t];
      const S* g = grad_out + (k % B) * p.total_dim + p.column_offset[t];
      const auto [begin, end] = in.bag(k);
      const S scale = in.pooling_scale(end - begin);
      for (int64_t j = begin; j < end; ++j) {
        const int64_t index = in.indices[j];
        grad_psw[j] = in.valid(t, index) ? scale * dot(D, g, table + index * D) : S(0);
      }
    }
  });
}

}  // namespace

void forward(const Problem& p, uintptr_t weights, uintptr_t out, int num_threads) {
  dispatch(p, [&](auto scalar, auto index) {
    using S = typename decltype(scalar)::type;
    using I = typename decltype(index)::type;
    forward_impl<S, I>(p, reinterpret_cast<const S*>(weights), reinterpret_cast<S*>(out),
                       threads_for(p, num_threads));
  });
}

int64_t first_invalid_index(const Problem& p, int num_threads) {
  int64_t first = -1;
  dispatch(p, [&](auto scalar, auto index) {
    using S = typename decltype(scalar)::type;
    using I = typename decltype(index)::type;
    first = first_invalid_impl<S, I>(p, threads_for(p, num_threads));
  });
  return first;
}

void backward(const Problem& p, uintptr_t grad_out, const UpdateArgs& update, int num_threads) {
  dispatch(p, [&](auto scalar, auto index) {
    using S = typename decltype(scalar)::type;
    using I = typename decltype(index)::type;
    backward_impl<S, I>(p, reinterpret_cast<const S*>(grad_out), update,
                        threads_for(p, num_threads));
  });
}

void grad_per_sample_weights(const Problem& p, uintptr_t grad_out, uintptr_t weights,
                             uintptr_t grad_psw, int num_threads) {
  dispatch(p, [&](auto scalar, auto index) {
    using S = typename decltype(scalar)::type;
    using I = typename decltype(index)::type;
    grad_psw_impl<S, I>(p, reinterpret_cast<const S*>(grad_out),
                        reinterpret_cast<const S*>(weights), reinterpret_cast<S*>(grad_psw),
                        threads_for(p, num_threads));
  });
}

}  // namespace cpu
}  // namespace recforge
