// CUDA kernels: one warp per bag (forward, per-sample-weight gradient) or per touched row
// (backward); lanes stride over the embedding dimension so every row read is coalesced.
#include <cuda_runtime.h>

#include <algorithm>
#include <initializer_list>
#include <type_traits>
#include <stdexcept>
#include <string>

#include "../common/row_update.h"
#include "kernels.h"

namespace recforge {
namespace cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 4;
constexpr size_t kMaxSharedBytes = 48 * 1024;

struct Tables {
  const int64_t* rows;
  const int64_t* dims;
  const int64_t* weight_offset;
  const int64_t* column_offset;
  const int64_t* row_base;
};

Tables tables_of(const Problem& p, const Launch& launch) {
  const auto* base = reinterpret_cast<const int64_t*>(launch.tables);
  const int64_t T = p.num_tables();
  return {base, base + T, base + 2 * T, base + 3 * T, base + 4 * T};
}

// The call's inputs as the kernels see them; bag ranges are clamped to the indices.
template <typename S, typename I>
struct Args {
  Tables tables;
  const I* indices;
  const int64_t* offsets;
  const S* psw;
  int64_t batch_size, num_bags, num_indices, total_dim, total_rows;
  bool mean;

  __device__ int64_t clamp(int64_t v) const { return v < 0 ? 0 : (v > num_indices ? num_indices : v); }
  __device__ void bag(int64_t k, int64_t& begin, int64_t& end) const {
    begin = clamp(offsets[k]);
    end = clamp(offsets[k + 1]);
    if (end < begin) end = begin;
  }
  __device__ S scale(int64_t length) const {
    return mean && length > 0 ? S(1) / static_cast<S>(length) : S(1);
  }
};

template <typename S, typename I>
Args<S, I> args_of(const Problem& p, const Launch& launch) {
  return {tables_of(p, launch),
          reinterpret_cast<const I*>(p.indices),
          reinterpret_cast<const int64_t*>(p.offsets),
          reinterpret_cast<const S*>(p.per_sample_weights),
          p.batch_size,
          p.num_bags(),
          p.num_indices,
          p.total_dim,
          p.total_rows,
          p.mean};
}

template <typename S>
__device__ S warp_sum(S value) {
  for (int shift = kWarp / 2; shift > 0; shift /= 2) value += __shfl_xor_sync(0xffffffffu, value, shift);
  return value;
}

__device__ int64_t global_warp() {
  return (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
}

// V consecutive scalars moved as one 16-byte access (V = 1: plain scalars). A lane owns V
// columns, so a warp covers 32 * V columns of a row per pass.
template <typename S, int V>
struct alignas(sizeof(S) * V) Pack {
  S v[V];
};

template <typename S, int V>
__device__ Pack<S, V> zero_pack() {
  Pack<S, V> p;
#pragma unroll
  for (int i = 0; i < V; ++i) p.v[i] = S(0);
  return p;
}

template <typename S, int V>
__device__ Pack<S, V> load_pack(const S* at) {
  return *reinterpret_cast<const Pack<S, V>*>(at);
}

template <typename S, int V>
__device__ void add_scaled(Pack<S, V>& acc, S weight, const Pack<S, V>& row) {
#pragma unroll
  for (int i = 0; i < V; ++i) acc.v[i] += weight * row.v[i];
}

constexpr int kUnroll = 4;  // row loads in flight per lane before they are summed
constexpr unsigned kAllLanes = 0xffffffffu;

// Sums weight_i * rows[offset_i + d .. + V) over the `count` (<= 32) items whose offset and weight
// lane i holds (offset < 0: skip), in item order. Every lane of the warp must call it.
template <typename S, int V>
__device__ void gather_sum(Pack<S, V>& acc, const S* __restrict__ rows, int64_t my_offset,
                           S my_weight, int count, int64_t d, bool active) {
  int i = 0;
  for (; i + kUnroll <= count; i += kUnroll) {
    Pack<S, V> loaded[kUnroll];
    S weight[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t offset = __shfl_sync(kAllLanes, my_offset, i + u);
      weight[u] = __shfl_sync(kAllLanes, my_weight, i + u);
      loaded[u] = active && offset >= 0 ? load_pack<S, V>(rows + offset + d) : zero_pack<S, V>();
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) add_scaled(acc, weight[u], loaded[u]);
  }
  for (; i < count; ++i) {
    const int64_t offset = __shfl_sync(kAllLanes, my_offset, i);
    const S weight = __shfl_sync(kAllLanes, my_weight, i);
    if (active && offset >= 0) add_scaled(acc, weight, load_pack<S, V>(rows + offset + d));
  }
}

// Lanes first load 32 of the bag's indices together, then every lane sums all 32 rows for its
// columns with several row loads in flight: no load waits on the one before.
template <typename S, typename I, int V>
__global__ void forward_kernel(Args<S, I> a, const S* __restrict__ weights, S* __restrict__ out) {
  const int64_t k = global_warp();
  if (k >= a.num_bags) return;
  const int lane = threadIdx.x % kWarp;
  const int64_t t = k / a.batch_size, b = k % a.batch_size;
  const int64_t D = a.tables.dims[t], E = a.tables.rows[t];
  const S* table = weights + a.tables.weight_offset[t];
  int64_t begin, end;
  a.bag(k, begin, end);
  const S scale = a.scale(end - begin);
  S* o = out + b * a.total_dim + a.tables.column_offset[t];
  for (int64_t d0 = 0; d0 < D; d0 += kWarp * V) {
    const int64_t d = d0 + lane * V;
    const bool active = d < D;
    Pack<S, V> acc = zero_pack<S, V>();
    for (int64_t j0 = begin; j0 < end; j0 += kWarp) {
      const int count = static_cast<int>(end - j0 < kWarp ? end - j0 : kWarp);
      int64_t my_offset = -1;
      S my_weight = 0;
      if (lane < count) {
        const int64_t index = a.indices[j0 + lane];
        my_offset = index >= 0 && index < E ? index * D : -1;
        my_weight = a.psw ? a.psw[j0 + lane] : S(1);
      }
      gather_sum(acc, table, my_offset, my_weight, count, d, active);
    }
    if (!active) continue;
#pragma unroll
    for (int i = 0; i < V; ++i) acc.v[i] *= scale;
    *reinterpret_cast<Pack<S, V>*>(o + d) = acc;
  }
}

template <typename S, typename I>
__global__ void psw_grad_kernel(Args<S, I> a, const S* __restrict__ grad_out,
                                const S* __restrict__ weights, S* __restrict__ grad_psw) {
  const int64_t k = global_warp();
  if (k >= a.num_bags) return;
  const int lane = threadIdx.x % kWarp;
  const int64_t t = k / a.batch_size, b = k % a.batch_size;
  const int64_t D = a.tables.dims[t], E = a.tables.rows[t];
  const S* table = weights + a.tables.weight_offset[t];
  const S* g = grad_out + b * a.total_dim + a.tables.column_offset[t];
  int64_t begin, end;
  a.bag(k, begin, end);
  const S scale = a.scale(end - begin);
  for (int64_t j = begin; j < end; ++j) {
    const int64_t index = a.indices[j];
    const bool valid = index >= 0 && index < E;
    S partial = 0;
    if (valid) {
      for (int64_t d = lane; d < D; d += kWarp) partial += g[d] * table[index * D + d];
    }
    partial = warp_sum(partial);
    if (lane == 0) grad_psw[j] = valid ? partial * scale : S(0);
  }
}

// One warp per touched row: lanes load 32 occurrences' gradient-row offsets and coefficients
// together, then sum them in position order (deterministic) and apply the update.
template <typename S, typename I, int V>
__global__ void backward_kernel(Args<S, I> a, Segments s, const S* __restrict__ grad_out,
                                Coefs<S> c, S* target, S* m1, S* m2, int64_t max_dim) {
  extern __shared__ unsigned char shared[];
  const int64_t u = global_warp();
  if (u >= s.num_segments) return;
  const int lane = threadIdx.x % kWarp;
  const auto* positions = reinterpret_cast<const int64_t*>(s.positions);
  const auto* begin = reinterpret_cast<const int64_t*>(s.begin);
  const auto* bag_of = reinterpret_cast<const int64_t*>(s.bag_of_position);
  const int64_t global_row = reinterpret_cast<const int64_t*>(s.row)[u];
  if (global_row < 0 || global_row >= a.total_rows) return;  // invalid indices sort last
  const int64_t first = begin[u], last = begin[u + 1];
  const int64_t t = bag_of[positions[first]] / a.batch_size;
  const int64_t D = a.tables.dims[t];
  const int64_t row = global_row - a.tables.row_base[t];
  const int64_t at = a.tables.weight_offset[t] + row * D;
  const S* g_base = grad_out + a.tables.column_offset[t];
  S* acc = reinterpret_cast<S*>(shared) + (threadIdx.x / kWarp) * max_dim;

  S square_sum = 0;
  for (int64_t d0 = 0; d0 < D; d0 += kWarp * V) {
    const int64_t d = d0 + lane * V;
    const bool active = d < D;
    Pack<S, V> g = zero_pack<S, V>();
    for (int64_t j0 = first; j0 < last; j0 += kWarp) {
      const int count = static_cast<int>(last - j0 < kWarp ? last - j0 : kWarp);
      int64_t my_offset = -1;
      S my_coeff = 0;
      if (lane < count) {
        const int64_t position = positions[j0 + lane];
        const int64_t k = bag_of[position];
        my_offset = (k % a.batch_size) * a.total_dim;
        my_coeff = a.psw ? a.psw[position] : S(1);
        if (a.mean) {
          int64_t bag_begin, bag_end;
          a.bag(k, bag_begin, bag_end);
          my_coeff *= a.scale(bag_end - bag_begin);
        }
      }
      gather_sum(g, g_base, my_offset, my_coeff, count, d, active);
    }
    if (!active) continue;
#pragma unroll
    for (int i = 0; i < V; ++i) {
      const int64_t w = at + d + i;
      switch (c.kind) {
        case Update::kGradient:
          target[w] = g.v[i];
          break;
        case Update::kSgd:
          sgd_step(target[w], g.v[i], c);
          break;
        case Update::kAdagrad:
          adagrad_step(target[w], m1[w], g.v[i], c);
          break;
        case Update::kAdam:
          adam_step(target[w], m1[w], m2[w], g.v[i], c);
          break;
        case Update::kRowwiseAdagrad:
          acc[d + i] = g.v[i];
          square_sum += g.v[i] * g.v[i];
          break;
      }
    }
  }
  if (c.kind != Update::kRowwiseAdagrad) return;
  square_sum = warp_sum(square_sum);
  S factor = 0;
  if (lane == 0) {
    factor = rowwise_adagrad_factor(m1[a.tables.row_base[t] + row], square_sum / static_cast<S>(D), c);
  }
  factor = __shfl_sync(kAllLanes, factor, 0);
  __syncwarp();
  for (int64_t d = lane; d < D; d += kWarp) target[at + d] -= factor * acc[d];
}

void check_launch(const char* what) {
  const cudaError_t error = cudaGetLastError();
  if (error != cudaSuccess) {
    throw std::runtime_error(std::string("CUDA ") + what + " failed: " + cudaGetErrorString(error));
  }
}

unsigned int blocks_for(int64_t warps, int warps_per_block) {
  return static_cast<unsigned int>((warps + warps_per_block - 1) / warps_per_block);
}

template <typename Fn>
void dispatch(const Problem& p, Fn&& fn) {
  if (p.scalar_bits == 32) {
    if (p.index_bits == 32) fn(float{}, int32_t{}); else fn(float{}, int64_t{});
  } else {
    if (p.index_bits == 32) fn(double{}, int32_t{}); else fn(double{}, int64_t{});
  }
}

// 16-byte packs when every table's width is a multiple of one and the gathered or written rows
// start 16-byte aligned (then every table, row and column block does too); else scalars.
template <typename S>
bool packs_fit(const Problem& p, std::initializer_list<uintptr_t> pointers) {
  constexpr int64_t kPack = 16 / sizeof(S);
  for (const int64_t dim : p.dims) {
    if (dim % kPack != 0) return false;
  }
  for (const uintptr_t pointer : pointers) {
    if (pointer % 16 != 0) return false;
  }
  return true;
}

// Calls fn(Pack width) with 16 / sizeof(S) when packs fit, else 1.
template <typename S, typename Fn>
void with_pack(bool fits, Fn&& fn) {
  if (fits) {
    fn(std::integral_constant<int, 16 / sizeof(S)>{});
  } else {
    fn(std::integral_constant<int, 1>{});
  }
}

}  // namespace

void forward(const Problem& p, const Launch& launch, uintptr_t weights, uintptr_t out) {
  if (p.num_bags() == 0) return;
  dispatch(p, [&](auto scalar, auto index) {
    using S = decltype(scalar);
    using I = decltype(index);
    with_pack<S>(packs_fit<S>(p, {weights, out}), [&](auto pack) {
      forward_kernel<S, I, decltype(pack)::value>
          <<<blocks_for(p.num_bags(), kWarpsPerBlock), kWarpsPerBlock * kWarp, 0,
             reinterpret_cast<cudaStream_t>(launch.stream)>>>(
              args_of<S, I>(p, launch), reinterpret_cast<const S*>(weights), reinterpret_cast<S*>(out));
    });
  });
  check_launch("forward");
}

void grad_per_sample_weights(const Problem& p, const Launch& launch, uintptr_t grad_out,
                             uintptr_t weights, uintptr_t grad_psw) {
  if (p.num_bags() == 0) return;
  dispatch(p, [&](auto scalar, auto index) {
    using S = decltype(scalar);
    using I = decltype(index);
    psw_grad_kernel<S, I><<<blocks_for(p.num_bags(), kWarpsPerBlock), kWarpsPerBlock * kWarp, 0,
                            reinterpret_cast<cudaStream_t>(launch.stream)>>>(
        args_of<S, I>(p, launch), reinterpret_cast<const S*>(grad_out),
        reinterpret_cast<const S*>(weights), reinterpret_cast<S*>(grad_psw));
  });
  check_launch("per-sample-weight gradient");
}

void backward(const Problem& p, const Launch& launch, const Segments& segments,
              uintptr_t grad_out, const UpdateArgs& update) {
  if (segments.num_segments == 0) return;
  dispatch(p, [&](auto scalar, auto index) {
    using S = decltype(scalar);
    using I = decltype(index);
    // Row-wise Adagrad keeps each row's gradient in shared memory until its mean square is known.
    int warps_per_block = kWarpsPerBlock;
    size_t shared = 0;
    if (update.kind == Update::kRowwiseAdagrad) {
      const size_t per_warp = static_cast<size_t>(p.max_dim) * sizeof(S);
      if (per_warp > kMaxSharedBytes) {
        throw std::invalid_argument("cuda rowwise_adagrad supports embedding dims up to " +
                                    std::to_string(kMaxSharedBytes / sizeof(S)));
      }
      warps_per_block = static_cast<int>(std::min<size_t>(kWarpsPerBlock, kMaxSharedBytes / per_warp));
      shared = per_warp * warps_per_block;
    }
    with_pack<S>(packs_fit<S>(p, {grad_out}), [&](auto pack) {
      backward_kernel<S, I, decltype(pack)::value>
          <<<blocks_for(segments.num_segments, warps_per_block), warps_per_block * kWarp, shared,
             reinterpret_cast<cudaStream_t>(launch.stream)>>>(
              args_of<S, I>(p, launch), segments, reinterpret_cast<const S*>(grad_out),
              make_coefs<S>(update), reinterpret_cast<S*>(update.target),
              reinterpret_cast<S*>(update.momentum1), reinterpret_cast<S*>(update.momentum2),
              p.max_dim);
    });
  });
  check_launch("backward");
}

}  // namespace cuda
}  // namespace recforge
