// Optimizer math for one embedding row, shared by the CPU and CUDA kernels so that every
// backend applies literally the same formulas. `g` is the row's gradient summed over all of its
// occurrences in the batch (duplicates aggregated first, as FBGEMM's exact optimizers do).
#pragma once

#include <math.h>

#include "problem.h"

#ifdef __CUDACC__
#define RECFORGE_HD __host__ __device__ __forceinline__
#else
#define RECFORGE_HD inline
#endif

namespace recforge {

RECFORGE_HD float root(float x) { return sqrtf(x); }
RECFORGE_HD double root(double x) { return sqrt(x); }

// Per-call constants, in the weights' precision.
template <typename S>
struct Coefs {
  Update kind;
  S lr, eps, beta1, beta2;
  S one_minus_beta1, one_minus_beta2;  // computed in double: 1 - 0.999f is not 0.001f
  S bias1, bias2;                      // Adam's bias corrections 1 - beta^step
};

template <typename S>
Coefs<S> make_coefs(const UpdateArgs& u) {
  Coefs<S> c;
  c.kind = u.kind;
  c.lr = static_cast<S>(u.lr);
  c.eps = static_cast<S>(u.eps);
  c.beta1 = static_cast<S>(u.beta1);
  c.beta2 = static_cast<S>(u.beta2);
  c.one_minus_beta1 = static_cast<S>(1.0 - u.beta1);
  c.one_minus_beta2 = static_cast<S>(1.0 - u.beta2);
  c.bias1 = static_cast<S>(1.0 - pow(u.beta1, static_cast<double>(u.step)));
  c.bias2 = static_cast<S>(1.0 - pow(u.beta2, static_cast<double>(u.step)));
  return c;
}

template <typename S>
RECFORGE_HD void sgd_step(S& w, S g, const Coefs<S>& c) {
  w -= c.lr * g;
}

// torch.optim.Adagrad / FBGEMM EXACT_ADAGRAD: per-element sum of squares.
template <typename S>
RECFORGE_HD void adagrad_step(S& w, S& m, S g, const Coefs<S>& c) {
  m += g * g;
  w -= c.lr * g / (root(m) + c.eps);
}

// FBGEMM EXACT_ROWWISE_ADAGRAD: m_row += mean(g^2); the returned factor multiplies every g.
template <typename S>
RECFORGE_HD S rowwise_adagrad_factor(S& m_row, S mean_square, const Coefs<S>& c) {
  m_row += mean_square;
  return c.lr / (root(m_row) + c.eps);
}

// Adam with bias correction (Kingma & Ba; torch.optim.Adam), applied lazily to touched rows.
template <typename S>
RECFORGE_HD void adam_step(S& w, S& m1, S& m2, S g, const Coefs<S>& c) {
  m1 = c.beta1 * m1 + c.one_minus_beta1 * g;
  m2 = c.beta2 * m2 + c.one_minus_beta2 * g * g;
  w -= c.lr * (m1 / c.bias1) / (root(m2 / c.bias2) + c.eps);
}

}  // namespace recforge
