// Host launchers of the direct convolution and max-pooling kernels (recfast/_kernels/conv2d.cuh).
#include <cstdint>

#include "conv2d.cuh"
#include "cuda_check.cuh"
#include "recfast/cuda_launch.hpp"

namespace recfast {
namespace cuda {
namespace {

constexpr int kThreads = 256;

#define CONV_DIMS(s) \
  s.n, s.h, s.w, s.c, s.kh, s.kw, s.co, s.oh, s.ow, s.sh, s.sw, s.dh, s.dw, s.pt, s.pl
#define POOL_DIMS(s) s.n, s.h, s.w, s.c, s.kh, s.kw, s.sh, s.sw, s.ph, s.pw, s.oh, s.ow

cudaStream_t stream(const Launch& l) { return static_cast<cudaStream_t>(l.stream); }

template <typename T>
void fwd(const void* x, const void* w, const void* b, void* y, const Conv2dShape& s, int act,
         const Launch& l) {
  const long long total = s.n * s.oh * s.ow * s.co;
  if (total == 0) return;
  gpu::conv2d_forward<T><<<grid_for(total, kThreads), kThreads, 0, stream(l)>>>(
      static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(b),
      static_cast<T*>(y), act, CONV_DIMS(s));
  check_launch("conv2d_forward", stream(l));
}

template <typename T>
void gx(const void* g, const void* w, void* out, const Conv2dShape& s, const Launch& l) {
  const long long total = s.n * s.h * s.w * s.c;
  if (total == 0) return;
  gpu::conv2d_grad_x<T><<<grid_for(total, kThreads), kThreads, 0, stream(l)>>>(
      static_cast<const T*>(g), static_cast<const T*>(w), static_cast<T*>(out), CONV_DIMS(s));
  check_launch("conv2d_grad_x", stream(l));
}

template <typename T>
void gw(const void* g, const void* x, void* out, const Conv2dShape& s, const Launch& l) {
  const long long total = s.kh * s.kw * s.c * s.co;
  if (total == 0) return;
  gpu::conv2d_grad_w<T><<<grid_for(total, kThreads), kThreads, 0, stream(l)>>>(
      static_cast<const T*>(g), static_cast<const T*>(x), static_cast<T*>(out), CONV_DIMS(s));
  check_launch("conv2d_grad_w", stream(l));
}

template <typename T>
void pool(const void* x, void* out, int64_t* idx, const Pool2dShape& s, const Launch& l) {
  const long long total = s.n * s.oh * s.ow * s.c;
  if (total == 0) return;
  gpu::max_pool2d_forward<T><<<grid_for(total, kThreads), kThreads, 0, stream(l)>>>(
      static_cast<const T*>(x), static_cast<T*>(out), reinterpret_cast<long long*>(idx),
      POOL_DIMS(s));
  check_launch("max_pool2d_forward", stream(l));
}

template <typename T>
void pool_back(const void* g, const int64_t* idx, void* out, unsigned long long* bad,
               const Pool2dShape& s, const Launch& l) {
  const long long total = s.n * s.oh * s.ow * s.c;
  if (total == 0) return;
  gpu::max_pool2d_backward<T><<<grid_for(total, kThreads), kThreads, 0, stream(l)>>>(
      static_cast<const T*>(g), reinterpret_cast<const long long*>(idx), static_cast<T*>(out), bad,
      POOL_DIMS(s));
  check_launch("max_pool2d_backward", stream(l));
}

}  // namespace

void conv2d_forward(bool f64, const void* x, const void* w, const void* bias, void* y,
                    const Conv2dShape& s, int act, const Launch& l) {
  f64 ? fwd<double>(x, w, bias, y, s, act, l) : fwd<float>(x, w, bias, y, s, act, l);
}
void conv2d_grad_x(bool f64, const void* g, const void* w, void* out, const Conv2dShape& s,
                   const Launch& l) {
  f64 ? gx<double>(g, w, out, s, l) : gx<float>(g, w, out, s, l);
}
void conv2d_grad_w(bool f64, const void* g, const void* x, void* out, const Conv2dShape& s,
                   const Launch& l) {
  f64 ? gw<double>(g, x, out, s, l) : gw<float>(g, x, out, s, l);
}
void max_pool2d_forward(bool f64, const void* x, void* out, int64_t* idx, const Pool2dShape& s,
                        const Launch& l) {
  f64 ? pool<double>(x, out, idx, s, l) : pool<float>(x, out, idx, s, l);
}
void max_pool2d_backward(bool f64, const void* g, const int64_t* idx, void* out,
                         unsigned long long* bad, const Pool2dShape& s, const Launch& l) {
  f64 ? pool_back<double>(g, idx, out, bad, s, l) : pool_back<float>(g, idx, out, bad, s, l);
}
void count_out_of_range(const int64_t* idx, int64_t n, int64_t bound, unsigned long long* bad,
                        const Launch& l) {
  gpu::count_out_of_range<long long><<<grid_for(n, kThreads), kThreads, 0, stream(l)>>>(
      reinterpret_cast<const long long*>(idx), n, bound, bad);
  check_launch("count_out_of_range", stream(l));
}

}  // namespace cuda
}  // namespace recfast
