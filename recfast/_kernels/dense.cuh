// The dense layer's element-wise epilogues on the GPU (the product itself is cuBLAS, called
// through the caller's CuPy or PyTorch on the same stream): y = f(y + b) in place after the GEMM,
// and g = grad_out * f'(y) before the backward GEMMs. The activation arithmetic is
// recfast/activation.hpp's, as on the CPU. One source for the `cuda` and `cupy` backends;
// NVRTC-safe.
#pragma once

#include "recfast/activation.hpp"

namespace recfast {
namespace gpu {

// y (n, h) row-major, y = f(y + b); b (h,) may be null. Grid-stride over the n * h entries.
template <typename T>
__global__ void bias_activation(T* __restrict y, const T* __restrict b, long long n, long long h,
                                int act) {
  const Act a = static_cast<Act>(act);
  const long long total = n * h;
  for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < total;
       j += (long long)gridDim.x * blockDim.x) {
    T v = y[j];
    if (b) v += b[j % h];
    y[j] = act_forward(a, v);
  }
}

// g_pre = g_out * f'(y), all (n * h,) contiguous.
template <typename T>
__global__ void activation_backward(const T* __restrict g_out, const T* __restrict y,
                                    T* __restrict g_pre, long long total, int act) {
  const Act a = static_cast<Act>(act);
  for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < total;
       j += (long long)gridDim.x * blockDim.x)
    g_pre[j] = g_out[j] * act_grad_from_output(a, y[j]);
}

}  // namespace gpu
}  // namespace recfast
