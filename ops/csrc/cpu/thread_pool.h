// A small persistent thread pool for the CPU kernels.
//
// Why not OpenMP: torch wheels ship their own (renamed) libgomp; a second OpenMP runtime in the
// same process competes with torch's spinning threads and is not fork-safe. This pool is idle on
// a condition variable between calls, is replaced after fork() in the child, and falls back to
// running inline when it is already busy (nested or concurrent calls), so it cannot deadlock.
#pragma once

#include <cstdint>
#include <functional>

namespace recforge {

// Calls fn(begin, end) over disjoint chunks covering [0, n), using up to num_threads threads
// (the caller included). Runs inline when n is below grain or num_threads <= 1.
void parallel_for(int64_t n, int64_t grain, int num_threads,
                  const std::function<void(int64_t, int64_t)>& fn);

}  // namespace recforge
