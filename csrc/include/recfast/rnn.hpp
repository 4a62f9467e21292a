// Whole-sequence recurrent kernels (RNN, GRU, LSTM), forward and backpropagation through time.
// Row-major arrays; weights in PyTorch's layout: W (G H, D), U (G H, H). No Python types here.
#pragma once

#ifndef __CUDACC_RTC__
#include <cstdint>
#endif

#include "recfast/activation.hpp"
#include "recfast/rnn_cells.hpp"

namespace recfast {

struct RnnShape {
  int64_t T, N, D, H;
  Cell cell;
  Act act;  // the plain RNN's activation (GRU and LSTM have fixed ones)
};

// Width of the per-step gate cache: GRU r, z, n, U_n h + b_hn (4H); LSTM i, f, g, o (4H).
inline int64_t gate_cache_width(const RnnShape& s) { return s.cell == Cell::rnn ? 0 : 4 * s.H; }

template <typename T>
struct RnnForwardArgs {
  const T* xs = nullptr;    // (T, N, D)
  const T* h0 = nullptr;    // (N, H)
  const T* c0 = nullptr;    // (N, H), LSTM
  const T* W = nullptr;     // (G H, D)
  const T* U = nullptr;     // (G H, H)
  const T* b_ih = nullptr;  // (G H,) or null: the RNN's / LSTM's bias, the GRU's input bias
  const T* b_hh = nullptr;  // (G H,) or null: the GRU's recurrent bias
  const int64_t* lengths = nullptr;  // (N,) in [0, T], or null: all T
  T* out = nullptr;                  // (T, N, H) or null: h_t, zero from each sequence's end on
  T* h_last = nullptr;               // (N, H): h at each sequence's last step (h0 for length 0)
  T* c_last = nullptr;               // (N, H), LSTM
  // BPTT cache, all or none: states (T + 1, N, H) h_0..h_T with rows frozen past their end;
  // cells (T + 1, N, H) the LSTM's c; gates (T, N, gate_cache_width).
  T* states = nullptr;
  T* cells = nullptr;
  T* gates = nullptr;
};

template <typename T>
struct RnnBackwardArgs {
  const T* xs = nullptr;
  const T* W = nullptr;
  const T* U = nullptr;
  const int64_t* lengths = nullptr;
  const T* states = nullptr;  // the forward cache
  const T* cells = nullptr;
  const T* gates = nullptr;
  const T* grad_out = nullptr;     // (T, N, H) or null; ignored past each sequence's end
  const T* grad_h_last = nullptr;  // (N, H) or null
  const T* grad_c_last = nullptr;  // (N, H) or null, LSTM
  T* grad_xs = nullptr;            // (T, N, D) or null
  T* grad_h0 = nullptr;            // (N, H) or null
  T* grad_c0 = nullptr;            // (N, H) or null, LSTM
  T* grad_W = nullptr;             // (G H, D) or null
  T* grad_U = nullptr;             // (G H, H) or null
  T* grad_b_ih = nullptr;          // (G H,) or null
  T* grad_b_hh = nullptr;          // (G H,) or null, GRU
};

// num_threads goes to the BLAS products; the fused per-step passes run on the calling thread.
void rnn_forward(const RnnShape& s, const RnnForwardArgs<float>& a, int num_threads);
void rnn_forward(const RnnShape& s, const RnnForwardArgs<double>& a, int num_threads);
void rnn_backward(const RnnShape& s, const RnnBackwardArgs<float>& a, int num_threads);
void rnn_backward(const RnnShape& s, const RnnBackwardArgs<double>& a, int num_threads);

}  // namespace recfast
