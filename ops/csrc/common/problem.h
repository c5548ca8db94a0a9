// The shape of one fused embedding-bag call, shared by the CPU and CUDA extensions.
//
// The extensions do not link libtorch: Python validates the tensors (dtype, device, contiguity,
// shape) and passes their data pointers as integers. Everything here is plain C++17.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace recforge {

// Bumped whenever a binding's signature changes, so that a stale build is refused by the loader.
constexpr int kAbiVersion = 3;

struct Problem {
  // Per table t: rows[t] x dims[t] weights at weight_offset[t] in the flat weight; its pooled
  // output occupies columns [column_offset[t], column_offset[t] + dims[t]); its first row is
  // global row row_base[t] (row-wise optimizer state is indexed by global row).
  std::vector<int64_t> rows, dims, weight_offset, column_offset, row_base;
  int64_t total_dim = 0, total_rows = 0, num_weights = 0, max_dim = 0;
  int64_t batch_size = 0;
  uintptr_t indices = 0;  // int32 or int64 [num_indices]
  int index_bits = 64;
  int64_t num_indices = 0;
  uintptr_t offsets = 0;             // int64 [T * B + 1], table-major
  uintptr_t per_sample_weights = 0;  // 0 when absent; same scalar type as the weights
  bool mean = false;
  int scalar_bits = 32;  // float32 or float64 weights

  int64_t num_tables() const { return static_cast<int64_t>(rows.size()); }
  int64_t num_bags() const { return num_tables() * batch_size; }
};

// Validates the arguments (throws std::invalid_argument naming the bad one) and derives offsets.
Problem make_problem(std::vector<int64_t> rows, std::vector<int64_t> dims, int64_t batch_size,
                     uintptr_t indices, int index_bits, int64_t num_indices, uintptr_t offsets,
                     uintptr_t per_sample_weights, bool mean, int scalar_bits);

enum class Update { kGradient, kSgd, kAdagrad, kRowwiseAdagrad, kAdam };

// How backward writes a row's aggregated gradient: into a dense gradient, or through an optimizer.
struct UpdateArgs {
  Update kind = Update::kGradient;
  uintptr_t target = 0;  // the dense gradient (kGradient) or the weights (optimizers)
  uintptr_t momentum1 = 0, momentum2 = 0;
  double lr = 0.0, eps = 0.0, beta1 = 0.0, beta2 = 0.0;
  int64_t step = 0;  // Adam's step count, this update included
};

// Validates the optimizer name and the state pointers it needs.
UpdateArgs make_update(const std::string& optimizer, uintptr_t target, uintptr_t momentum1,
                       uintptr_t momentum2, double lr, double eps, double beta1, double beta2,
                       int64_t step);

}  // namespace recforge
