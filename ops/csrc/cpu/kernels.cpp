#include "kernels.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../common/row_update.h"
#include "row_groups.h"
#include "thread_pool.h"

// x86-64 builds carry AVX2+FMA and AVX-512 copies of the kernels next to the portable one and
// pick at run time, so one wheel runs everywhere yet uses the widest vectors the CPU has.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RECFORGE_X86_COPIES 1
#else
#define RECFORGE_X86_COPIES 0
#endif

namespace recforge {
namespace cpu {

namespace generic {
#define RECFORGE_VECTOR_BYTES 16
#include "kernels_impl.inc"
#undef RECFORGE_VECTOR_BYTES
}  // namespace generic

#if RECFORGE_X86_COPIES
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
#define RECFORGE_VECTOR_BYTES 32
#include "kernels_impl.inc"
#undef RECFORGE_VECTOR_BYTES
}  // namespace avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")
namespace avx512 {
#define RECFORGE_VECTOR_BYTES 64
#include "kernels_impl.inc"
#undef RECFORGE_VECTOR_BYTES
}  // namespace avx512
#pragma GCC pop_options
#endif

namespace {

// Below this many multiply-adds a call runs on the calling thread: waking workers costs more.
constexpr int64_t kMinParallelWork = 1 << 15;
// Backward's grouping buffers are kept per calling thread up to this size (no page faults on
// the next call); a larger batch's are freed after it.
constexpr int64_t kKeptGroupingBytes = int64_t{1} << 28;

int threads_for(const Problem& p, int num_threads) {
  return p.num_indices * p.max_dim < kMinParallelWork ? 1 : num_threads;
}

enum class Isa { kGeneric, kAvx2, kAvx512 };
const char* const kIsaNames[] = {"generic", "avx2", "avx512"};

bool cpu_supports(Isa isa) {
#if RECFORGE_X86_COPIES
  switch (isa) {
    case Isa::kGeneric:
      return true;
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::kAvx512:
      return cpu_supports(Isa::kAvx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq");
  }
  return false;
#else
  return isa == Isa::kGeneric;
#endif
}

Isa best_isa() {
  for (Isa isa : {Isa::kAvx512, Isa::kAvx2}) {
    if (cpu_supports(isa)) return isa;
  }
  return Isa::kGeneric;
}

std::atomic<Isa> g_isa{Isa::kGeneric};
std::once_flag g_isa_once;

// The best instruction set of this CPU, or the one RECFORGE_CPU_ISA names if it is supported.
Isa current_isa() {
  std::call_once(g_isa_once, [] {
    Isa isa = best_isa();
    if (const char* forced = std::getenv("RECFORGE_CPU_ISA")) {
      for (Isa candidate : {Isa::kGeneric, Isa::kAvx2, Isa::kAvx512}) {
        if (std::strcmp(forced, kIsaNames[static_cast<int>(candidate)]) == 0 &&
            cpu_supports(candidate)) {
          isa = candidate;
        }
      }
    }
    g_isa = isa;
  });
  return g_isa.load();
}

}  // namespace

std::string isa() { return kIsaNames[static_cast<int>(current_isa())]; }

std::vector<std::string> supported_isas() {
  std::vector<std::string> names;
  for (Isa candidate : {Isa::kGeneric, Isa::kAvx2, Isa::kAvx512}) {
    if (cpu_supports(candidate)) names.emplace_back(kIsaNames[static_cast<int>(candidate)]);
  }
  return names;
}

void set_isa(const std::string& name) {
  current_isa();  // settle the default first
  std::string supported;
  for (Isa candidate : {Isa::kGeneric, Isa::kAvx2, Isa::kAvx512}) {
    if (!cpu_supports(candidate)) continue;
    const std::string candidate_name = kIsaNames[static_cast<int>(candidate)];
    if (name == candidate_name) {
      g_isa = candidate;
      return;
    }
    supported += (supported.empty() ? "'" : ", '") + candidate_name + "'";
  }
  throw std::invalid_argument("isa must be one this CPU supports (" + supported + "); got '" +
                              name + "'");
}

#if RECFORGE_X86_COPIES
#define RECFORGE_DISPATCH(call)                                                \
  (current_isa() == Isa::kAvx512 ? avx512::call                                \
   : current_isa() == Isa::kAvx2 ? avx2::call                                  \
                                 : generic::call)
#else
#define RECFORGE_DISPATCH(call) (generic::call)
#endif

void forward(const Problem& p, uintptr_t weights, uintptr_t out, int num_threads) {
  RECFORGE_DISPATCH(forward(p, weights, out, threads_for(p, num_threads)));
}

int64_t first_invalid_index(const Problem& p, int num_threads) {
  return RECFORGE_DISPATCH(first_invalid_index(p, threads_for(p, num_threads)));
}

void backward(const Problem& p, uintptr_t grad_out, const UpdateArgs& update, int num_threads) {
  thread_local RowGroups groups;
  const int threads = threads_for(p, num_threads);
  groups.build(p, threads);
  RECFORGE_DISPATCH(backward(p, groups, grad_out, update, threads));
  groups.shrink_to(kKeptGroupingBytes);
}

void grad_per_sample_weights(const Problem& p, uintptr_t grad_out, uintptr_t weights,
                             uintptr_t grad_psw, int num_threads) {
  RECFORGE_DISPATCH(
      grad_per_sample_weights(p, grad_out, weights, grad_psw, threads_for(p, num_threads)));
}

}  // namespace cpu
}  // namespace recforge
