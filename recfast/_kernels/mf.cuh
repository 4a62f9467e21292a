// SGD matrix factorization on the GPU: the one source of the `cuda` backend (csrc/cuda/mf_cuda.cu
// includes it) and of the `cupy` fallback (recfast/_backends/cupy compiles it with NVRTC). Keep it
// NVRTC-safe: no standard headers, everything through recfast/common.hpp.
//
// cuMF_SGD style: one warp per rating, lane l owning KPL consecutive coordinates of the factor
// rows (loaded and stored as 16-byte vectors when the rows are aligned), the dot product reduced by
// warp shuffles, the per-coordinate arithmetic from recfast/mf.hpp (the CPU kernels' functions).
// Hogwild across warps; the FPSGD block schedule runs one warp per block of a stratum, each
// walking its block in order, so it equals the sequential pass in storage order.
#pragma once

#include "common.cuh"
#include "recfast/mf.hpp"

namespace recfast {
namespace gpu {

// A chunk of B bytes moved as one access (B = 16 or 8 lowers to one vector load / store).
template <int B>
struct alignas(B) Chunk {
  unsigned char b[B];
};

// KPL coordinates starting at p (lane-owned), vectorized when VEC (p aligned to 16 bytes and the
// run a multiple of 16 or 8 bytes).
template <typename T, int KPL, bool VEC>
__device__ __forceinline__ void load_run(const T* p, T (&x)[KPL]) {
  constexpr int bytes = KPL * int(sizeof(T));
  if (VEC && bytes % 16 == 0) {
#pragma unroll
    for (int c = 0; c < bytes / 16; ++c)
      reinterpret_cast<Chunk<16>*>(x)[c] = reinterpret_cast<const Chunk<16>*>(p)[c];
  } else if (VEC && bytes % 8 == 0) {
#pragma unroll
    for (int c = 0; c < bytes / 8; ++c)
      reinterpret_cast<Chunk<8>*>(x)[c] = reinterpret_cast<const Chunk<8>*>(p)[c];
  } else {
#pragma unroll
    for (int f = 0; f < KPL; ++f) x[f] = p[f];
  }
}

template <typename T, int KPL, bool VEC>
__device__ __forceinline__ void store_run(T* p, const T (&x)[KPL]) {
  constexpr int bytes = KPL * int(sizeof(T));
  if (VEC && bytes % 16 == 0) {
#pragma unroll
    for (int c = 0; c < bytes / 16; ++c)
      reinterpret_cast<Chunk<16>*>(p)[c] = reinterpret_cast<const Chunk<16>*>(x)[c];
  } else if (VEC && bytes % 8 == 0) {
#pragma unroll
    for (int c = 0; c < bytes / 8; ++c)
      reinterpret_cast<Chunk<8>*>(p)[c] = reinterpret_cast<const Chunk<8>*>(x)[c];
  } else {
#pragma unroll
    for (int f = 0; f < KPL; ++f) p[f] = x[f];
  }
}

// Half-precision rows (float32 arithmetic): KPL halves per lane, widened on load and rounded to
// nearest even on store by recfast/half.hpp's conversions, the ones the CPU kernels and tests run.
template <typename T, int KPL, bool VEC>
__device__ __forceinline__ void load_run(const Half* p, float (&x)[KPL]) {
#pragma unroll
  for (int f = 0; f < KPL; ++f) x[f] = half_to_float(p[f]);
}

template <typename T, int KPL, bool VEC>
__device__ __forceinline__ void store_run(Half* p, const float (&x)[KPL]) {
#pragma unroll
  for (int f = 0; f < KPL; ++f) p[f] = float_to_half(x[f]);
}

// One rating's update by the whole warp; returns e^2 (on every lane). k == 32 * KPL when KPL > 0;
// KPL == 0 takes any k with a strided loop (two passes over the rows). S: the rows' storage, T or
// Half (with T = float).
template <typename T, int KPL, bool VEC, typename S>
__device__ __forceinline__ T warp_update(S* __restrict p, S* __restrict q, long long k, T r, T mu,
                                         T* bu, T* bi, T* gu, T* gi, T lr, T reg, T breg,
                                         int lane) {
  constexpr int R = KPL > 0 ? KPL : 1;
  alignas(16) T pr[R], qr[R];  // reinterpreted as 16-byte chunks by load_run / store_run
  T dot = T(0);
  if (KPL > 0) {
    load_run<T, R, VEC>(p + lane * R, pr);
    load_run<T, R, VEC>(q + lane * R, qr);
#pragma unroll
    for (int f = 0; f < R; ++f) dot += pr[f] * qr[f];
  } else {
    for (long long f = lane; f < k; f += 32) dot += load_coord(p[f]) * load_coord(q[f]);
  }
  dot = warp_sum(dot);
  T pred = mu + dot;
  if (bu) pred += *bu + *bi;
  const T e = r - pred;
  if (!gu) {
    if (KPL > 0) {
#pragma unroll
      for (int f = 0; f < R; ++f) {
        const T pf = pr[f], qf = qr[f];
        pr[f] = mf_sgd_step(pf, qf, e, lr, reg);
        qr[f] = mf_sgd_step(qf, pf, e, lr, reg);
      }
      store_run<T, R, VEC>(p + lane * R, pr);
      store_run<T, R, VEC>(q + lane * R, qr);
    } else {
      for (long long f = lane; f < k; f += 32) {
        const T pf = load_coord(p[f]), qf = load_coord(q[f]);
        store_coord(p + f, mf_sgd_step(pf, qf, e, lr, reg));
        store_coord(q + f, mf_sgd_step(qf, pf, e, lr, reg));
      }
    }
    if (bu && lane == 0) {
      *bu = mf_sgd_step(*bu, T(1), e, lr, breg);
      *bi = mf_sgd_step(*bi, T(1), e, lr, breg);
    }
    return e * e;
  }
  const T lru = mf_ada_rate(lr, *gu), lri = mf_ada_rate(lr, *gi);
  T su = T(0), si = T(0);
  if (KPL > 0) {
#pragma unroll
    for (int f = 0; f < R; ++f) {
      const T pf = pr[f], qf = qr[f];
      const T gp = mf_grad(pf, qf, e, reg), gq = mf_grad(qf, pf, e, reg);
      pr[f] = pf - lru * gp;
      qr[f] = qf - lri * gq;
      su += gp * gp;
      si += gq * gq;
    }
    store_run<T, R, VEC>(p + lane * R, pr);
    store_run<T, R, VEC>(q + lane * R, qr);
  } else {
    for (long long f = lane; f < k; f += 32) {
      const T pf = load_coord(p[f]), qf = load_coord(q[f]);
      const T gp = mf_grad(pf, qf, e, reg), gq = mf_grad(qf, pf, e, reg);
      store_coord(p + f, pf - lru * gp);
      store_coord(q + f, qf - lri * gq);
      su += gp * gp;
      si += gq * gq;
    }
  }
  su = warp_sum(su);
  si = warp_sum(si);
  if (lane == 0) {
    if (bu) {
      const T gbu = mf_grad(*bu, T(1), e, breg), gbi = mf_grad(*bi, T(1), e, breg);
      *bu -= lru * gbu;
      *bi -= lri * gbi;
      su += gbu * gbu;
      si += gbi * gbi;
    }
    const long long coords = k + (bu ? 1 : 0);
    if (coords > 0) {
      *gu += mf_accum_increment(su, coords);
      *gi += mf_accum_increment(si, coords);
    }
  }
  return e * e;
}

// Hogwild epoch: warp w handles positions w, w + n_warps, ... of the order (or storage order).
// Each index is checked again as it is read (the arrays may change after the pre-check); a rating
// out of range is skipped and counted. sse and skipped accumulate with one atomic per warp.
template <typename T, typename I, int KPL, bool VEC, typename S = T>
__global__ void sgd_mf_hogwild(const I* __restrict rows, const I* __restrict cols,
                               const T* __restrict values, const long long* __restrict order,
                               long long n, long long nnz, S* U, S* V, long long k,
                               long long n_users, long long n_items, T* ub, T* ib, T* ua, T* ia,
                               T lr, T reg, T breg, T mu, double* sse,
                               unsigned long long* skipped) {
  const int lane = threadIdx.x & 31;
  const long long warp = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5;
  const long long n_warps = ((long long)gridDim.x * blockDim.x) >> 5;
  double local = 0.0;
  unsigned long long bad = 0;
  for (long long j = warp; j < n; j += n_warps) {
    const long long m = order ? order[j] : j;
    if ((unsigned long long)m >= (unsigned long long)nnz) {
      ++bad;
      continue;
    }
    const long long u = rows[m], i = cols[m];
    if ((unsigned long long)u >= (unsigned long long)n_users ||
        (unsigned long long)i >= (unsigned long long)n_items) {
      ++bad;
      continue;
    }
    local += double(warp_update<T, KPL, VEC, S>(
        U + u * k, V + i * k, k, values[m], mu, ub ? ub + u : nullptr, ib ? ib + i : nullptr,
        ua ? ua + u : nullptr, ia ? ia + i : nullptr, lr, reg, breg, lane));
  }
  if (lane == 0) {
    if (local != 0.0) atomicAdd(sse, local);
    if (bad) atomicAdd(skipped, bad);
  }
}

// One stratum of the FPSGD schedule: warp b walks block s * nb + b of the layout in order and
// writes its loss to block_sse[id] (summed later in a fixed order: the loss is reproducible).
template <typename T, typename I, int KPL, bool VEC, typename S = T>
__global__ void sgd_mf_stratum(const I* __restrict rows, const I* __restrict cols,
                               const T* __restrict values, const long long* __restrict block_ptr,
                               long long stratum, long long nb, S* U, S* V, long long k,
                               long long n_users, long long n_items, T* ub, T* ib, T* ua, T* ia,
                               T lr, T reg, T breg, T mu, double* block_sse,
                               unsigned long long* skipped) {
  const int lane = threadIdx.x & 31;
  const long long b = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5;
  if (b >= nb) return;
  const long long id = stratum * nb + b;
  double local = 0.0;
  unsigned long long bad = 0;
  for (long long m = block_ptr[id]; m < block_ptr[id + 1]; ++m) {
    const long long u = rows[m], i = cols[m];
    if ((unsigned long long)u >= (unsigned long long)n_users ||
        (unsigned long long)i >= (unsigned long long)n_items) {
      ++bad;
      continue;
    }
    local += double(warp_update<T, KPL, VEC, S>(
        U + u * k, V + i * k, k, values[m], mu, ub ? ub + u : nullptr, ib ? ib + i : nullptr,
        ua ? ua + u : nullptr, ia ? ia + i : nullptr, lr, reg, breg, lane));
  }
  if (lane == 0) {
    block_sse[id] = local;
    if (bad) atomicAdd(skipped, bad);
  }
}

// sse[0] = the sum of block_sse[0 .. n) in index order (one thread: n is nb^2, small).
__global__ void sum_in_order(const double* __restrict block_sse, long long n, double* sse) {
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    double s = 0.0;
    for (long long j = 0; j < n; ++j) s += block_sse[j];
    sse[0] = s;
  }
}

}  // namespace gpu
}  // namespace recfast
