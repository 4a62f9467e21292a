// Host launchers of the dense epilogues (recfast/_kernels/dense.cuh) and the device probe.
#include <cstdint>
#include <string>

#include "cuda_check.cuh"
#include "dense.cuh"
#include "recfast/cuda_launch.hpp"

namespace recfast {
namespace cuda {
namespace {

constexpr int kThreads = 256;

template <typename T>
void bias_act(T* y, const T* b, int64_t n, int64_t h, int act, const Launch& l) {
  if (n * h == 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(l.stream);
  gpu::bias_activation<T><<<grid_for(n * h, kThreads * 4), kThreads, 0, s>>>(y, b, n, h, act);
  check_launch("bias_activation", s);
}

template <typename T>
void act_back(const T* g, const T* y, T* gp, int64_t total, int act, const Launch& l) {
  if (total == 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(l.stream);
  gpu::activation_backward<T>
      <<<grid_for(total, kThreads * 4), kThreads, 0, s>>>(g, y, gp, total, act);
  check_launch("activation_backward", s);
}

}  // namespace

void bias_activation(float* y, const float* b, int64_t n, int64_t h, int act, const Launch& l) {
  bias_act(y, b, n, h, act, l);
}
void bias_activation(double* y, const double* b, int64_t n, int64_t h, int act, const Launch& l) {
  bias_act(y, b, n, h, act, l);
}
void activation_backward(const float* g, const float* y, float* gp, int64_t total, int act,
                         const Launch& l) {
  act_back(g, y, gp, total, act, l);
}
void activation_backward(const double* g, const double* y, double* gp, int64_t total, int act,
                         const Launch& l) {
  act_back(g, y, gp, total, act, l);
}

std::string device_status() {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear it: the next call must not see a stale error
    return std::string("no CUDA device (cudaGetDeviceCount: ") + cudaGetErrorName(err) + ", " +
           cudaGetErrorString(err) + ")";
  }
  return n > 0 ? std::string() : std::string("no CUDA device (cudaGetDeviceCount returned 0)");
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

std::string runtime_version() {
  int v = 0;
  cudaRuntimeGetVersion(&v);
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

}  // namespace cuda
}  // namespace recfast
