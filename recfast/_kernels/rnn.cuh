// One recurrent step on the GPU, fused: the gate non-linearities and the state update of
// recfast/rnn_cells.hpp (the CPU kernels' functions) over the (N, H) units, after the two products
// (the input side W x for all T steps in one GEMM, the recurrent side U h per step) ran in cuBLAS.
// One source for the `cuda` and `cupy` backends; NVRTC-safe.
#pragma once

#include "recfast/rnn_cells.hpp"

namespace recfast {
namespace gpu {

// Unit (n, j) of step t. a (N, G H): W x_t; u (N, G H): U h_{t-1}; b_ih, b_hh (G H,) or null.
// h_prev / c_prev (N, H) may alias h_new / c_new (each unit reads only its own entry). Past a
// sequence's end (lengths[n] <= t) the state is carried and out / gates are 0, as the reference.
template <typename T>
__global__ void rnn_step_forward(int cell, int act, const T* __restrict a, const T* __restrict u,
                                 const T* __restrict b_ih, const T* __restrict b_hh,
                                 const long long* __restrict lengths, long long t, const T* h_prev,
                                 const T* c_prev, T* h_new, T* c_new, T* __restrict out_t,
                                 T* __restrict gates_t, long long N, long long H) {
  const Cell c = static_cast<Cell>(cell);
  const long long G = gate_count(c);
  for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < N * H;
       e += (long long)gridDim.x * blockDim.x) {
    const long long n = e / H, j = e % H;
    const T* an = a + n * G * H;
    const T* un = u + n * G * H;
    T x[4], r[4];
    for (long long g = 0; g < G; ++g) {
      x[g] = an[g * H + j] + (b_ih ? b_ih[g * H + j] : T(0));
      r[g] = un[g * H + j] + (b_hh ? b_hh[g * H + j] : T(0));
    }
    const bool live = !lengths || lengths[n] > t;
    const T hp = h_prev[e];
    T h, cn = T(0), gv[4] = {T(0), T(0), T(0), T(0)};
    if (c == Cell::rnn) {
      h = act_forward(static_cast<Act>(act), x[0] + r[0]);
    } else if (c == Cell::gru) {
      const GruGates<T> s = gru_forward(x[0], x[1], x[2], r[0], r[1], r[2], hp);
      h = s.h;
      gv[0] = s.r, gv[1] = s.z, gv[2] = s.n, gv[3] = r[2];
    } else {
      const T cp = c_prev[e];
      const LstmGates<T> s = lstm_forward(x[0] + r[0], x[1] + r[1], x[2] + r[2], x[3] + r[3], cp);
      h = s.h;
      cn = s.c;
      gv[0] = s.i, gv[1] = s.f, gv[2] = s.g, gv[3] = s.o;
      c_new[e] = live ? cn : cp;
    }
    h_new[e] = live ? h : hp;
    if (out_t) out_t[e] = live ? h : T(0);
    if (gates_t && c != Cell::rnn)
      for (int g = 0; g < 4; ++g) gates_t[n * 4 * H + g * H + j] = live ? gv[g] : T(0);
  }
}

// BPTT, unit (n, j) of step t, going backwards. The gradient reaching h_t is dh_base + dh_mat
// (dh_mat = the previous launch's gh @ U, by cuBLAS; zero at the start). Writes the pre-activation
// gradients gx_t, gh_t (N, G H) (zero past the sequence's end; gh_t may be gx_t: RNN and LSTM),
// and dh_base = what reaches h_{t-1} besides gh_t @ U (the GRU's direct path, or the carried
// gradient past the end); the LSTM's dc in place. grad_out_t may be null.
template <typename T>
__global__ void rnn_step_backward(int cell, int act, const T* __restrict grad_out_t, T* dh_base,
                                  const T* __restrict dh_mat, T* dc, const T* __restrict h_prev,
                                  const T* __restrict h, const T* __restrict c_prev,
                                  const T* __restrict c, const T* __restrict gates_t,
                                  const long long* __restrict lengths, long long t, T* gx_t,
                                  T* gh_t, long long N, long long H) {
  const Cell cl = static_cast<Cell>(cell);
  const long long G = gate_count(cl);
  for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < N * H;
       e += (long long)gridDim.x * blockDim.x) {
    const long long n = e / H, j = e % H;
    const bool live = !lengths || lengths[n] > t;
    const T dh = dh_base[e] + dh_mat[e];
    const T d = dh + (grad_out_t ? grad_out_t[e] : T(0));
    T gx[4] = {T(0), T(0), T(0), T(0)}, gh[4] = {T(0), T(0), T(0), T(0)};
    T direct = T(0);
    if (cl == Cell::rnn) {
      gx[0] = gh[0] = d * act_grad_from_output(static_cast<Act>(act), h[e]);
    } else if (cl == Cell::gru) {
      const T* gt = gates_t + n * 4 * H;
      const GruGrads<T> g =
          gru_backward(d, h_prev[e], gt[j], gt[H + j], gt[2 * H + j], gt[3 * H + j]);
      gx[0] = gh[0] = g.dr;
      gx[1] = gh[1] = g.dz;
      gx[2] = g.dn;
      gh[2] = g.dhn;
      direct = g.dh_prev;
    } else {
      const T* gt = gates_t + n * 4 * H;
      const LstmGrads<T> g =
          lstm_backward(d, dc[e], c_prev[e], gt[j], gt[H + j], gt[2 * H + j], gt[3 * H + j], c[e]);
      gx[0] = gh[0] = g.di;
      gx[1] = gh[1] = g.df;
      gx[2] = gh[2] = g.dg;
      gx[3] = gh[3] = g.do_;
      if (live) dc[e] = g.dc_prev;
    }
    for (long long k = 0; k < G; ++k) {
      gx_t[n * G * H + k * H + j] = live ? gx[k] : T(0);
      if (gh_t != gx_t) gh_t[n * G * H + k * H + j] = live ? gh[k] : T(0);
    }
    dh_base[e] = live ? direct : dh;
  }
}

}  // namespace gpu
}  // namespace recfast
