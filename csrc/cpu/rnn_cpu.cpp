// Recurrent sequences on the CPU. Forward, for layers up to 2048 wide (D + H): per step one
// dot-form pass (gemm_nt.inc) that sums W x_t and U h_{t-1} for each thread's hidden units, then
// the cell on them (dot_forward). Wider layers: one GEMM for every step's input projection, then
// per step one GEMM for the recurrent projection and one fused pass (biases, gates, state update,
// length mask). Backward mirrors the latter and leaves the weight gradients to three GEMMs over
// all steps at the end.
#include <algorithm>
#include <cstring>
#include <memory>

#include "recfast/blas.hpp"
#include "recfast/isa.hpp"
#include "recfast/rnn.hpp"
#include "rnn_rows.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

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
void packed_gemm(const T* A, int64_t lda, const T* P, int64_t n_out, int64_t K, T* C, int64_t ldc,
                 int64_t rows, bool accumulate) {
#if defined(__x86_64__) && defined(__GNUC__)
  const Isa isa = cpu_isa();
  if (isa == Isa::avx512)
    return avx512::rnn_packed_gemm(A, lda, P, n_out, K, C, ldc, rows, accumulate);
  if (isa == Isa::avx2) return avx2::rnn_packed_gemm(A, lda, P, n_out, K, C, ldc, rows, accumulate);
#endif
  baseline::rnn_packed_gemm(A, lda, P, n_out, K, C, ldc, rows, accumulate);
}

template <typename T>
void gemm_nt(const NtSegment<T>* seg, int nseg, int64_t rows, int64_t cols, T* C, int64_t ldc,
             const T* bias, bool accumulate) {
#if defined(__x86_64__) && defined(__GNUC__)
  const Isa isa = cpu_isa();
  if (isa == Isa::avx512)
    return avx512::rnn_gemm_nt(seg, nseg, rows, cols, C, ldc, bias, accumulate);
  if (isa == Isa::avx2) return avx2::rnn_gemm_nt(seg, nseg, rows, cols, C, ldc, bias, accumulate);
#endif
  baseline::rnn_gemm_nt(seg, nseg, rows, cols, C, ldc, bias, accumulate);
}

// Up to this many batch rows (and from two steps on), the products run on weights packed once per
// call by a register-blocked kernel; BLAS would repack them on every step (~50% of a step).
constexpr int64_t kPackedMaxRows = 64;

// Threads for the packed path: at least 4 rows and ~64k multiply-adds per step each.
inline int packed_threads(int nt, int64_t N, int64_t GH, int64_t H) {
  const int64_t by_rows = (N + 3) / 4, by_work = std::max<int64_t>(1, N * GH * H / 65536);
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({int64_t(nt), by_rows, by_work})));
}

// Rows [n0, n1) of thread `id` out of `nth`: contiguous, multiples of 4 but for the last.
inline void row_range(int id, int nth, int64_t N, int64_t* n0, int64_t* n1) {
  const int64_t blocks = (N + 3) / 4;
  *n0 = std::min(N, blocks * id / nth * 4);
  *n1 = std::min(N, blocks * (id + 1) / nth * 4);
}

inline int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// f(id) on threads id = 0 .. nth - 1 (nth OpenMP threads, which must all run f: it may hold a
// barrier); one thread calls f(0) directly, since entering an OpenMP region costs ~0.3 us, a
// large share of a small step's call.
template <typename F>
void in_threads(int nth, F&& f) {
  if (nth <= 1) return f(0);
#pragma omp parallel num_threads(nth)
  f(thread_id());
}

template <typename T>
void add_bias_rows(T* x, const T* b, int64_t rows, int64_t cols) {
  if (!b) return;
  for (int64_t r = 0; r < rows; ++r) {
    T* row = x + r * cols;
#pragma omp simd
    for (int64_t j = 0; j < cols; ++j) row[j] += b[j];
  }
}

// Packed weights pay off for few rows and two steps or more.
template <typename T>
bool use_packed(const RnnShape& s) {
  return s.N <= kPackedMaxRows && s.T >= 2;  // one step: packing would cost what it saves
}

// What both forward paths set up: the GRU's recurrent bias (read unconditionally: a branch in the
// loop blocks vectorizing, so a missing one is zeros) and h, c per step: the cache, or two
// buffers in turn. h_0 and c_0 are copied in first, so an output may share memory with h0 or c0
// while other threads still read them.
template <typename T>
struct ForwardStates {
  const RnnShape& s;
  const RnnForwardArgs<T>& a;
  const int64_t NH;
  const bool cached;
  std::unique_ptr<T[]> zero_bias, ping;
  const T* b_hh;

  ForwardStates(const RnnShape& s_, const RnnForwardArgs<T>& a_)
      : s(s_), a(a_), NH(s_.N * s_.H), cached(a_.states != nullptr) {
    const int64_t n_zero = s.cell == Cell::gru && !a.b_hh ? gate_count(s.cell) * s.H : 0;
    zero_bias = scratch<T>(n_zero);
    std::fill(zero_bias.get(), zero_bias.get() + n_zero, T(0));
    b_hh = a.b_hh ? a.b_hh : zero_bias.get();
    ping = scratch<T>(cached ? 0 : 4 * NH);
    std::memcpy(state(0), a.h0, sizeof(T) * static_cast<size_t>(NH));
    if (s.cell == Cell::lstm) std::memcpy(cell(0), a.c0, sizeof(T) * static_cast<size_t>(NH));
  }
  T* state(int64_t t) const { return cached ? a.states + t * NH : ping.get() + (t & 1) * NH; }
  T* cell(int64_t t) const { return cached ? a.cells + t * NH : ping.get() + (2 + (t & 1)) * NH; }
  // h_T (and c_T) to the caller's outputs.
  void finish() const {
    std::memcpy(a.h_last, state(s.T), sizeof(T) * static_cast<size_t>(NH));
    if (s.cell == Cell::lstm && a.c_last)
      std::memcpy(a.c_last, cell(s.T), sizeof(T) * static_cast<size_t>(NH));
  }
};

// The forward pass on the dot-form kernel (gemm_nt.inc), over the weights as given: nothing is
// packed (BLAS packs W and U on every call, half of a small step) and one pass sums W x_t and
// U h_{t-1} in registers. The threads split the hidden units, every gate of a unit on the same
// thread, so each applies the cell to what it computed, and each core reads only its share of the
// weights (LSTM D=128 H=256: 0.75 MiB a core, inside a 1 MiB L2). Steps meet at one barrier.
// Batch rows go in chunks of 16, so a chunk's pre-activations are still in cache for the cell.
constexpr int64_t kDotChunk = 16;
// Multiply-adds per thread and step below which another thread costs more (region entry, the
// barrier, the second core's cold cache) than it saves: ~5 us of one core's work.
constexpr int64_t kDotWorkPerThread = int64_t(1) << 18;

// Up to this input + hidden width a chunk's rows (16 x 2048 floats, 128 KiB) stay in L2 beside
// the weights; wider layers take the paths below, whose input products run as one BLAS call
// over all steps (BLAS blocks K, the dot kernel does not).
constexpr int64_t kDotMaxWidthBytes = int64_t(2048) * 4;

template <typename T>
bool use_dot(const RnnShape& s) {
  return (s.D + s.H) * int64_t(sizeof(T)) <= kDotMaxWidthBytes;
}

template <typename T>
void dot_forward(const RnnShape& s, const RnnForwardArgs<T>& a, int nt) {
  const int64_t T_ = s.T, N = s.N, D = s.D, H = s.H, G = gate_count(s.cell), GH = G * H;
  const int64_t gw = gate_cache_width(s);
  const bool lstm = s.cell == Cell::lstm, gru = s.cell == Cell::gru, cached = a.states != nullptr;
  const ForwardStates<T> st(s, a);
  auto state = [&](int64_t t) { return st.state(t); };
  auto cell = [&](int64_t t) { return st.cell(t); };
  constexpr int64_t kUnit = 64 / int64_t(sizeof(T));  // units per thread: whole vectors
  const int64_t chunk = std::max<int64_t>(1, std::min(N, kDotChunk));
  const int64_t blocks = (H + kUnit - 1) / kUnit, work = N * GH * (D + H);
  const int nth = static_cast<int>(
      std::max<int64_t>(1, std::min<int64_t>({int64_t(nt), blocks, work / kDotWorkPerThread})));
  // Per thread: a chunk's pre-activations (xw; hu for the GRU's n) and a gate row.
  const int64_t per = chunk * GH * (gru ? 2 : 1) + gw;
  auto work_buf = scratch<T>(nth * per);
  in_threads(nth, [&](int id) {
    const int64_t j0 = std::min(H, blocks * id / nth * kUnit);
    const int64_t j1 = std::min(H, blocks * (id + 1) / nth * kUnit), nj = j1 - j0;
    T* xw = work_buf.get() + id * per;
    T* hu = gru ? xw + chunk * GH : xw;
    T* gate_row = xw + chunk * GH * (gru ? 2 : 1);
    for (int64_t t = 0; t < T_; ++t) {
      if (t > 0 && nth > 1) {
#pragma omp barrier
      }
      if (nj <= 0) continue;
      const T* hp = state(t);
      for (int64_t q0 = 0; q0 < N; q0 += chunk) {
        const int64_t rows = std::min(chunk, N - q0);
        const T* x = a.xs + (t * N + q0) * D;
        for (int64_t g = 0; g < G; ++g) {
          const int64_t o = g * H + j0;  // this gate's rows of W, U and columns of xw, hu
          const T* b = a.b_ih ? a.b_ih + o : nullptr;
          const NtSegment<T> xs{x, D, a.W + o * D, D, D}, hs{hp + q0 * H, H, a.U + o * H, H, H};
          if (gru && g == 2) {  // n = tanh(W_n x + b_in + r (U_n h + b_hn)): two products
            gemm_nt(&xs, 1, rows, nj, xw + o, GH, b, false);
            gemm_nt(&hs, 1, rows, nj, hu + o, GH, static_cast<const T*>(nullptr), false);
          } else {
            const NtSegment<T> both[2] = {xs, hs};
            gemm_nt(both, 2, rows, nj, xw + o, GH, b, false);
          }
        }
        // The row pass indexes rows from the chunk's start: offset every per-row array.
        RowsForward<T> r;
        r.xw = xw;
        r.hu = hu;
        r.b_hh = st.b_hh;
        r.hp = hp + q0 * H;
        r.cp = lstm ? cell(t) + q0 * H : nullptr;
        r.hn = state(t + 1) + q0 * H;
        r.cn = lstm ? cell(t + 1) + q0 * H : nullptr;
        r.gates = cached && gw ? a.gates + (t * N + q0) * gw : nullptr;
        r.gate_scratch = gate_row;
        r.out = a.out ? a.out + (t * N + q0) * H : nullptr;
        r.lengths = a.lengths ? a.lengths + q0 : nullptr;
        r.t = t;
        r.n0 = 0;
        r.n1 = rows;
        r.j0 = j0;
        r.j1 = j1;
        r.fused = true;
        forward_rows(s, r);
      }
    }
  });
  st.finish();
}

template <typename T>
void forward_impl(const RnnShape& s, const RnnForwardArgs<T>& a, int nt) {
  if (use_dot<T>(s)) return dot_forward(s, a, nt);
  const int64_t T_ = s.T, N = s.N, D = s.D, H = s.H, GH = gate_count(s.cell) * H;
  const int64_t NH = N * H, gw = gate_cache_width(s);
  const bool lstm = s.cell == Cell::lstm, cached = a.states != nullptr;
  const bool packed = use_packed<T>(s);
  blas::ThreadScope threads(1);  // BLAS runs inside this module's threads
  // Nothing may throw inside the parallel region: check what a 32-bit BLAS could refuse first.
  RECFAST_CHECK(std::max({GH, D, H}) < INT32_MAX, "layer too large for 32-bit BLAS sizes");

  const ForwardStates<T> st(s, a);
  auto state = [&](int64_t t) { return st.state(t); };
  auto cell = [&](int64_t t) { return st.cell(t); };
  auto hu = scratch<T>(N * GH);
  // xw: W x_t + b_ih of this step's rows (packed) or of every step at once (BLAS).
  auto xw = scratch<T>(N * GH);
  auto step = [&](int64_t t, int64_t n0, int64_t n1, T* scratch_row) {
    RowsForward<T> r;
    r.xw = xw.get();
    r.hu = hu.get();
    r.b_hh = st.b_hh;
    r.hp = state(t);
    r.cp = lstm ? cell(t) : nullptr;
    r.hn = state(t + 1);
    r.cn = lstm ? cell(t + 1) : nullptr;
    r.gates = cached && gw ? a.gates + t * N * gw : nullptr;
    r.gate_scratch = scratch_row;
    r.out = a.out ? a.out + t * NH : nullptr;
    r.lengths = a.lengths;
    r.t = t;
    r.n0 = n0;
    r.n1 = n1;
    forward_rows(s, r);
  };

  // Rows never interact, so each thread carries its own rows through every step, no barrier.
  // Products on packed weights (few rows) or single-threaded BLAS (many rows) inside the threads:
  // OpenBLAS workers left spinning after a threaded call took a core from the row passes and made
  // two threads 2.5x slower than one.
  auto pU = scratch<T>(packed ? packed_size<T>(GH, H) : 0);
  auto pW = scratch<T>(packed ? packed_size<T>(GH, D) : 0);
  if (packed) {
    pack_panels(a.U, GH, H, H, 1, pU.get());  // (U h)_j = sum_k U[j, k] h_k
    pack_panels(a.W, GH, D, D, 1, pW.get());
  }
  const int nth = packed_threads(nt, N, GH, H + D);
  auto rows_scratch = scratch<T>(nth * gw);
  auto rows_of = [&](int id) {
    int64_t n0, n1;
    row_range(id, nth, N, &n0, &n1);
    const int64_t rows = n1 - n0;
    T *xr = xw.get() + n0 * GH, *hr = hu.get() + n0 * GH;
    for (int64_t t = 0; t < T_ && rows > 0; ++t) {
      const T *x = a.xs + (t * N + n0) * D, *h = state(t) + n0 * H;
      if (packed) {
        packed_gemm(x, D, pW.get(), GH, D, xr, GH, rows, false);
        packed_gemm(h, H, pU.get(), GH, H, hr, GH, rows, false);
      } else {
        blas::gemm(false, true, rows, GH, D, T(1), x, D, a.W, D, T(0), xr, GH);
        blas::gemm(false, true, rows, GH, H, T(1), h, H, a.U, H, T(0), hr, GH);
      }
      add_bias_rows(xr, a.b_ih, rows, GH);
      step(t, n0, n1, rows_scratch.get() + id * gw);
    }
  };
  in_threads(nth, rows_of);
  st.finish();
}

// out[c0..c1) = column sums of a (rows, cols) matrix over those columns.
template <typename T>
void column_sums(const T* a, int64_t rows, int64_t cols, int64_t c0, int64_t c1, T* out) {
  std::fill(out + c0, out + c1, T(0));
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = a + r * cols;
#pragma omp simd
    for (int64_t j = c0; j < c1; ++j) out[j] += row[j];
  }
}

template <typename T>
void backward_impl(const RnnShape& s, const RnnBackwardArgs<T>& a, int nt) {
  const int64_t T_ = s.T, N = s.N, D = s.D, H = s.H, GH = gate_count(s.cell) * H;
  const int64_t NH = N * H, gw = gate_cache_width(s), TN = T_ * N;
  const bool lstm = s.cell == Cell::lstm, gru = s.cell == Cell::gru;
  const bool packed = use_packed<T>(s);
  blas::ThreadScope threads(1);  // BLAS runs inside this module's threads
  RECFAST_CHECK(std::max({TN, GH, D, H}) < INT32_MAX, "sequence too large for 32-bit BLAS sizes");

  auto dgx = scratch<T>(TN * GH);
  auto dgh_store = scratch<T>(gru ? TN * GH : 0);
  T* dgh = gru ? dgh_store.get() : dgx.get();  // the input and recurrent sides differ for GRU only
  // dL/dh alternates between two buffers: step i (t = T - 1 - i) reads buf[i & 1], writes the
  // other.
  auto buf = scratch<T>(2 * NH);
  auto dh_buf = [&](int64_t i) { return buf.get() + (i & 1) * NH; };
  auto dc = scratch<T>(lstm ? NH : 0);
  if (a.grad_h_last) {
    std::memcpy(dh_buf(0), a.grad_h_last, sizeof(T) * static_cast<size_t>(NH));
  } else {
    std::fill(dh_buf(0), dh_buf(0) + NH, T(0));
  }
  if (lstm) {
    if (a.grad_c_last) {
      std::memcpy(dc.get(), a.grad_c_last, sizeof(T) * static_cast<size_t>(NH));
    } else {
      std::fill(dc.get(), dc.get() + NH, T(0));
    }
  }
  auto rows_pass = [&](int64_t t, int64_t n0, int64_t n1, T* tot) {
    const int64_t i = T_ - 1 - t;
    RowsBackward<T> r;
    r.dh = dh_buf(i);
    r.grad_out = a.grad_out ? a.grad_out + t * NH : nullptr;
    r.dc = lstm ? dc.get() : nullptr;
    r.hp = a.states + t * NH;
    r.h = a.states + (t + 1) * NH;
    r.cp = lstm ? a.cells + t * NH : nullptr;
    r.c = lstm ? a.cells + (t + 1) * NH : nullptr;
    r.gates = gw ? a.gates + t * N * gw : nullptr;
    r.dgx = dgx.get() + t * N * GH;
    r.dgh = dgh + t * N * GH;
    r.next = dh_buf(i + 1);
    r.tot = tot;
    r.lengths = a.lengths;
    r.t = t;
    r.n0 = n0;
    r.n1 = n1;
    backward_rows(s, r);
  };
  // The weight products over all steps, their rows [g0, g1) of G H and rows [r0, r1) of T N.
  auto weight_products = [&](int64_t r0, int64_t r1, int64_t g0, int64_t g1) {
    if (a.grad_xs)
      blas::gemm(false, false, r1 - r0, D, GH, T(1), dgx.get() + r0 * GH, GH, a.W, D, T(0),
                 a.grad_xs + r0 * D, D);
    if (a.grad_W)
      blas::gemm(true, false, g1 - g0, D, TN, T(1), dgx.get() + g0, GH, a.xs, D, T(0),
                 a.grad_W + g0 * D, D);
    if (a.grad_U)
      blas::gemm(true, false, g1 - g0, H, TN, T(1), dgh + g0, GH, a.states, H, T(0),
                 a.grad_U + g0 * H, H);
    if (a.grad_b_ih) column_sums(dgx.get(), TN, GH, g0, g1, a.grad_b_ih);
    if (a.grad_b_hh) column_sums(dgh, TN, GH, g0, g1, a.grad_b_hh);
  };

  auto pU = scratch<T>(packed ? packed_size<T>(H, GH) : 0);
  if (packed) pack_panels(a.U, H, GH, 1, H, pU.get());  // (dG U)_k = sum_j dG_j U[j, k]
  const int nth = packed_threads(nt, N, GH, H);
  auto tots = scratch<T>(nth * H);
  auto rows_of = [&](int id) {
    int64_t n0, n1;
    row_range(id, nth, N, &n0, &n1);
    for (int64_t t = T_ - 1; t >= 0 && n0 < n1; --t) {
      rows_pass(t, n0, n1, tots.get() + id * H);
      // dh_{t-1} = direct part (or the passed-through gradient) + dG_hh U; zero rows add nothing.
      const T* g = dgh + (t * N + n0) * GH;
      T* next = dh_buf(T_ - t) + n0 * H;
      if (packed) {
        packed_gemm(g, GH, pU.get(), H, GH, next, H, n1 - n0, true);
      } else {
        blas::gemm(false, false, n1 - n0, H, GH, T(1), g, GH, a.U, H, T(1), next, H);
      }
    }
#pragma omp barrier
    // Every step's gradients are in: split the weight products among the same threads.
    weight_products(TN * id / nth, TN * (id + 1) / nth, GH * id / nth, GH * (id + 1) / nth);
  };
  in_threads(nth, rows_of);
  const T* dh = dh_buf(T_);
  if (a.grad_h0) std::memcpy(a.grad_h0, dh, sizeof(T) * static_cast<size_t>(NH));
  if (lstm && a.grad_c0) std::memcpy(a.grad_c0, dc.get(), sizeof(T) * static_cast<size_t>(NH));
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
