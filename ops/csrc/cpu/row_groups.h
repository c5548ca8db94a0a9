// Backward's first step on the CPU: the batch's positions grouped by the row they look up.
#pragma once

#include <cstdint>
#include <vector>

#include "../common/problem.h"

namespace recforge {
namespace cpu {

// The valid positions of a batch grouped by global row (row_base[t] + index): groups in
// ascending row order, each group's positions in ascending order. That order is unique, so the
// result never depends on the number of threads (a stable parallel radix sort builds it).
// The buffers are kept between calls, so a workspace per thread saves allocating them.
class RowGroups {
 public:
  void build(const Problem& p, int num_threads);

  int64_t size() const { return static_cast<int64_t>(begin_.size()) - 1; }
  // Group g covers slots [begin(g), begin(g + 1)).
  int64_t begin(int64_t g) const { return begin_[g]; }
  int64_t position(int64_t slot) const { return positions_[slot]; }
  // Bag k = t * B + b of the position at a slot.
  int64_t bag(int64_t slot) const { return slot_bag_[slot]; }
  uint64_t global_row(int64_t g) const { return keys_[begin_[g]]; }

  // Frees the buffers when they hold more than `bytes` (after an unusually large batch).
  void shrink_to(int64_t bytes);

 private:
  std::vector<uint64_t> key_buffers_[2];
  std::vector<int64_t> position_buffers_[2];
  std::vector<int64_t> bag_;       // per position
  std::vector<int64_t> slot_bag_;  // per slot: bag_ gathered in sorted order
  std::vector<int64_t> begin_;
  std::vector<int64_t> counts_;
  const uint64_t* keys_ = nullptr;  // the sorted buffers, one of each pair above
  const int64_t* positions_ = nullptr;
};

}  // namespace cpu
}  // namespace recforge
