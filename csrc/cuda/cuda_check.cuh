// Launch checking shared by the launchers (host side of csrc/cuda/*.cu only).
#pragma once

#include <cuda_runtime.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace recfast {
namespace cuda {

inline void throw_on(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("recfast CUDA: ") + what + ": " + cudaGetErrorName(err) +
                             " (" + cudaGetErrorString(err) + ")");
}

inline bool sync_each_launch() {
  static const bool on = [] {
    const char* v = std::getenv("RECFAST_CUDA_SYNC");
    return v && v[0] == '1';
  }();
  return on;
}

// After every kernel launch: the launch error now, and with RECFAST_CUDA_SYNC=1 the kernel's.
inline void check_launch(const char* what, cudaStream_t s) {
  throw_on(cudaGetLastError(), what);
  if (sync_each_launch()) throw_on(cudaStreamSynchronize(s), what);
}

// Blocks of 256 threads for `work` items (warps or elements): enough to fill every SM a few
// times over, grid-stride loops doing the rest.
inline int grid_for(long long work_items, int items_per_block) {
  static const int cap = [] {
    int dev = 0, sms = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)
      sms = 132;
    return sms * 16;
  }();
  long long g = (work_items + items_per_block - 1) / items_per_block;
  if (g < 1) g = 1;
  return int(g < cap ? g : cap);
}

}  // namespace cuda
}  // namespace recfast
