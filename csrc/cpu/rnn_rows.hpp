// Internal to the recurrent CPU kernels: one time step's fused pass over the batch rows, with a
// copy per instruction set (rnn_rows.inc, compiled by rnn_isa_*.cpp) and the dispatcher's view.
#pragma once

#include <cstdint>

#include "recfast/rnn.hpp"

namespace recfast {

template <typename T>
struct RowsForward {          // step t, all (N, .) arrays offset to this step
  const T* xw = nullptr;      // (N, G H) W x_t + b_ih
  const T* hu = nullptr;      // (N, G H) U h_{t-1}
  const T* b_hh = nullptr;    // (G H,) the GRU's recurrent bias, never null for the GRU
  const T* hp = nullptr;      // (N, H) h_{t-1}
  const T* cp = nullptr;      // (N, H) c_{t-1}, LSTM
  T* hn = nullptr;            // (N, H) h_t
  T* cn = nullptr;            // (N, H) c_t, LSTM
  T* gates = nullptr;         // (N, gate_cache_width) cache rows, or null
  T* gate_scratch = nullptr;  // (gate_cache_width,) used when gates is null
  T* out = nullptr;           // (N, H) this step's outputs, or null
  const int64_t* lengths = nullptr;
  int64_t t = 0;
};

template <typename T>
struct RowsBackward {
  const T* dh = nullptr;        // (N, H) gradient reaching h_t from later steps
  const T* grad_out = nullptr;  // (N, H) this step's output gradient, or null
  T* dc = nullptr;              // (N, H) LSTM: in dL/dc_t from later steps, out dL/dc_{t-1}
  const T *hp = nullptr, *h = nullptr, *cp = nullptr, *c = nullptr, *gates = nullptr;
  T* dgx = nullptr;   // (N, G H) pre-activation gradients, input side
  T* dgh = nullptr;   // (N, G H) recurrent side (the same array except for the GRU)
  T* next = nullptr;  // (N, H) out: direct part of dL/dh_{t-1}, or the pass-through past the end
  T* tot = nullptr;   // (H,) scratch
  const int64_t* lengths = nullptr;
  int64_t t = 0;
};

#define RECFAST_DECLARE_RNN_ISA(ns)                                         \
  namespace ns {                                                            \
  void rnn_forward_rows(const RnnShape& s, const RowsForward<float>& a);    \
  void rnn_forward_rows(const RnnShape& s, const RowsForward<double>& a);   \
  void rnn_backward_rows(const RnnShape& s, const RowsBackward<float>& a);  \
  void rnn_backward_rows(const RnnShape& s, const RowsBackward<double>& a); \
  }
RECFAST_DECLARE_RNN_ISA(baseline)
#if defined(__x86_64__) && defined(__GNUC__)
RECFAST_DECLARE_RNN_ISA(avx2)
RECFAST_DECLARE_RNN_ISA(avx512)
#endif

}  // namespace recfast
