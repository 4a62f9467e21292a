// Fused epilogues of the dense layer: the GEMMs run in BLAS (NumPy's), these passes add the bias,
// apply the activation and reduce the bias gradient, in one sweep over the output each.
#include <algorithm>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "recfast/activation.hpp"

namespace recfast {
namespace {

// The GEMMs around these passes run on OpenBLAS's own threads; idle OpenMP workers spin after a
// region and starved them (measured: the AutoRec step went from 19 ms to 40 ms on 2 cores). The
// passes are memory-bound and cheap, so they stay on one thread unless the output is large.
constexpr int64_t kMinParallel = int64_t(1) << 22;

template <typename T>
void bias_act(T* y, const T* b, int64_t n, int64_t h, Act a, int nt) {
  nt = n * h < kMinParallel ? 1 : std::max(1, nt);
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t i = 0; i < n; ++i) {
    T* row = y + i * h;
    if (b) {
#pragma omp simd
      for (int64_t j = 0; j < h; ++j) row[j] += b[j];
    }
    switch (a) {  // outside the loops, so that each one vectorizes
      case Act::relu:
#pragma omp simd
        for (int64_t j = 0; j < h; ++j) row[j] = act_forward(Act::relu, row[j]);
        break;
      case Act::sigmoid:
#pragma omp simd
        for (int64_t j = 0; j < h; ++j) row[j] = act_forward(Act::sigmoid, row[j]);
        break;
      case Act::tanh:
#pragma omp simd
        for (int64_t j = 0; j < h; ++j) row[j] = act_forward(Act::tanh, row[j]);
        break;
      default:
        break;
    }
  }
}

template <typename T>
void act_backward(const T* g_out, const T* y, T* g_pre, T* g_bias, int64_t n, int64_t h, Act a,
                  int nt) {
  nt = n * h < kMinParallel ? 1 : std::max(1, nt);
  // Each thread sums its own rows into a private slice; the slices are added in a fixed order,
  // so the bias gradient does not depend on scheduling.
  std::vector<T> partial(g_bias ? size_t(nt) * size_t(h) : 0, T(0));
#pragma omp parallel num_threads(nt)
  {
#ifdef _OPENMP
    const int t = omp_get_thread_num();
#else
    const int t = 0;
#endif
    T* acc = g_bias ? partial.data() + size_t(t) * size_t(h) : nullptr;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const T *go = g_out + i * h, *yr = y + i * h;
      T* gp = g_pre + i * h;
      for (int64_t j = 0; j < h; ++j) gp[j] = go[j] * act_grad_from_output(a, yr[j]);
      if (acc) {
#pragma omp simd
        for (int64_t j = 0; j < h; ++j) acc[j] += gp[j];
      }
    }
  }
  if (g_bias) {
    std::fill(g_bias, g_bias + h, T(0));
    for (int t = 0; t < nt; ++t)
      for (int64_t j = 0; j < h; ++j) g_bias[j] += partial[size_t(t) * size_t(h) + size_t(j)];
  }
}

}  // namespace

void bias_activation(float* y, const float* b, int64_t n, int64_t h, Act a, int nt) {
  bias_act(y, b, n, h, a, nt);
}
void bias_activation(double* y, const double* b, int64_t n, int64_t h, Act a, int nt) {
  bias_act(y, b, n, h, a, nt);
}
void activation_backward(const float* g_out, const float* y, float* g_pre, float* g_bias, int64_t n,
                         int64_t h, Act a, int nt) {
  act_backward(g_out, y, g_pre, g_bias, n, h, a, nt);
}
void activation_backward(const double* g_out, const double* y, double* g_pre, double* g_bias,
                         int64_t n, int64_t h, Act a, int nt) {
  act_backward(g_out, y, g_pre, g_bias, n, h, a, nt);
}

}  // namespace recfast
