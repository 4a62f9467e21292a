// Sparse SGD matrix factorization: argument structs, the per-rating update, and kernel entry
// points.
//
// Model: r_ui ~ mu + b_u + b_i + <p_u, q_i>. One update on rating (u, i, r) with error e = r -
// pred:
//   plain:    x += lr * (e * grad_partner - reg * x)          for p_u, q_i (and biases with
//   bias_reg) adagrad:  LIBMF's row-wise AdaGrad: each user and item row keeps one accumulator G of
//   the mean
//             squared gradient over its coordinates; the row's step is lr / sqrt(G) (G starts at
//             1).
#pragma once

#ifndef __CUDACC_RTC__
#include <cmath>
#include <cstdint>
#endif

#include "recfast/common.hpp"
#include "recfast/half.hpp"

namespace recfast {

// S: the factors' storage type, T (float32 with Half factors) or Half.
template <typename T, typename I, typename S = T>
struct SgdMfArgs {
  const I* rows = nullptr;  // (nnz,) user index of each rating
  const I* cols = nullptr;  // (nnz,) item index
  const T* values = nullptr;
  int64_t nnz = 0;
  const int64_t* order = nullptr;  // optional (n_order,): process ratings order[0], order[1], ...
  int64_t n_order = 0;
  const int64_t* block_ptr = nullptr;  // optional (nb*nb+1,): ratings laid out stratum-major
  int64_t n_blocks = 0;  // nb: the grid is nb x nb, stratum s holds blocks s*nb..s*nb+nb-1
  S* U = nullptr;        // (n_users, k) row-major
  S* V = nullptr;        // (n_items, k)
  int64_t k = 0;
  // The kernel checks every index as it reads it against these (the caller's check may be stale:
  // another thread can rewrite the index arrays during the call); ratings with an index out of
  // range (or an order entry outside [0, nnz)) are skipped and counted in *skipped.
  int64_t n_users = 0, n_items = 0;
  int64_t* skipped = nullptr;  // optional out: ratings skipped
  T* user_bias = nullptr;      // optional (n_users,)
  T* item_bias = nullptr;      // optional (n_items,)
  T* user_accum = nullptr;     // optional (n_users,): AdaGrad accumulators; both or neither
  T* item_accum = nullptr;
};

struct SgdMfParams {
  double learning_rate = 0.01;
  double regularization = 0.0;
  double bias_regularization = 0.0;
  double global_mean = 0.0;
  int num_threads = 1;
};

// The per-coordinate arithmetic of one update, shared by the CPU loop below and the CUDA kernels
// (recfast/_kernels/mf.cuh, one warp per rating), so the CPU tests exercise what the GPU runs.
// Plain SGD: the new value of x given its partner coordinate and the rating's error e.
template <typename T>
RECFAST_HD RECFAST_INLINE T mf_sgd_step(T x, T partner, T e, T lr, T reg) {
  return x + lr * (e * partner - reg * x);
}
// AdaGrad: the gradient of x (the step is then x - rate * g, and g * g goes to the accumulator).
template <typename T>
RECFAST_HD RECFAST_INLINE T mf_grad(T x, T partner, T e, T reg) {
  return reg * x - e * partner;
}
// A row's AdaGrad step size from its accumulator G.
RECFAST_HD RECFAST_INLINE float mf_ada_rate(float lr, float g) { return lr / sqrtf(g); }
RECFAST_HD RECFAST_INLINE double mf_ada_rate(double lr, double g) { return lr / sqrt(g); }
// The accumulator's increment: the mean squared gradient over the row's `coords` coordinates.
template <typename T>
RECFAST_HD RECFAST_INLINE T mf_accum_increment(T sum_sq, int64_t coords) {
  return sum_sq / T(coords);
}

// The update for one rating. Returns the squared error before the update.
// p, q: the user's and item's factor rows; bu, bi, gu, gi may be null (no biases / no AdaGrad).
template <typename T>
RECFAST_HD RECFAST_INLINE T sgd_mf_update(T* __restrict p, T* __restrict q, int64_t k, T r, T mu,
                                          T* bu, T* bi, T* gu, T* gi, T lr, T reg, T breg) {
  T dot = T(0);
#pragma omp simd reduction(+ : dot)
  for (int64_t f = 0; f < k; ++f) dot += p[f] * q[f];
  T pred = mu + dot;
  if (bu) pred += *bu + *bi;
  const T e = r - pred;
  if (!gu) {
    if (bu) {
      *bu = mf_sgd_step(*bu, T(1), e, lr, breg);
      *bi = mf_sgd_step(*bi, T(1), e, lr, breg);
    }
#pragma omp simd
    for (int64_t f = 0; f < k; ++f) {
      const T pf = p[f], qf = q[f];
      p[f] = mf_sgd_step(pf, qf, e, lr, reg);
      q[f] = mf_sgd_step(qf, pf, e, lr, reg);
    }
    return e * e;
  }
  const T lru = mf_ada_rate(lr, *gu), lri = mf_ada_rate(lr, *gi);
  T su = T(0), si = T(0);
  if (bu) {
    const T gbu = mf_grad(*bu, T(1), e, breg), gbi = mf_grad(*bi, T(1), e, breg);
    *bu -= lru * gbu;
    *bi -= lri * gbi;
    su = gbu * gbu;
    si = gbi * gbi;
  }
#pragma omp simd reduction(+ : su, si)
  for (int64_t f = 0; f < k; ++f) {
    const T pf = p[f], qf = q[f];
    const T gp = mf_grad(pf, qf, e, reg), gq = mf_grad(qf, pf, e, reg);
    p[f] = pf - lru * gp;
    q[f] = qf - lri * gq;
    su += gp * gp;
    si += gq * gq;
  }
  const int64_t coords = k + (bu ? 1 : 0);
  if (coords > 0) {  // k == 0 without biases: nothing was updated, nothing to accumulate
    *gu += mf_accum_increment(su, coords);
    *gi += mf_accum_increment(si, coords);
  }
  return e * e;
}

// One epoch over the ratings; returns the sum of squared errors (each taken before its update).
// Without block_ptr: ratings in `order` (or storage order), Hogwild across threads (spans of the
// order handed to the threads as they come for them). With block_ptr: FPSGD strata,
// deterministic for any thread count.
#ifndef __CUDACC_RTC__  // host entry points: not for NVRTC
// The share of its core that the least-served thread of the calling thread's last
// block-scheduled epoch got while it had work (its CPU time over its wall time outside waits):
// ~1 on a quiet machine, ~0.5 for a thread that shared its core with another process. 1 after
// a single-threaded epoch. Per calling thread, so concurrent callers do not mix.
double sgd_mf_last_core_share();
void note_sgd_mf_core_share(double share);
// Seconds of CPU time the calling thread has used (0 where the clock is missing).
double thread_cpu_seconds();

double sgd_mf_epoch(const SgdMfArgs<float, int32_t>& a, const SgdMfParams& p);
double sgd_mf_epoch(const SgdMfArgs<float, int64_t>& a, const SgdMfParams& p);
double sgd_mf_epoch(const SgdMfArgs<double, int32_t>& a, const SgdMfParams& p);
double sgd_mf_epoch(const SgdMfArgs<double, int64_t>& a, const SgdMfParams& p);
double sgd_mf_epoch(const SgdMfArgs<float, int32_t, Half>& a, const SgdMfParams& p);
double sgd_mf_epoch(const SgdMfArgs<float, int64_t, Half>& a, const SgdMfParams& p);
// The CPU kernels' float16 conversion of n values, in the instruction-set copy they run (F16C
// where the CPU has it), for the tests to check against NumPy.
void half_to_float_n(const Half* s, float* d, int64_t n);
void float_to_half_n(const float* s, Half* d, int64_t n);
#endif

// splitmix64: the layout's shuffle RNG (tiny, and easy to reproduce in the NumPy reference).
RECFAST_HD inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Lays ratings out for the blocked schedule. User block ub = u * nb / n_users, item block
// ib = i * nb / n_items, stratum s = (ib - ub) mod nb, block id = s * nb + ub. Output is sorted
// by block id, then by user; one user's ratings inside a block keep their input order, or are
// shuffled (Fisher-Yates driven by splitmix64 seeded with seed + block id) when shuffle is set.
// Writes rows_out/cols_out/values_out (nnz,) and block_ptr (nb*nb+1,).
template <typename T, typename I>
struct LayoutArgs {
  const I* rows;
  const I* cols;
  const T* values;
  int64_t nnz, n_users, n_items, nb;
  bool shuffle;
  uint64_t seed;
  I* rows_out;
  I* cols_out;
  T* values_out;
  int64_t* block_ptr;
  int num_threads;
};
// Returns the number of indices found outside [0, n_users) / [0, n_items) (the layout works on a
// private copy of rows and cols, checked once); when it is not 0 the outputs are unspecified.
#ifndef __CUDACC_RTC__  // host entry points: not for NVRTC
int64_t mf_block_layout(const LayoutArgs<float, int32_t>& a);
int64_t mf_block_layout(const LayoutArgs<float, int64_t>& a);
int64_t mf_block_layout(const LayoutArgs<double, int32_t>& a);
int64_t mf_block_layout(const LayoutArgs<double, int64_t>& a);
#endif

}  // namespace recfast
