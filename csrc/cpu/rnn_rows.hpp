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
  int64_t n0 = 0, n1 = 0;   // the batch rows [n0, n1) this call handles
  int64_t j0 = 0, j1 = -1;  // and its hidden units [j0, j1) (j1 < 0: all H)
  bool fused = false;       // xw holds W x + U h (+ b_ih) but for the GRU's n: hu read for n only
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
  int64_t n0 = 0, n1 = 0;
};

// One term of a dot-form product (gemm_nt.inc): A (rows, K) against B (cols, K), both with
// unit stride along K.
template <typename T>
struct NtSegment {
  const T* A = nullptr;
  int64_t lda = 0;
  const T* B = nullptr;
  int64_t ldb = 0;
  int64_t K = 0;
};

// Column panels of a packed weight matrix: two SIMD registers of AVX2 wide.
template <typename T>
constexpr int64_t kPanel = 64 / int64_t(sizeof(T));

// Packs B (n_out x K, element (j, k) at src[j * stride_out + k * stride_k]) into panels of kPanel
// columns, each stored k-major (kPanel values per k), zero-padded: the layout rnn_packed_gemm
// streams. Done once per sequence call; BLAS would repack the weights on every step.
template <typename T>
void pack_panels(const T* src, int64_t n_out, int64_t K, int64_t stride_out, int64_t stride_k,
                 T* dst) {
  constexpr int64_t W = kPanel<T>;
  for (int64_t p = 0; p * W < n_out; ++p)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t c = 0; c < W; ++c) {
        const int64_t j = p * W + c;
        dst[(p * K + k) * W + c] = j < n_out ? src[j * stride_out + k * stride_k] : T(0);
      }
}

template <typename T>
constexpr int64_t packed_size(int64_t n_out, int64_t K) {
  return (n_out + kPanel<T> - 1) / kPanel<T> * kPanel<T> * K;
}

#define RECFAST_DECLARE_RNN_ISA(ns)                                                               \
  namespace ns {                                                                                  \
  void rnn_forward_rows(const RnnShape& s, const RowsForward<float>& a);                          \
  void rnn_forward_rows(const RnnShape& s, const RowsForward<double>& a);                         \
  void rnn_backward_rows(const RnnShape& s, const RowsBackward<float>& a);                        \
  void rnn_backward_rows(const RnnShape& s, const RowsBackward<double>& a);                       \
  void rnn_packed_gemm(const float* A, int64_t lda, const float* P, int64_t n_out, int64_t K,     \
                       float* C, int64_t ldc, int64_t rows, bool accumulate);                     \
  void rnn_packed_gemm(const double* A, int64_t lda, const double* P, int64_t n_out, int64_t K,   \
                       double* C, int64_t ldc, int64_t rows, bool accumulate);                    \
  void rnn_gemm_nt(const NtSegment<float>* seg, int nseg, int64_t rows, int64_t cols, float* C,   \
                   int64_t ldc, const float* bias, bool accumulate);                              \
  void rnn_gemm_nt(const NtSegment<double>* seg, int nseg, int64_t rows, int64_t cols, double* C, \
                   int64_t ldc, const double* bias, bool accumulate);                             \
  }
RECFAST_DECLARE_RNN_ISA(baseline)
#if defined(__x86_64__) && defined(__GNUC__)
RECFAST_DECLARE_RNN_ISA(avx2)
RECFAST_DECLARE_RNN_ISA(avx512)
#endif

}  // namespace recfast
