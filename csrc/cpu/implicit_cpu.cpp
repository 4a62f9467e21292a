// Implicit-feedback entry points: the top-k selection (tiled BLAS GEMM + per-row heaps), the
// iALS half-sweep (Y^T Y by BLAS, then the per-ISA row solver) and the BPR epoch dispatcher.
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "recfast/blas.hpp"
#include "recfast/common.hpp"
#include "recfast/implicit.hpp"
#include "recfast/isa.hpp"

namespace recfast {

#define RECFAST_DECLARE_ISA(ns)                                                     \
  namespace ns {                                                                    \
  template <typename T, typename I>                                                 \
  int64_t als_rows(const AlsArgs<T, I>& a, const T* A);                             \
  template <typename T, typename I>                                                 \
  BprResult bpr_epoch(const BprArgs<T, I>& a);                                      \
  extern template int64_t als_rows(const AlsArgs<float, int32_t>&, const float*);   \
  extern template int64_t als_rows(const AlsArgs<float, int64_t>&, const float*);   \
  extern template int64_t als_rows(const AlsArgs<double, int32_t>&, const double*); \
  extern template int64_t als_rows(const AlsArgs<double, int64_t>&, const double*); \
  extern template BprResult bpr_epoch(const BprArgs<float, int32_t>&);              \
  extern template BprResult bpr_epoch(const BprArgs<float, int64_t>&);              \
  extern template BprResult bpr_epoch(const BprArgs<double, int32_t>&);             \
  extern template BprResult bpr_epoch(const BprArgs<double, int64_t>&);             \
  }
RECFAST_DECLARE_ISA(baseline)
#if defined(__x86_64__) && defined(__GNUC__)
RECFAST_DECLARE_ISA(avx2)
RECFAST_DECLARE_ISA(avx512)
#endif
#undef RECFAST_DECLARE_ISA

template <typename T, typename I>
int64_t als_half_sweep(const AlsArgs<T, I>& a) {
  const int64_t k = a.k;
  if (k == 0 || (a.rows ? a.n_solve : a.n_rows) == 0) return 0;
  // A = Y^T Y + lambda I, once per sweep (BLAS, then the row solves on OpenMP threads).
  std::vector<T> A(size_t(k * k));
  if (a.gram) {
    std::copy(a.gram, a.gram + k * k, A.data());
  } else {
    // One BLAS thread: OpenBLAS's workers spin for a while after a call and starved the
    // OpenMP row solves that follow (5x slower on 2 busy cores); the k x k product is small.
    blas::ThreadScope scope(1);
    blas::gemm(true, false, k, k, a.n_cols, T(1), a.Y, k, a.Y, k, T(0), A.data(), k);
  }
  for (int64_t f = 0; f < k; ++f) A[size_t(f * k + f)] += T(a.regularization);
#if defined(__x86_64__) && defined(__GNUC__)
  const Isa isa = cpu_isa();
  if (isa == Isa::avx512) return avx512::als_rows(a, A.data());
  if (isa == Isa::avx2) return avx2::als_rows(a, A.data());
#endif
  return baseline::als_rows(a, A.data());
}

template <typename T, typename I>
BprResult bpr_epoch(const BprArgs<T, I>& a) {
  if (a.n_samples == 0 || a.nnz == 0) return BprResult{};
#if defined(__x86_64__) && defined(__GNUC__)
  const Isa isa = cpu_isa();
  if (isa == Isa::avx512) return avx512::bpr_epoch(a);
  if (isa == Isa::avx2) return avx2::bpr_epoch(a);
#endif
  return baseline::bpr_epoch(a);
}

namespace {

// The n best (score, id) of a stream of ids in ascending order: a min-heap whose root is the
// worst kept entry. Later ids lose ties, so a newcomer enters only with a strictly larger score.
template <typename T>
struct TopN {
  T* s;
  int64_t* id;
  int64_t n, size = 0;
  T threshold = -std::numeric_limits<T>::infinity();  // -inf until full: -inf and NaN never enter

  // a is worse than b
  bool worse(int64_t x, int64_t y) const { return s[x] < s[y] || (s[x] == s[y] && id[x] > id[y]); }
  void sift_down(int64_t p) {
    for (;;) {
      int64_t c = 2 * p + 1;
      if (c >= size) return;
      if (c + 1 < size && worse(c + 1, c)) ++c;
      if (!worse(c, p)) return;
      std::swap(s[c], s[p]);
      std::swap(id[c], id[p]);
      p = c;
    }
  }
  void push(T score, int64_t item) {
    if (size < n) {
      int64_t c = size++;
      s[c] = score;
      id[c] = item;
      while (c > 0) {
        const int64_t p = (c - 1) / 2;
        if (!worse(c, p)) break;
        std::swap(s[c], s[p]);
        std::swap(id[c], id[p]);
        c = p;
      }
      if (size == n) threshold = s[0];
    } else {
      s[0] = score;
      id[0] = item;
      sift_down(0);
      threshold = s[0];
    }
  }
  // Sorted best first into the outputs, padded with -1 / -inf.
  void finish(int64_t* out_id, T* out_s) {
    int64_t m = size;
    while (size > 0) {  // pop the worst to the back
      --size;
      out_s[size] = s[0];
      out_id[size] = id[0];
      s[0] = s[size];
      id[0] = id[size];
      sift_down(0);
    }
    for (int64_t j = m; j < n; ++j) {
      out_id[j] = -1;
      out_s[j] = -std::numeric_limits<T>::infinity();
    }
  }
};

}  // namespace

template <typename T, typename I>
void topk(const TopkArgs<T, I>& a) {
  const int64_t m = a.m, k = a.k, n = a.n;
  const int64_t nc = a.cand ? a.n_cand : a.n_items;
  const T ninf = -std::numeric_limits<T>::infinity();
  // Candidate rows (gathered when a whitelist is given) and their effective bias: the item
  // bias, or -inf for banned items, so a ban costs nothing in the scan.
  std::vector<T> Vc;
  const T* V = a.V;
  if (a.cand) {
    Vc.resize(size_t(nc * k));
    for (int64_t j = 0; j < nc; ++j)
      std::copy(a.V + a.cand[j] * k, a.V + (a.cand[j] + 1) * k, Vc.data() + j * k);
    V = Vc.data();
  }
  // Only built when there is a bias or a ban: a one-user call (real-time recommend) should not
  // pay for an n_items-long pass it does not need.
  std::vector<T> eb;
  if (a.bias || a.banned) {
    eb.assign(size_t(nc), T(0));
    for (int64_t j = 0; j < nc; ++j) {
      const int64_t id = a.cand ? a.cand[j] : j;
      if (a.bias) eb[size_t(j)] = a.bias[id];
      if (a.banned && a.banned[id]) eb[size_t(j)] = ninf;
    }
  }
  std::vector<int64_t> pos;  // item id -> candidate position (-1: not a candidate)
  if (a.cand && a.ex_indptr) {
    pos.assign(size_t(a.n_items), -1);
    for (int64_t j = 0; j < nc; ++j) pos[size_t(a.cand[j])] = j;
  }
  // Blocks of up to 512 users (GEMM runs faster with more rows: 4000 x 20000 x 64 took 0.285 s
  // of CPU at 32 rows, 0.203 s at 256) but at least two per thread; a 512 KiB score tile.
  const int64_t kRows = std::clamp<int64_t>(m / (2 * int64_t(a.num_threads)), 32, 512);
  // (few users: a wider tile, one user scores the whole catalogue in one GEMV)
  const int64_t kTile = std::max<int64_t>(131072 / std::min(kRows, std::max<int64_t>(m, 1)), 64);
  const int64_t tile = std::min(nc, kTile);
  const int64_t blocks = (m + kRows - 1) / kRows;
  const int nt = int(std::max<int64_t>(1, std::min<int64_t>(a.num_threads, blocks)));
  // Each thread runs its own single-threaded GEMMs (OpenBLAS is safe to call concurrently). One
  // thread keeps the caller's BLAS setting: switching the pool's size costs more than a
  // one-user product (0.05 ms), the real-time recommend.
  std::optional<blas::ThreadScope> scope;
  if (nt > 1) scope.emplace(1);
  const int64_t rows = std::min(kRows, m);  // buffers sized to the call (one user: 16 KiB)
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    std::vector<T> S(size_t(rows * std::max<int64_t>(tile, 1)));
    std::vector<T> hs(size_t(rows * n));
    std::vector<int64_t> hid(size_t(rows * n));
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t q0 = b * kRows, mb = std::min(kRows, m - q0);
      std::vector<TopN<T>> heaps;
      heaps.reserve(size_t(mb));
      for (int64_t r = 0; r < mb; ++r)
        heaps.push_back(TopN<T>{hs.data() + r * n, hid.data() + r * n, n});
      for (int64_t t0 = 0; t0 < nc; t0 += tile) {
        const int64_t w = std::min(tile, nc - t0);
        if (k > 0)
          blas::gemm(false, true, mb, w, k, T(1), a.Q + q0 * k, k, V + t0 * k, k, T(0), S.data(),
                     w);
        else
          std::fill(S.begin(), S.begin() + mb * w, T(0));
        for (int64_t r = 0; r < mb; ++r) {
          T* row = S.data() + r * w;
          if (!eb.empty()) {
            const T* e = eb.data() + t0;
#pragma omp simd
            for (int64_t j = 0; j < w; ++j) row[j] += e[j];
          }
          if (a.ex_indptr) {
            const int64_t q = q0 + r;
            for (int64_t x = a.ex_indptr[q]; x < a.ex_indptr[q + 1]; ++x) {
              const int64_t id = int64_t(a.ex_indices[x]);
              if (id < 0 || id >= a.n_items) continue;  // the binding range-checks first
              const int64_t p = a.cand ? pos[size_t(id)] : id;
              if (p >= t0 && p < t0 + w) row[p - t0] = ninf;
            }
          }
          TopN<T>& h = heaps[size_t(r)];
          for (int64_t j = 0; j < w; ++j)
            if (row[j] > h.threshold) h.push(row[j], a.cand ? a.cand[t0 + j] : t0 + j);
        }
      }
      for (int64_t r = 0; r < mb; ++r)
        heaps[size_t(r)].finish(a.out_items + (q0 + r) * n, a.out_scores + (q0 + r) * n);
    }
  }
}

#define RECFAST_INSTANTIATE(T, I)                                \
  template void topk<T, I>(const TopkArgs<T, I>& a);             \
  template int64_t als_half_sweep<T, I>(const AlsArgs<T, I>& a); \
  template BprResult bpr_epoch<T, I>(const BprArgs<T, I>& a);
RECFAST_INSTANTIATE(float, int32_t)
RECFAST_INSTANTIATE(float, int64_t)
RECFAST_INSTANTIATE(double, int32_t)
RECFAST_INSTANTIATE(double, int64_t)
#undef RECFAST_INSTANTIATE

}  // namespace recfast
