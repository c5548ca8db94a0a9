#include "row_groups.h"

#include <algorithm>
#include <utility>

#include "thread_pool.h"

namespace recforge {
namespace cpu {
namespace {

// Below this many positions the sort runs on one thread.
constexpr int64_t kMinParallelSort = 1 << 15;
constexpr int kMaxDigitBits = 12;

int bit_width(uint64_t x) {
  int bits = 0;
  for (; x != 0; x >>= 1) ++bits;
  return bits;
}

// [n * part / parts, n * (part + 1) / parts): the fixed partition every pass uses.
std::pair<int64_t, int64_t> part_range(int64_t n, int part, int parts) {
  return {n * part / parts, n * (part + 1) / parts};
}

// Offsets clamped into [0, n], as the kernels read them (see Inputs in kernels_impl.inc).
struct Bags {
  const int64_t* offsets;
  int64_t num_bags, n;

  int64_t at(int64_t k) const { return std::min(std::max<int64_t>(offsets[k], 0), n); }

  // The last bag k with at(k) <= position (a binary search; any bag when offsets are
  // malformed, which bounds_check="off" allows: the result is then arbitrary but in range).
  int64_t containing(int64_t position) const {
    int64_t lo = 0, hi = num_bags - 1;
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo + 1) / 2;
      if (at(mid) <= position) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    return lo;
  }
};

// keys[j] = the global row position j looks up, or `invalid` (an out-of-range index, or a
// position in no bag); bag[j] = its bag.
template <typename I>
void fill_keys(const Problem& p, uint64_t invalid, uint64_t* keys, int64_t* positions,
               int64_t* bag, int num_threads) {
  const I* indices = reinterpret_cast<const I*>(p.indices);
  const Bags bags{reinterpret_cast<const int64_t*>(p.offsets), p.num_bags(), p.num_indices};
  const int64_t B = p.batch_size;
  parallel_for(p.num_indices, 1 << 12, num_threads, [&](int64_t lo, int64_t hi) {
    int64_t k = bags.num_bags > 0 ? bags.containing(lo) : 0;
    for (int64_t j = lo; j < hi; ++j) {
      positions[j] = j;
      while (k + 1 < bags.num_bags && bags.at(k + 1) <= j) ++k;
      bag[j] = k;
      keys[j] = invalid;
      if (bags.num_bags == 0) continue;
      const int64_t begin = bags.at(k);
      const int64_t end = std::max(begin, bags.at(k + 1));
      const int64_t t = k / B;
      const int64_t index = indices[j];
      if (begin <= j && j < end && index >= 0 && index < p.rows[t]) {
        keys[j] = static_cast<uint64_t>(p.row_base[t] + index);
      }
    }
  });
}

}  // namespace

void RowGroups::build(const Problem& p, int num_threads) {
  const int64_t n = p.num_indices;
  for (int i = 0; i < 2; ++i) {
    key_buffers_[i].resize(n);
    position_buffers_[i].resize(n);
  }
  bag_.resize(n);
  uint64_t* keys = key_buffers_[0].data();
  int64_t* positions = position_buffers_[0].data();
  uint64_t* keys_out = key_buffers_[1].data();
  int64_t* positions_out = position_buffers_[1].data();
  const uint64_t invalid = static_cast<uint64_t>(p.total_rows);
  if (p.index_bits == 32) {
    fill_keys<int32_t>(p, invalid, keys, positions, bag_.data(), num_threads);
  } else {
    fill_keys<int64_t>(p, invalid, keys, positions, bag_.data(), num_threads);
  }

  // Stable LSD radix sort by key. Each part counts its digits, parts scatter in order, so the
  // result is the stable order whatever the number of parts.
  const int parts = n < kMinParallelSort ? 1 : std::max(num_threads, 1);
  const int bits = bit_width(invalid);
  const int passes = (bits + kMaxDigitBits - 1) / kMaxDigitBits;
  const int digit_bits = passes > 0 ? (bits + passes - 1) / passes : 0;
  const int64_t buckets = int64_t{1} << digit_bits;
  const uint64_t mask = static_cast<uint64_t>(buckets - 1);
  for (int shift = 0; shift < bits; shift += digit_bits) {
    counts_.assign(parts * buckets, 0);
    parallel_for(parts, 1, parts, [&](int64_t lo, int64_t hi) {
      for (int64_t part = lo; part < hi; ++part) {
        int64_t* count = counts_.data() + part * buckets;
        const auto [begin, end] = part_range(n, static_cast<int>(part), parts);
        for (int64_t i = begin; i < end; ++i) ++count[(keys[i] >> shift) & mask];
      }
    });
    int64_t total = 0;
    for (int64_t digit = 0; digit < buckets; ++digit) {
      for (int part = 0; part < parts; ++part) {
        int64_t& count = counts_[part * buckets + digit];
        const int64_t here = count;
        count = total;
        total += here;
      }
    }
    parallel_for(parts, 1, parts, [&](int64_t lo, int64_t hi) {
      for (int64_t part = lo; part < hi; ++part) {
        int64_t* next = counts_.data() + part * buckets;
        const auto [begin, end] = part_range(n, static_cast<int>(part), parts);
        for (int64_t i = begin; i < end; ++i) {
          const int64_t at = next[(keys[i] >> shift) & mask]++;
          keys_out[at] = keys[i];
          positions_out[at] = positions[i];
        }
      }
    });
    std::swap(keys, keys_out);
    std::swap(positions, positions_out);
  }
  keys_ = keys;
  positions_ = positions;

  // Groups: a slot starts one where its key differs from the previous slot's; invalid keys
  // sort last and form none.
  const int64_t valid = std::lower_bound(keys, keys + n, invalid) - keys;
  counts_.assign(parts + 1, 0);
  parallel_for(parts, 1, parts, [&](int64_t lo, int64_t hi) {
    for (int64_t part = lo; part < hi; ++part) {
      const auto [begin, end] = part_range(valid, static_cast<int>(part), parts);
      int64_t starts = 0;
      for (int64_t i = begin; i < end; ++i) starts += i == 0 || keys[i] != keys[i - 1];
      counts_[part + 1] = starts;
    }
  });
  for (int part = 0; part < parts; ++part) counts_[part + 1] += counts_[part];
  begin_.resize(counts_[parts] + 1);
  parallel_for(parts, 1, parts, [&](int64_t lo, int64_t hi) {
    for (int64_t part = lo; part < hi; ++part) {
      const auto [begin, end] = part_range(valid, static_cast<int>(part), parts);
      int64_t g = counts_[part];
      for (int64_t i = begin; i < end; ++i) {
        if (i == 0 || keys[i] != keys[i - 1]) begin_[g++] = i;
      }
    }
  });
  begin_.back() = valid;

  slot_bag_.resize(valid);
  parallel_for(valid, 1 << 12, num_threads, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) slot_bag_[i] = bag_[positions[i]];
  });
}

void RowGroups::shrink_to(int64_t bytes) {
  const int64_t held = static_cast<int64_t>(
      (key_buffers_[0].capacity() + key_buffers_[1].capacity()) * sizeof(uint64_t) +
      (position_buffers_[0].capacity() + position_buffers_[1].capacity() + bag_.capacity() +
       slot_bag_.capacity() + begin_.capacity()) *
          sizeof(int64_t));
  if (held <= bytes) return;
  *this = RowGroups();
}

}  // namespace cpu
}  // namespace recforge
