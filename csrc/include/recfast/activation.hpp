// Element-wise activations shared by the dense (and later recurrent) kernels, host and device.
#pragma once

#ifndef __CUDACC_RTC__
#include <cstdint>
#endif

#include "recfast/common.hpp"
#include "recfast/fastmath.hpp"

namespace recfast {

// The codes Python passes (recfast/_codes.py's ACTIVATION_CODES; tests/test_codes.py compares
// them with recfast._cpu.codes(), which reads kActNames). `count` ends the valid range.
enum class Act : int { identity = 0, relu = 1, sigmoid = 2, tanh = 3, count };

struct ActName {
  const char* name;
  Act code;
};
inline constexpr ActName kActNames[] = {{"identity", Act::identity},
                                        {"relu", Act::relu},
                                        {"sigmoid", Act::sigmoid},
                                        {"tanh", Act::tanh}};
static_assert(names_every_code<Act>(kActNames), "kActNames lists every activation, in order");

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

#ifndef __CUDACC_RTC__  // host entry points: not for NVRTC
// The one bias + activation epilogue of dense and conv, on the calling thread: y (n, h) row-major,
// y = f(y + b) in place; b may be null. One loop per activation, so that each vectorizes.
void bias_activation_rows(float* y, const float* b, int64_t n, int64_t h, Act a);
void bias_activation_rows(double* y, const double* b, int64_t n, int64_t h, Act a);

// The same over n rows on up to num_threads threads (one below a size threshold).
void bias_activation(float* y, const float* b, int64_t n, int64_t h, Act a, int num_threads);
void bias_activation(double* y, const double* b, int64_t n, int64_t h, Act a, int num_threads);

// g_pre = g_out * f'(y) (n, h); g_bias (h,) = column sums of g_pre when not null.
void activation_backward(const float* g_out, const float* y, float* g_pre, float* g_bias, int64_t n,
                         int64_t h, Act a, int num_threads);
void activation_backward(const double* g_out, const double* y, double* g_pre, double* g_bias,
                         int64_t n, int64_t h, Act a, int num_threads);
#endif

}  // namespace recfast
