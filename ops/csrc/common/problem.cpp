#include "problem.h"

#include <algorithm>
#include <limits>
#include <stdexcept>

namespace recforge {
namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

}  // namespace

Problem make_problem(std::vector<int64_t> rows, std::vector<int64_t> dims, int64_t batch_size,
                     uintptr_t indices, int index_bits, int64_t num_indices, uintptr_t offsets,
                     uintptr_t per_sample_weights, bool mean, int scalar_bits) {
  require(!rows.empty(), "rows: need at least one table");
  require(rows.size() == dims.size(), "rows and dims must have one entry per table");
  require(rows.size() < static_cast<size_t>(std::numeric_limits<int32_t>::max()),
          "rows: too many tables");
  require(batch_size >= 0 && batch_size < std::numeric_limits<int32_t>::max(),
          "batch_size must be in [0, 2^31 - 1)");
  require(index_bits == 32 || index_bits == 64, "index_bits must be 32 or 64");
  require(scalar_bits == 32 || scalar_bits == 64, "scalar_bits must be 32 or 64");
  require(num_indices >= 0, "num_indices must be >= 0");
  require(indices != 0 || num_indices == 0, "indices pointer is null");
  require(offsets != 0, "offsets pointer is null");

  Problem p;
  p.rows = std::move(rows);
  p.dims = std::move(dims);
  const size_t T = p.rows.size();
  p.weight_offset.resize(T);
  p.column_offset.resize(T);
  p.row_base.resize(T);
  for (size_t t = 0; t < T; ++t) {
    require(p.rows[t] >= 0, "rows[" + std::to_string(t) + "] must be >= 0");
    require(p.dims[t] > 0, "dims[" + std::to_string(t) + "] must be > 0");
    p.weight_offset[t] = p.num_weights;
    p.column_offset[t] = p.total_dim;
    p.row_base[t] = p.total_rows;
    p.num_weights += p.rows[t] * p.dims[t];
    p.total_dim += p.dims[t];
    p.total_rows += p.rows[t];
    p.max_dim = std::max(p.max_dim, p.dims[t]);
  }
  p.batch_size = batch_size;
  p.indices = indices;
  p.index_bits = index_bits;
  p.num_indices = num_indices;
  p.offsets = offsets;
  p.per_sample_weights = per_sample_weights;
  p.mean = mean;
  p.scalar_bits = scalar_bits;
  return p;
}

UpdateArgs make_update(const std::string& optimizer, uintptr_t target, uintptr_t momentum1,
                       uintptr_t momentum2, double lr, double eps, double beta1, double beta2,
                       int64_t step) {
  UpdateArgs u;
  if (optimizer == "gradient") {
    u.kind = Update::kGradient;
  } else if (optimizer == "sgd") {
    u.kind = Update::kSgd;
  } else if (optimizer == "adagrad") {
    u.kind = Update::kAdagrad;
  } else if (optimizer == "rowwise_adagrad") {
    u.kind = Update::kRowwiseAdagrad;
  } else if (optimizer == "adam") {
    u.kind = Update::kAdam;
  } else {
    throw std::invalid_argument(
        "optimizer must be one of gradient, sgd, adagrad, rowwise_adagrad, adam; got " +
        optimizer);
  }
  const bool needs_m1 = u.kind == Update::kAdagrad || u.kind == Update::kRowwiseAdagrad ||
                        u.kind == Update::kAdam;
  require(target != 0, "target pointer is null");
  require(!needs_m1 || momentum1 != 0, "momentum1 pointer is null");
  require(u.kind != Update::kAdam || momentum2 != 0, "momentum2 pointer is null");
  require(u.kind != Update::kAdam || step >= 1, "step must be >= 1 for adam");
  u.target = target;
  u.momentum1 = momentum1;
  u.momentum2 = momentum2;
  u.lr = lr;
  u.eps = eps;
  u.beta1 = beta1;
  u.beta2 = beta2;
  u.step = step;
  return u;
}

}  // namespace recforge
