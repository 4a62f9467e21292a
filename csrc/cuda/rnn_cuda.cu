// Host launcher of the fused recurrent step (recfast/_kernels/rnn.cuh).
#include <cstdint>

#include "cuda_check.cuh"
#include "recfast/cuda_launch.hpp"
#include "rnn.cuh"

namespace recfast {
namespace cuda {
namespace {

constexpr int kThreads = 256;

template <typename T>
void step(const RnnStepArgs& a, const Launch& l) {
  if (a.N * a.H == 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(l.stream);
  gpu::rnn_step_forward<T><<<grid_for(a.N * a.H, kThreads), kThreads, 0, s>>>(
      a.cell, a.act, static_cast<const T*>(a.a), static_cast<const T*>(a.u),
      static_cast<const T*>(a.b_ih), static_cast<const T*>(a.b_hh),
      reinterpret_cast<const long long*>(a.lengths), a.t, static_cast<const T*>(a.h_prev),
      static_cast<const T*>(a.c_prev), static_cast<T*>(a.h_new), static_cast<T*>(a.c_new),
      static_cast<T*>(a.out_t), static_cast<T*>(a.gates_t), a.N, a.H);
  check_launch("rnn_step_forward", s);
}

template <typename T>
void step_back(const RnnStepBackArgs& a, const Launch& l) {
  if (a.N * a.H == 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(l.stream);
  gpu::rnn_step_backward<T><<<grid_for(a.N * a.H, kThreads), kThreads, 0, s>>>(
      a.cell, a.act, static_cast<const T*>(a.grad_out_t), static_cast<T*>(a.dh_base),
      static_cast<const T*>(a.dh_mat), static_cast<T*>(a.dc), static_cast<const T*>(a.h_prev),
      static_cast<const T*>(a.h), static_cast<const T*>(a.c_prev), static_cast<const T*>(a.c),
      static_cast<const T*>(a.gates_t), reinterpret_cast<const long long*>(a.lengths), a.t,
      static_cast<T*>(a.gx_t), static_cast<T*>(a.gh_t), a.N, a.H);
  check_launch("rnn_step_backward", s);
}

}  // namespace

void rnn_step_backward_f32(const RnnStepBackArgs& a, const Launch& l) { step_back<float>(a, l); }
void rnn_step_backward_f64(const RnnStepBackArgs& a, const Launch& l) { step_back<double>(a, l); }
void rnn_step_forward_f32(const RnnStepArgs& a, const Launch& l) { step<float>(a, l); }
void rnn_step_forward_f64(const RnnStepArgs& a, const Launch& l) { step<double>(a, l); }

}  // namespace cuda
}  // namespace recfast
