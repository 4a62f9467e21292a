// Recurrent sequences on the CPU: one GEMM for every step's input projection, then per step one
// GEMM for the recurrent projection and one fused pass (biases, gates, state update, length mask).
// Backward mirrors it and leaves the weight gradients to three GEMMs over all steps at the end.
#include <algorithm>
#include <cstring>
#include <memory>

#include "recfast/blas.hpp"
#include "recfast/isa.hpp"
#include "recfast/rnn.hpp"
#include "rnn_rows.hpp"

namespace recfast {
namespace {

template <typename T>
std::unique_ptr<T[]> scratch(int64_t n) {  // uninitialised: every element is written before use
  return std::unique_ptr<T[]>(new T[static_cast<size_t>(std::max<int64_t>(n, 1))]);
}

template <typename T>
void forward_rows(const RnnShape& s, const RowsForward<T>& a) {
#if defined(__x86_64__) && defined(__GNUC__)
  const Isa isa = cpu_isa();
  if (isa == Isa::avx512) return avx512::rnn_forward_rows(s, a);
  if (isa == Isa::avx2) return avx2::rnn_forward_rows(s, a);
#endif
  baseline::rnn_forward_rows(s, a);
}

template <typename T>
void backward_rows(const RnnShape& s, const RowsBackward<T>& a) {
#if defined(__x86_64__) && defined(__GNUC__)
  const Isa isa = cpu_isa();
  if (isa == Isa::avx512) return avx512::rnn_backward_rows(s, a);
  if (isa == Isa::avx2) return avx2::rnn_backward_rows(s, a);
#endif
  baseline::rnn_backward_rows(s, a);
}

template <typename T>
void forward_impl(const RnnShape& s, const RnnForwardArgs<T>& a, int nt) {
  const int64_t T_ = s.T, N = s.N, D = s.D, H = s.H, GH = gate_count(s.cell) * H;
  const int64_t NH = N * H, gw = gate_cache_width(s);
  const bool lstm = s.cell == Cell::lstm, cached = a.states != nullptr;
  blas::ThreadScope threads(nt);

  // Input projections of every step at once; the input bias is folded in after.
  auto xw = scratch<T>(T_ * N * GH);
  blas::gemm(false, true, T_ * N, GH, D, T(1), a.xs, D, a.W, D, T(0), xw.get(), GH);
  if (a.b_ih) {
    for (int64_t r = 0; r < T_ * N; ++r) {
      T* row = xw.get() + r * GH;
#pragma omp simd
      for (int64_t j = 0; j < GH; ++j) row[j] += a.b_ih[j];
    }
  }
  auto hu = scratch<T>(N * GH);
  // The GRU's recurrent bias is read unconditionally (a branch in the loop blocks vectorizing).
  const int64_t n_zero = s.cell == Cell::gru && !a.b_hh ? GH : 0;
  auto zero_bias = scratch<T>(n_zero);
  std::fill(zero_bias.get(), zero_bias.get() + n_zero, T(0));
  const T* b_hh = a.b_hh ? a.b_hh : zero_bias.get();
  // Without a cache, h and c ping-pong between two buffers, and gates go to a one-row scratch.
  auto ping = scratch<T>(cached ? 0 : 4 * NH);
  auto gate_row = scratch<T>(gw);
  auto state = [&](int64_t t) -> T* {
    return cached ? a.states + t * NH : ping.get() + (t & 1) * NH;
  };
  auto cell = [&](int64_t t) -> T* {
    return cached ? a.cells + t * NH : ping.get() + (2 + (t & 1)) * NH;
  };
  std::memcpy(state(0), a.h0, sizeof(T) * static_cast<size_t>(NH));
  if (lstm) std::memcpy(cell(0), a.c0, sizeof(T) * static_cast<size_t>(NH));

  for (int64_t t = 0; t < T_; ++t) {
    const T *hp = state(t), *cp = lstm ? cell(t) : nullptr;
    T *hn = state(t + 1), *cn = lstm ? cell(t + 1) : nullptr;
    blas::gemm(false, true, N, GH, H, T(1), hp, H, a.U, H, T(0), hu.get(), GH);
    RowsForward<T> r;
    r.xw = xw.get() + t * N * GH;
    r.hu = hu.get();
    r.b_hh = b_hh;
    r.hp = hp;
    r.cp = cp;
    r.hn = hn;
    r.cn = cn;
    r.gates = cached && gw ? a.gates + t * N * gw : nullptr;
    r.gate_scratch = gate_row.get();
    r.out = a.out ? a.out + t * NH : nullptr;
    r.lengths = a.lengths;
    r.t = t;
    forward_rows(s, r);
  }
  std::memcpy(a.h_last, state(T_), sizeof(T) * static_cast<size_t>(NH));
  if (lstm && a.c_last) std::memcpy(a.c_last, cell(T_), sizeof(T) * static_cast<size_t>(NH));
}

// Column sums of a (rows, cols) matrix as a GEMM with a ones vector (BLAS threads it).
template <typename T>
void column_sums(const T* a, int64_t rows, int64_t cols, T* out) {
  auto ones = scratch<T>(rows);
  std::fill(ones.get(), ones.get() + rows, T(1));
  blas::gemm(false, false, 1, cols, rows, T(1), ones.get(), rows, a, cols, T(0), out, cols);
}

template <typename T>
void backward_impl(const RnnShape& s, const RnnBackwardArgs<T>& a, int nt) {
  const int64_t T_ = s.T, N = s.N, D = s.D, H = s.H, GH = gate_count(s.cell) * H;
  const int64_t NH = N * H, gw = gate_cache_width(s);
  const bool lstm = s.cell == Cell::lstm, gru = s.cell == Cell::gru;
  blas::ThreadScope threads(nt);

  auto dgx = scratch<T>(T_ * N * GH);
  auto dgh_store = scratch<T>(gru ? T_ * N * GH : 0);
  T* dgh = gru ? dgh_store.get() : dgx.get();  // the input and recurrent sides differ for GRU only
  auto dh = scratch<T>(NH), next = scratch<T>(NH), tot = scratch<T>(H);
  auto dc = scratch<T>(lstm ? NH : 0);
  if (a.grad_h_last) {
    std::memcpy(dh.get(), a.grad_h_last, sizeof(T) * static_cast<size_t>(NH));
  } else {
    std::fill(dh.get(), dh.get() + NH, T(0));
  }
  if (lstm) {
    if (a.grad_c_last) {
      std::memcpy(dc.get(), a.grad_c_last, sizeof(T) * static_cast<size_t>(NH));
    } else {
      std::fill(dc.get(), dc.get() + NH, T(0));
    }
  }

  for (int64_t t = T_ - 1; t >= 0; --t) {
    RowsBackward<T> r;
    r.dh = dh.get();
    r.grad_out = a.grad_out ? a.grad_out + t * NH : nullptr;
    r.dc = lstm ? dc.get() : nullptr;
    r.hp = a.states + t * NH;
    r.h = a.states + (t + 1) * NH;
    r.cp = lstm ? a.cells + t * NH : nullptr;
    r.c = lstm ? a.cells + (t + 1) * NH : nullptr;
    r.gates = gw ? a.gates + t * N * gw : nullptr;
    r.dgx = dgx.get() + t * N * GH;
    r.dgh = dgh + t * N * GH;
    r.next = next.get();
    r.tot = tot.get();
    r.lengths = a.lengths;
    r.t = t;
    backward_rows(s, r);
    // dh_{t-1} = direct part (or the passed-through gradient) + dG_hh U; zero rows add nothing.
    blas::gemm(false, false, N, H, GH, T(1), dgh + t * N * GH, GH, a.U, H, T(1), next.get(), H);
    std::swap(dh, next);
  }
  if (a.grad_h0) std::memcpy(a.grad_h0, dh.get(), sizeof(T) * static_cast<size_t>(NH));
  if (lstm && a.grad_c0) std::memcpy(a.grad_c0, dc.get(), sizeof(T) * static_cast<size_t>(NH));

  const int64_t TN = T_ * N;
  if (a.grad_xs)
    blas::gemm(false, false, TN, D, GH, T(1), dgx.get(), GH, a.W, D, T(0), a.grad_xs, D);
  if (a.grad_W) blas::gemm(true, false, GH, D, TN, T(1), dgx.get(), GH, a.xs, D, T(0), a.grad_W, D);
  if (a.grad_U) blas::gemm(true, false, GH, H, TN, T(1), dgh, GH, a.states, H, T(0), a.grad_U, H);
  if (a.grad_b_ih) column_sums(dgx.get(), TN, GH, a.grad_b_ih);
  if (a.grad_b_hh) column_sums(dgh, TN, GH, a.grad_b_hh);
}

}  // namespace

void rnn_forward(const RnnShape& s, const RnnForwardArgs<float>& a, int nt) {
  forward_impl(s, a, nt);
}
void rnn_forward(const RnnShape& s, const RnnForwardArgs<double>& a, int nt) {
  forward_impl(s, a, nt);
}
void rnn_backward(const RnnShape& s, const RnnBackwardArgs<float>& a, int nt) {
  backward_impl(s, a, nt);
}
void rnn_backward(const RnnShape& s, const RnnBackwardArgs<double>& a, int nt) {
  backward_impl(s, a, nt);
}

}  // namespace recfast
