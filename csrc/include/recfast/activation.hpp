// Element-wise activations shared by the dense (and later recurrent) kernels, host and device.
#pragma once

#include <cstdint>

#include "recfast/common.hpp"
#include "recfast/fastmath.hpp"

namespace recfast {

enum class Act : int { identity = 0, relu = 1, sigmoid = 2, tanh = 3 };

template <typename T>
RECFAST_HD RECFAST_INLINE T act_forward(Act a, T x) {
  switch (a) {
    case Act::relu:  // NaN stays NaN, as np.maximum(x, 0) and torch.relu keep it
      return (x > T(0) || x != x) ? x : T(0);
    case Act::sigmoid:
      return fm::sigmoid(x);
    case Act::tanh:
      return fm::tanh(x);
    default:
      return x;
  }
}

// Derivative expressed through the activation's output y = f(x), so backward needs no x.
template <typename T>
RECFAST_HD RECFAST_INLINE T act_grad_from_output(Act a, T y) {
  switch (a) {
    case Act::relu:
      return y > T(0) ? T(1) : T(0);
    case Act::sigmoid:
      return y * (T(1) - y);
    case Act::tanh:
      return T(1) - y * y;
    default:
      return T(1);
  }
}

// y (n, h) row-major: y = f(y + b) in place; b may be null.
void bias_activation(float* y, const float* b, int64_t n, int64_t h, Act a, int num_threads);
void bias_activation(double* y, const double* b, int64_t n, int64_t h, Act a, int num_threads);

// g_pre = g_out * f'(y) (n, h); g_bias (h,) = column sums of g_pre when not null.
void activation_backward(const float* g_out, const float* y, float* g_pre, float* g_bias, int64_t n,
                         int64_t h, Act a, int num_threads);
void activation_backward(const double* g_out, const double* y, double* g_pre, double* g_bias,
                         int64_t n, int64_t h, Act a, int num_threads);

}  // namespace recfast
