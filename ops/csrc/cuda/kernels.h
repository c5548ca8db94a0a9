// Host entry points of the CUDA kernels (plain C++, so the bindings compile without nvcc).
#pragma once

#include <cstdint>

#include "../common/problem.h"

namespace recforge {
namespace cuda {

struct Launch {
  uintptr_t tables = 0;  // device int64 [5, T]: rows, dims, weight_offset, column_offset, row_base
  uintptr_t stream = 0;  // cudaStream_t
};

// The batch's positions grouped by global row, built by the caller (a stable sort in torch).
struct Segments {
  uintptr_t positions = 0;        // int64 [n]: positions sorted by (global row, position)
  uintptr_t begin = 0;            // int64 [U + 1]: segment u is positions[begin[u]:begin[u+1]]
  uintptr_t row = 0;              // int64 [U]: the global row of segment u (>= total_rows: skip)
  uintptr_t bag_of_position = 0;  // int64 [n]: bag k = t * B + b of each position
  int64_t num_segments = 0;
};

void forward(const Problem& p, const Launch& launch, uintptr_t weights, uintptr_t out);
void grad_per_sample_weights(const Problem& p, const Launch& launch, uintptr_t grad_out,
                             uintptr_t weights, uintptr_t grad_psw);
// One warp per segment sums its occurrences in position order (deterministic), then writes the
// dense gradient or applies the optimizer to the row.
void backward(const Problem& p, const Launch& launch, const Segments& segments,
              uintptr_t grad_out, const UpdateArgs& update);

}  // namespace cuda
}  // namespace recforge
