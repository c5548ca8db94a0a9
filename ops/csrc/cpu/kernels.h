// CPU kernels of the fused multi-table embedding bag. Pointers come from Python (see problem.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../common/problem.h"

namespace recforge {
namespace cpu {

// The instruction set the kernels run with ("avx512", "avx2" or "generic"), the ones this CPU
// supports, and a switch between them (for tests and benchmarks).
std::string isa();
std::vector<std::string> supported_isas();
void set_isa(const std::string& name);

// out[b, column_offset[t]:+dims[t]] = pooled rows of bag (t, b). Out-of-range indices add nothing.
void forward(const Problem& p, uintptr_t weights, uintptr_t out, int num_threads);

// The first position whose index is out of range for its table, or -1.
int64_t first_invalid_index(const Problem& p, int num_threads);

// Aggregates each touched row's gradient exactly and deterministically (rows sorted, each row's
// occurrences summed in position order), then writes it as a dense gradient or applies the
// optimizer in place. The result does not depend on the number of threads.
void backward(const Problem& p, uintptr_t grad_out, const UpdateArgs& update, int num_threads);

// d loss / d per_sample_weights[i] = scale(bag) * <grad_out[bag], row(i)>. Positions outside
// every bag are left untouched (Python zero-fills the buffer).
void grad_per_sample_weights(const Problem& p, uintptr_t grad_out, uintptr_t weights,
                             uintptr_t grad_psw, int num_threads);

}  // namespace cpu
}  // namespace recforge
