// Direct NHWC convolution and max-pooling on the GPU: one thread per output element, the index
// arithmetic of recfast/conv2d.hpp (conv_in_coord, pool_takes) and the activation of
// activation.hpp, as on the CPU. Consecutive threads take consecutive output channels, so weight
// reads coalesce and input reads broadcast. No implicit-GEMM tiles yet (the large-window path).
// One source for the `cuda` and `cupy` backends; NVRTC-safe.
#pragma once

#include "common.cuh"
#include "recfast/conv2d.hpp"

namespace recfast {
namespace gpu {

// The shapes travel as scalars (CuPy passes no structs) and are put together in the kernel.
#define RECFAST_CONV_DIMS                                                                     \
  long long s_n, long long s_h, long long s_w, long long s_c, long long s_kh, long long s_kw, \
      long long s_co, long long s_oh, long long s_ow, long long s_sh, long long s_sw,         \
      long long s_dh, long long s_dw, long long s_pt, long long s_pl
#define RECFAST_CONV_SHAPE                                               \
  const Conv2dShape s = {s_n,  s_h,  s_w,  s_c,  s_kh, s_kw, s_co, s_oh, \
                         s_ow, s_sh, s_sw, s_dh, s_dw, s_pt, s_pl}
#define RECFAST_POOL_DIMS                                                                     \
  long long s_n, long long s_h, long long s_w, long long s_c, long long s_kh, long long s_kw, \
      long long s_sh, long long s_sw, long long s_ph, long long s_pw, long long s_oh,         \
      long long s_ow
#define RECFAST_POOL_SHAPE \
  const Pool2dShape s = {s_n, s_h, s_w, s_c, s_kh, s_kw, s_sh, s_sw, s_ph, s_pw, s_oh, s_ow}

// y (n, oh, ow, co) = f(sum_{a, b, c} x[n, ih, iw, c] w[a, b, c, co] + bias[co]).
template <typename T>
__global__ void conv2d_forward(const T* __restrict x, const T* __restrict w,
                               const T* __restrict bias, T* __restrict y, int act,
                               RECFAST_CONV_DIMS) {
  RECFAST_CONV_SHAPE;
  const long long total = s.n * s.oh * s.ow * s.co;
  for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
       e += (long long)gridDim.x * blockDim.x) {
    const long long co = e % s.co, p = e / s.co;
    const long long ow = p % s.ow, q = p / s.ow, oh = q % s.oh, n = q / s.oh;
    T acc = T(0);
    for (long long a = 0; a < s.kh; ++a) {
      const long long ih = conv_in_coord(oh, a, s.sh, s.dh, s.pt);
      if (ih < 0 || ih >= s.h) continue;
      for (long long b = 0; b < s.kw; ++b) {
        const long long iw = conv_in_coord(ow, b, s.sw, s.dw, s.pl);
        if (iw < 0 || iw >= s.w) continue;
        const T* xp = x + ((n * s.h + ih) * s.w + iw) * s.c;
        const T* wp = w + ((a * s.kw + b) * s.c) * s.co + co;
        for (long long c = 0; c < s.c; ++c) acc += xp[c] * wp[c * s.co];
      }
    }
    if (bias) acc += bias[co];
    y[e] = act_forward(static_cast<Act>(act), acc);
  }
}

// grad_x (n, h, w, c) from g = dL/d(pre-activation) (n, oh, ow, co): a gather over the taps whose
// output reads this input (no atomics: deterministic).
template <typename T>
__global__ void conv2d_grad_x(const T* __restrict g, const T* __restrict w, T* __restrict gx,
                              RECFAST_CONV_DIMS) {
  RECFAST_CONV_SHAPE;
  const long long total = s.n * s.h * s.w * s.c;
  for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
       e += (long long)gridDim.x * blockDim.x) {
    const long long c = e % s.c, p = e / s.c;
    const long long iw = p % s.w, q = p / s.w, ih = q % s.h, n = q / s.h;
    T acc = T(0);
    for (long long a = 0; a < s.kh; ++a) {
      const long long rh = ih + s.pt - a * s.dh;  // = oh * sh
      if (rh < 0 || rh % s.sh) continue;
      const long long oh = rh / s.sh;
      if (oh >= s.oh) continue;
      for (long long b = 0; b < s.kw; ++b) {
        const long long rw = iw + s.pl - b * s.dw;
        if (rw < 0 || rw % s.sw) continue;
        const long long ow = rw / s.sw;
        if (ow >= s.ow) continue;
        const T* gp = g + ((n * s.oh + oh) * s.ow + ow) * s.co;
        const T* wp = w + ((a * s.kw + b) * s.c + c) * s.co;
        for (long long o = 0; o < s.co; ++o) acc += gp[o] * wp[o];
      }
    }
    gx[e] = acc;
  }
}

// grad_w (kh, kw, c, co) = sum over n, oh, ow of x[n, ih, iw, c] g[n, oh, ow, co]: one thread per
// weight, a fixed summation order (deterministic).
template <typename T>
__global__ void conv2d_grad_w(const T* __restrict g, const T* __restrict x, T* __restrict gw,
                              RECFAST_CONV_DIMS) {
  RECFAST_CONV_SHAPE;
  const long long total = s.kh * s.kw * s.c * s.co;
  for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
       e += (long long)gridDim.x * blockDim.x) {
    const long long co = e % s.co, p = e / s.co;
    const long long c = p % s.c, q = p / s.c, b = q % s.kw, a = q / s.kw;
    T acc = T(0);
    for (long long n = 0; n < s.n; ++n)
      for (long long oh = 0; oh < s.oh; ++oh) {
        const long long ih = conv_in_coord(oh, a, s.sh, s.dh, s.pt);
        if (ih < 0 || ih >= s.h) continue;
        for (long long ow = 0; ow < s.ow; ++ow) {
          const long long iw = conv_in_coord(ow, b, s.sw, s.dw, s.pl);
          if (iw < 0 || iw >= s.w) continue;
          acc += x[((n * s.h + ih) * s.w + iw) * s.c + c] *
                 g[((n * s.oh + oh) * s.ow + ow) * s.co + co];
        }
      }
    gw[e] = acc;
  }
}

// out, idx (n, oh, ow, c): each window's maximum and the flat ih * w + iw of its first maximum
// (a NaN wins, as pool_takes says; padding never counts; a window wholly in the padding gives 0
// and its first tap's index, as the reference).
template <typename T>
__global__ void max_pool2d_forward(const T* __restrict x, T* __restrict out,
                                   long long* __restrict idx, RECFAST_POOL_DIMS) {
  RECFAST_POOL_SHAPE;
  const long long total = s.n * s.oh * s.ow * s.c;
  for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
       e += (long long)gridDim.x * blockDim.x) {
    const long long c = e % s.c, p = e / s.c;
    const long long ow = p % s.ow, q = p / s.ow, oh = q % s.oh, n = q / s.oh;
    T best = T(0);
    long long arg = (oh * s.sh - s.ph) * s.w + (ow * s.sw - s.pw);
    bool have = false;
    for (long long a = 0; a < s.kh; ++a) {
      const long long ih = oh * s.sh - s.ph + a;
      if (ih < 0 || ih >= s.h) continue;
      for (long long b = 0; b < s.kw; ++b) {
        const long long iw = ow * s.sw - s.pw + b;
        if (iw < 0 || iw >= s.w) continue;
        const T v = x[((n * s.h + ih) * s.w + iw) * s.c + c];
        if (!have || pool_takes(v, best)) {
          best = v;
          arg = ih * s.w + iw;
          have = true;
        }
      }
    }
    out[e] = best;
    idx[e] = arg;
  }
}

// grad_x (n, h, w, c), zeroed by the caller, += g at each window's argmax (atomics: overlapping
// windows add up). idx entries outside [0, h*w) are skipped and counted into *bad (the launcher
// pre-checks them with count_out_of_range, so this only catches a concurrent rewrite).
template <typename T>
__global__ void max_pool2d_backward(const T* __restrict g, const long long* __restrict idx, T* gx,
                                    unsigned long long* bad, RECFAST_POOL_DIMS) {
  RECFAST_POOL_SHAPE;
  const long long total = s.n * s.oh * s.ow * s.c, hw = s.h * s.w;
  for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
       e += (long long)gridDim.x * blockDim.x) {
    const long long c = e % s.c, n = e / (s.oh * s.ow * s.c);
    const long long k = idx[e];
    if ((unsigned long long)k >= (unsigned long long)hw) {
      atomicAdd(bad, 1ull);
      continue;
    }
    atomicAdd(gx + (n * hw + k) * s.c + c, g[e]);
  }
}

}  // namespace gpu
}  // namespace recfast
