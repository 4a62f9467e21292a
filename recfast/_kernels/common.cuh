// Device helpers shared by the kernel files (NVRTC-safe, like them).
#pragma once

#include "recfast/common.hpp"

namespace recfast {
namespace gpu {

constexpr unsigned kFullMask = 0xffffffffu;

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(kFullMask, v, off);
  return v;  // every lane holds the sum
}

// Counts the entries of idx outside [0, bound) into *bad: the launchers run it before a kernel
// reads the indices, so bad input modifies nothing, and only the count travels to the host.
template <typename I>
__global__ void count_out_of_range(const I* __restrict idx, long long n, long long bound,
                                   unsigned long long* bad) {
  unsigned long long local = 0;
  for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < n;
       j += (long long)gridDim.x * blockDim.x)
    local += (unsigned long long)idx[j] >= (unsigned long long)bound;
  local = warp_sum(local);
  if ((threadIdx.x & 31) == 0 && local) atomicAdd(bad, local);
}

}  // namespace gpu
}  // namespace recfast
