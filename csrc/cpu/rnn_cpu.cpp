// Recurrent sequences on the CPU: one GEMM for every step's input projection, then per step one
// GEMM for the recurrent projection and one fused pass (biases, gates, state update, length mask).
// Backward mirrors it and leaves the weight gradients to three GEMMs over all steps at the end.
#include <algorithm>
#include <cstring>
#include <memory>

#include "recfast/blas.hpp"
#include "recfast/rnn.hpp"

namespace recfast {
namespace {

template <typename T>
std::unique_ptr<T[]> scratch(int64_t n) {  // uninitialised: every element is written before use
  return std::unique_ptr<T[]>(new T[static_cast<size_t>(std::max<int64_t>(n, 1))]);
}

inline bool active(const int64_t* lengths, int64_t n, int64_t t) {
  return lengths == nullptr || t < lengths[n];
}

// One step's fused pass over a batch row. xw: W x + b_ih row (G H); hu: U h_prev row (G H).
template <typename T>
void rnn_row(const RnnShape& s, const T* xw, const T* hu, const T* b_hh, const T* hp, const T* cp,
             T* h, T* c, T* gates) {
  const int64_t H = s.H;
  if (s.cell == Cell::rnn) {
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) h[j] = xw[j] + hu[j];
    switch (s.act) {  // the switch sits outside the loops so that each one vectorizes
      case Act::relu:
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) h[j] = act_forward(Act::relu, h[j]);
        break;
      case Act::sigmoid:
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) h[j] = act_forward(Act::sigmoid, h[j]);
        break;
      case Act::tanh:
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) h[j] = act_forward(Act::tanh, h[j]);
        break;
      default:
        break;
    }
  } else if (s.cell == Cell::gru) {
    T* g = gates;  // r, z, n, hn: a cache row, or scratch
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const T bhr = b_hh[j], bhz = b_hh[H + j], bhn = b_hh[2 * H + j];
      const T hn = hu[2 * H + j] + bhn;
      const GruGates<T> q =
          gru_forward(xw[j], xw[H + j], xw[2 * H + j], hu[j] + bhr, hu[H + j] + bhz, hn, hp[j]);
      g[j] = q.r;
      g[H + j] = q.z;
      g[2 * H + j] = q.n;
      g[3 * H + j] = hn;
      h[j] = q.h;
    }
  } else {
    T* g = gates;  // i, f, g, o
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const LstmGates<T> q =
          lstm_forward(xw[j] + hu[j], xw[H + j] + hu[H + j], xw[2 * H + j] + hu[2 * H + j],
                       xw[3 * H + j] + hu[3 * H + j], cp[j]);
      g[j] = q.i;
      g[H + j] = q.f;
      g[2 * H + j] = q.g;
      g[3 * H + j] = q.o;
      c[j] = q.c;
      h[j] = q.h;
    }
  }
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
  auto gate_row = scratch<T>(cached ? 0 : gw);
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
    for (int64_t n = 0; n < N; ++n) {
      T* out = a.out ? a.out + (t * N + n) * H : nullptr;
      if (!active(a.lengths, n, t)) {  // frozen past the end; outputs there are zero
        std::memcpy(hn + n * H, hp + n * H, sizeof(T) * static_cast<size_t>(H));
        if (lstm) std::memcpy(cn + n * H, cp + n * H, sizeof(T) * static_cast<size_t>(H));
        if (cached && gw)
          std::fill(a.gates + (t * N + n) * gw, a.gates + (t * N + n + 1) * gw, T(0));
        if (out) std::fill(out, out + H, T(0));
        continue;
      }
      T* g = cached ? a.gates + (t * N + n) * gw : gate_row.get();
      rnn_row(s, xw.get() + (t * N + n) * GH, hu.get() + n * GH, b_hh, hp + n * H,
              lstm ? cp + n * H : nullptr, hn + n * H, lstm ? cn + n * H : nullptr, g);
      if (out) std::memcpy(out, hn + n * H, sizeof(T) * static_cast<size_t>(H));
    }
  }
  std::memcpy(a.h_last, state(T_), sizeof(T) * static_cast<size_t>(NH));
  if (lstm && a.c_last) std::memcpy(a.c_last, cell(T_), sizeof(T) * static_cast<size_t>(NH));
}

// One batch row of step t backward. dh: gradient reaching h_t (grad_out already added); dc (LSTM)
// is updated in place to the gradient reaching c_{t-1}. Writes the pre-activation gradients of
// the input side (dgx) and recurrent side (dgh, the GRU's only) and the direct part of dh_{t-1}.
template <typename T>
void rnn_row_backward(const RnnShape& s, const T* dh, T* dc, const T* hp, const T* h, const T* cp,
                      const T* c, const T* g, T* dgx, T* dgh, T* direct) {
  const int64_t H = s.H;
  if (s.cell == Cell::rnn) {
    switch (s.act) {
      case Act::relu:
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) dgx[j] = dh[j] * act_grad_from_output(Act::relu, h[j]);
        break;
      case Act::sigmoid:
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) dgx[j] = dh[j] * act_grad_from_output(Act::sigmoid, h[j]);
        break;
      case Act::tanh:
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) dgx[j] = dh[j] * act_grad_from_output(Act::tanh, h[j]);
        break;
      default:
        std::memcpy(dgx, dh, sizeof(T) * static_cast<size_t>(H));
    }
    std::fill(direct, direct + H, T(0));
  } else if (s.cell == Cell::gru) {
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const GruGrads<T> d = gru_backward(dh[j], hp[j], g[j], g[H + j], g[2 * H + j], g[3 * H + j]);
      dgx[j] = dgh[j] = d.dr;
      dgx[H + j] = dgh[H + j] = d.dz;
      dgx[2 * H + j] = d.dn;
      dgh[2 * H + j] = d.dhn;
      direct[j] = d.dh_prev;
    }
  } else {
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const LstmGrads<T> d =
          lstm_backward(dh[j], dc[j], cp[j], g[j], g[H + j], g[2 * H + j], g[3 * H + j], c[j]);
      dgx[j] = d.di;
      dgx[H + j] = d.df;
      dgx[2 * H + j] = d.dg;
      dgx[3 * H + j] = d.do_;
      dc[j] = d.dc_prev;
      direct[j] = T(0);
    }
  }
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
    const T *hp = a.states + t * NH, *h = a.states + (t + 1) * NH;
    for (int64_t n = 0; n < N; ++n) {
      T *gx = dgx.get() + (t * N + n) * GH, *gh = dgh + (t * N + n) * GH;
      T* nx = next.get() + n * H;
      if (!active(a.lengths, n, t)) {  // h_t = h_{t-1}: the gradient passes through untouched
        std::fill(gx, gx + GH, T(0));
        if (gru) std::fill(gh, gh + GH, T(0));
        std::memcpy(nx, dh.get() + n * H, sizeof(T) * static_cast<size_t>(H));
        continue;
      }
      const T* d = dh.get() + n * H;
      if (a.grad_out) {
        const T* go = a.grad_out + (t * N + n) * H;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) tot[j] = d[j] + go[j];
        d = tot.get();
      }
      rnn_row_backward(s, d, lstm ? dc.get() + n * H : nullptr, hp + n * H, h + n * H,
                       lstm ? a.cells + t * NH + n * H : nullptr,
                       lstm ? a.cells + (t + 1) * NH + n * H : nullptr,
                       gw ? a.gates + (t * N + n) * gw : nullptr, gx, gh, nx);
    }
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
