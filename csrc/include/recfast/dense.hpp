// The dense layer y = f(x W^T + b): the GEMMs through blas.hpp on the call's thread count, then
// the fused epilogue of activation.hpp. No Python types here.
#pragma once

#ifndef __CUDACC_RTC__
#include <cstdint>
#endif

#include "recfast/activation.hpp"

namespace recfast {

// x (n, d), W (h, d), b (h,) or null, y (n, h): y = f(x W^T + b).
void dense_forward(const float* x, const float* W, const float* b, float* y, int64_t n, int64_t d,
                   int64_t h, Act a, int num_threads);
void dense_forward(const double* x, const double* W, const double* b, double* y, int64_t n,
                   int64_t d, int64_t h, Act a, int num_threads);

// From g_out (n, h) and the forward output y (read only when a != identity): g = g_out * f'(y)
// into scratch (n, h) (unused for identity), then grad_x (n, d) = g W, grad_W (h, d) = g^T x and
// grad_b (h,) = column sums of g, each skipped when null.
void dense_backward(const float* g_out, const float* x, const float* W, const float* y,
                    float* scratch, float* grad_x, float* grad_W, float* grad_b, int64_t n,
                    int64_t d, int64_t h, Act a, int num_threads);
void dense_backward(const double* g_out, const double* x, const double* W, const double* y,
                    double* scratch, double* grad_x, double* grad_W, double* grad_b, int64_t n,
                    int64_t d, int64_t h, Act a, int num_threads);

}  // namespace recfast
