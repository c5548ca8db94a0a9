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
#include "thread_pool.h"

// x86-64 builds carry an AVX2+FMA copy of the kernels next to the portable one and pick at run
// time, so one wheel runs everywhere yet uses the wide vectors where the CPU has them.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RECFORGE_AVX2 1
#else
#define RECFORGE_AVX2 0
#endif

namespace recforge {
namespace cpu {

namespace generic {
#define RECFORGE_VECTOR_BYTES 16
#include "kernels_impl.inc"
#undef RECFORGE_VECTOR_BYTES
}  // namespace generic

#if RECFORGE_AVX2
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
#define RECFORGE_VECTOR_BYTES 32
#include "kernels_impl.inc"
#undef RECFORGE_VECTOR_BYTES
}  // namespace avx2
#pragma GCC pop_options
#endif

namespace {

// Below this many multiply-adds a call runs on the calling thread: waking workers costs more.
constexpr int64_t kMinParallelWork = 1 << 15;

int threads_for(const Problem& p, int num_threads) {
  return p.num_indices * p.max_dim < kMinParallelWork ? 1 : num_threads;
}

bool cpu_has_avx2() {
#if RECFORGE_AVX2
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

std::atomic<bool> g_use_avx2{false};
std::once_flag g_isa_once;

// The best instruction set of this CPU, unless RECFORGE_CPU_ISA=generic asks for the portable one.
bool use_avx2() {
  std::call_once(g_isa_once, [] {
    const char* forced = std::getenv("RECFORGE_CPU_ISA");
    g_use_avx2 = cpu_has_avx2() && !(forced && std::strcmp(forced, "generic") == 0);
  });
  return g_use_avx2.load();
}

}  // namespace

std::string isa() { return use_avx2() ? "avx2" : "generic"; }

void set_isa(const std::string& name) {
  use_avx2();  // settle the default first
  if (name == "generic") {
    g_use_avx2 = false;
  } else if (name == "avx2" && cpu_has_avx2()) {
    g_use_avx2 = true;
  } else {
    throw std::invalid_argument("isa must be 'generic' or one this CPU supports ('" +
                                std::string(cpu_has_avx2() ? "avx2" : "generic") + "'); got '" +
                                name + "'");
  }
}

#if RECFORGE_AVX2
#define RECFORGE_DISPATCH(call) (use_avx2() ? avx2::call : generic::call)
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
  RECFORGE_DISPATCH(backward(p, grad_out, update, threads_for(p, num_threads)));
}

void grad_per_sample_weights(const Problem& p, uintptr_t grad_out, uintptr_t weights,
                             uintptr_t grad_psw, int num_threads) {
  RECFORGE_DISPATCH(
      grad_per_sample_weights(p, grad_out, weights, grad_psw, threads_for(p, num_threads)));
}

}  // namespace cpu
}  // namespace recforge
