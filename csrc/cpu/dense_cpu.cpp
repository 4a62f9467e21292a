// The dense layer: the GEMMs in the BLAS that blas.hpp calls, on the call's thread count (a
// ThreadScope: NumPy's np.matmul used whatever the pool held, two threads on a one-thread call,
// which on a busy machine made small products 10x slower), and fused epilogues that add the
// bias, apply the activation and reduce the bias gradient, in one sweep over the output each. The
// forward epilogue, bias_activation_rows, is also conv2d_cpu.cpp's.
#include <algorithm>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "recfast/activation.hpp"
#include "recfast/blas.hpp"
#include "recfast/dense.hpp"

namespace recfast {
namespace {

// The GEMMs around these passes run on OpenBLAS's own threads; idle OpenMP workers spin after a
// region and starved them (measured: the AutoRec step went from 19 ms to 40 ms on 2 cores). The
// passes are memory-bound and cheap, so they stay on one thread unless the output is large.
constexpr int64_t kMinParallel = int64_t(1) << 22;

// The epilogue's arithmetic, written once (conv2d_cpu.cpp calls it on each chunk of its output).
template <typename T>
void bias_act_rows(T* y, const T* b, int64_t n, int64_t h, Act a) {
  if (!b && a == Act::identity) return;
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
void bias_act(T* y, const T* b, int64_t n, int64_t h, Act a, int nt) {
  nt = n * h < kMinParallel ? 1 : std::max(1, nt);
  if (nt == 1) return bias_act_rows(y, b, n, h, a);
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t i = 0; i < n; ++i) bias_act_rows(y + i * h, b, 1, h, a);
}

// g_pre rows [i0, i1) = g_out * f'(y); their column sums added into acc (h,) when not null.
template <typename T>
void act_backward_rows(const T* g_out, const T* y, T* g_pre, T* acc, int64_t i0, int64_t i1,
                       int64_t h, Act a) {
  for (int64_t i = i0; i < i1; ++i) {
    const T *go = g_out + i * h, *yr = y + i * h;
    T* gp = g_pre + i * h;
    for (int64_t j = 0; j < h; ++j) gp[j] = go[j] * act_grad_from_output(a, yr[j]);
    if (acc) {
#pragma omp simd
      for (int64_t j = 0; j < h; ++j) acc[j] += gp[j];
    }
  }
}

template <typename T>
void act_backward(const T* g_out, const T* y, T* g_pre, T* g_bias, int64_t n, int64_t h, Act a,
                  int nt) {
  nt = n * h < kMinParallel ? 1 : std::max(1, nt);
  if (nt == 1) {  // no OpenMP region: entering one costs more than a small pass
    if (g_bias) std::fill(g_bias, g_bias + h, T(0));
    return act_backward_rows(g_out, y, g_pre, g_bias, 0, n, h, a);
  }
  // Each thread sums its own rows into a private slice; the slices are added in a fixed order,
  // so the bias gradient does not depend on scheduling.
  std::vector<T> partial(g_bias ? size_t(nt) * size_t(h) : 0, T(0));
#pragma omp parallel num_threads(nt)
  {
#ifdef _OPENMP
    const int t = omp_get_thread_num(), nth = omp_get_num_threads();
#else
    const int t = 0, nth = 1;
#endif
    T* acc = g_bias ? partial.data() + size_t(t) * size_t(h) : nullptr;
    act_backward_rows(g_out, y, g_pre, acc, n * t / nth, n * (t + 1) / nth, h, a);
  }
  if (g_bias) {
    std::fill(g_bias, g_bias + h, T(0));
    for (int t = 0; t < nt; ++t)
      for (int64_t j = 0; j < h; ++j) g_bias[j] += partial[size_t(t) * size_t(h) + size_t(j)];
  }
}

// OpenBLAS runs products below about this many multiply-adds on one thread whatever its pool
// size: smaller calls skip the thread-count calls of a ThreadScope.
constexpr int64_t kBlasSmpMin = int64_t(1) << 18;

template <typename T>
void dense_fwd(const T* x, const T* W, const T* b, T* y, int64_t n, int64_t d, int64_t h, Act a,
               int nt) {
  if (n == 0 || h == 0) return;
  if (d == 0) {  // an empty product: BLAS refuses a leading dimension of 0
    std::fill(y, y + n * h, T(0));
  } else {
    blas::ThreadScope scope(n * d * h >= kBlasSmpMin ? std::max(1, nt) : 0);
    blas::gemm(false, true, n, h, d, T(1), x, d, W, d, T(0), y, h);
  }
  bias_act(y, b, n, h, a, nt);
}

template <typename T>
void dense_bwd(const T* g_out, const T* x, const T* W, const T* y, T* scratch, T* gx, T* gW, T* gb,
               int64_t n, int64_t d, int64_t h, Act a, int nt) {
  const T* g = g_out;
  if (a != Act::identity) {
    act_backward(g_out, y, scratch, gb, n, h, a, nt);
    g = scratch;
  } else if (gb) {  // column sums of g_out, no copy of it
    std::fill(gb, gb + h, T(0));
    for (int64_t i = 0; i < n; ++i) {
      const T* row = g_out + i * h;
#pragma omp simd
      for (int64_t j = 0; j < h; ++j) gb[j] += row[j];
    }
  }
  if (gx) {
    if (h == 0 || n == 0 || d == 0)
      std::fill(gx, gx + n * d, T(0));
    else {
      blas::ThreadScope scope(n * d * h >= kBlasSmpMin ? std::max(1, nt) : 0);
      blas::gemm(false, false, n, d, h, T(1), g, h, W, d, T(0), gx, d);
    }
  }
  if (gW) {
    if (n == 0 || h == 0 || d == 0)
      std::fill(gW, gW + h * d, T(0));
    else {
      blas::ThreadScope scope(n * d * h >= kBlasSmpMin ? std::max(1, nt) : 0);
      blas::gemm(true, false, h, d, n, T(1), g, h, x, d, T(0), gW, d);
    }
  }
}

}  // namespace

void dense_forward(const float* x, const float* W, const float* b, float* y, int64_t n, int64_t d,
                   int64_t h, Act a, int nt) {
  dense_fwd(x, W, b, y, n, d, h, a, nt);
}
void dense_forward(const double* x, const double* W, const double* b, double* y, int64_t n,
                   int64_t d, int64_t h, Act a, int nt) {
  dense_fwd(x, W, b, y, n, d, h, a, nt);
}
void dense_backward(const float* g_out, const float* x, const float* W, const float* y,
                    float* scratch, float* gx, float* gW, float* gb, int64_t n, int64_t d,
                    int64_t h, Act a, int nt) {
  dense_bwd(g_out, x, W, y, scratch, gx, gW, gb, n, d, h, a, nt);
}
void dense_backward(const double* g_out, const double* x, const double* W, const double* y,
                    double* scratch, double* gx, double* gW, double* gb, int64_t n, int64_t d,
                    int64_t h, Act a, int nt) {
  dense_bwd(g_out, x, W, y, scratch, gx, gW, gb, n, d, h, a, nt);
}

void bias_activation_rows(float* y, const float* b, int64_t n, int64_t h, Act a) {
  bias_act_rows(y, b, n, h, a);
}
void bias_activation_rows(double* y, const double* b, int64_t n, int64_t h, Act a) {
  bias_act_rows(y, b, n, h, a);
}
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
