// 2-D convolution (cross-correlation) and max-pooling, NHWC. Shapes, the per-element index
// arithmetic (host/device) and the CPU entry points. No Python types here.
#pragma once

#ifndef __CUDACC_RTC__
#include <cmath>
#include <cstdint>
#endif

#include "recfast/activation.hpp"
#include "recfast/common.hpp"

namespace recfast {

// x (n, h, w, c), weights (kh, kw, c, co), y (n, oh, ow, co), all C-contiguous.
struct Conv2dShape {
  int64_t n, h, w, c;  // input
  int64_t kh, kw, co;  // kernel taps, output channels
  int64_t oh, ow;      // output size
  int64_t sh, sw;      // strides
  int64_t dh, dw;      // dilations
  int64_t pt, pl;      // top / left padding (bottom / right follow from oh, ow)
};

struct Pool2dShape {
  int64_t n, h, w, c;
  int64_t kh, kw, sh, sw, ph, pw, oh, ow;
};

// Input coordinate that output coordinate o reads through tap k (may fall in the padding).
RECFAST_HD RECFAST_INLINE int64_t conv_in_coord(int64_t o, int64_t k, int64_t s, int64_t d,
                                                int64_t p) {
  return o * s - p + k * d;
}

// Max-pool's comparison: v replaces the running maximum m when larger, or when v is the first NaN.
template <typename T>
RECFAST_HD RECFAST_INLINE bool pool_takes(T v, T m) {
  return v > m || (v != v && m == m);
}

#ifndef __CUDACC_RTC__  // host entry points: not for NVRTC
// y = f(conv(x, w) + bias); bias may be null.
void conv2d_forward(const float* x, const float* w, const float* bias, float* y,
                    const Conv2dShape& s, Act act, int num_threads);
void conv2d_forward(const double* x, const double* w, const double* bias, double* y,
                    const Conv2dShape& s, Act act, int num_threads);

// From g = dL/d(pre-activation) (n, oh, ow, co): grad_x (like x) and grad_w (like w), each
// skipped when null. Overwrites them (no accumulation into the caller's values).
void conv2d_backward(const float* g, const float* x, const float* w, float* grad_x, float* grad_w,
                     const Conv2dShape& s, int num_threads);
void conv2d_backward(const double* g, const double* x, const double* w, double* grad_x,
                     double* grad_w, const Conv2dShape& s, int num_threads);

// out, idx (n, oh, ow, c); idx = ih * w + iw of each window's maximum.
void max_pool2d_forward(const float* x, float* out, int64_t* idx, const Pool2dShape& s,
                        int num_threads);
void max_pool2d_forward(const double* x, double* out, int64_t* idx, const Pool2dShape& s,
                        int num_threads);
// grad_x (n, h, w, c) = scatter-add of g (n, oh, ow, c) to idx. Returns how many idx entries lay
// outside [0, h*w) (checked as read, skipped); the caller reports them.
int64_t max_pool2d_backward(const float* g, const int64_t* idx, float* grad_x, const Pool2dShape& s,
                            int num_threads);
int64_t max_pool2d_backward(const double* g, const int64_t* idx, double* grad_x,
                            const Pool2dShape& s, int num_threads);
#endif

}  // namespace recfast
