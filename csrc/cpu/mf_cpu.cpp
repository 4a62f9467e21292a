// SGD-MF entry points: pick the instruction-set copy once, and the block layout.
#include <algorithm>
#include <ctime>
#include <vector>

#include "recfast/isa.hpp"
#include "recfast/mf.hpp"

namespace recfast {

#define RECFAST_DECLARE_ISA(ns)                                                        \
  namespace ns {                                                                       \
  double sgd_mf_epoch(const SgdMfArgs<float, int32_t>& a, const SgdMfParams& p);       \
  double sgd_mf_epoch(const SgdMfArgs<float, int64_t>& a, const SgdMfParams& p);       \
  double sgd_mf_epoch(const SgdMfArgs<double, int32_t>& a, const SgdMfParams& p);      \
  double sgd_mf_epoch(const SgdMfArgs<double, int64_t>& a, const SgdMfParams& p);      \
  double sgd_mf_epoch(const SgdMfArgs<float, int32_t, Half>& a, const SgdMfParams& p); \
  double sgd_mf_epoch(const SgdMfArgs<float, int64_t, Half>& a, const SgdMfParams& p); \
  void half_to_float_n(const Half* s, float* d, int64_t n);                            \
  void float_to_half_n(const float* s, Half* d, int64_t n);                            \
  }
RECFAST_DECLARE_ISA(baseline)
#if defined(__x86_64__) && defined(__GNUC__)
RECFAST_DECLARE_ISA(avx2)
RECFAST_DECLARE_ISA(avx512)
#endif

namespace {

template <typename T, typename I, typename S>
double dispatch(const SgdMfArgs<T, I, S>& a, const SgdMfParams& p) {
  note_sgd_mf_core_share(1.0);  // until a block-scheduled epoch measures it
  // k == 0 still trains the biases (a biases-only model).
  if ((a.order ? a.n_order : a.nnz) == 0) return 0.0;
#if defined(__x86_64__) && defined(__GNUC__)
  const Isa isa = cpu_isa();
  if (isa == Isa::avx512) return avx512::sgd_mf_epoch(a, p);
  if (isa == Isa::avx2) return avx2::sgd_mf_epoch(a, p);
#endif
  return baseline::sgd_mf_epoch(a, p);
}

template <typename T, typename I>
int64_t block_layout(const LayoutArgs<T, I>& a) {
  const int64_t nb = a.nb, nblk = nb * nb, nnz = a.nnz;
  // A private copy of the indices, checked once: every pass below reads them again, and the
  // caller's arrays may be rewritten by another thread meanwhile.
  std::vector<I> rows(a.rows, a.rows + nnz), cols(a.cols, a.cols + nnz);
  int64_t bad = 0;
  for (int64_t j = 0; j < nnz; ++j)
    bad += (uint64_t(rows[size_t(j)]) >= uint64_t(a.n_users)) +
           (uint64_t(cols[size_t(j)]) >= uint64_t(a.n_items));
  if (bad) return bad;
  // Tables instead of a division per rating; first_user[ub] starts user block ub.
  std::vector<int32_t> ub_of(size_t(a.n_users)), ib_of(size_t(a.n_items));
  std::vector<int64_t> first_user(size_t(nb) + 1, a.n_users);
  for (int64_t u = a.n_users - 1; u >= 0; --u) {
    ub_of[size_t(u)] = int32_t(u * nb / a.n_users);
    first_user[size_t(ub_of[size_t(u)])] = u;
  }
  for (int64_t b = nb - 1; b >= 0; --b)  // empty user blocks start where the next one does
    first_user[size_t(b)] = std::min(first_user[size_t(b)], first_user[size_t(b) + 1]);
  for (int64_t i = 0; i < a.n_items; ++i) ib_of[size_t(i)] = int32_t(i * nb / a.n_items);
  auto block_of = [&](int64_t j) {
    const int64_t ub = ub_of[size_t(rows[size_t(j)])], ib = ib_of[size_t(cols[size_t(j)])];
    return ((ib - ub + nb) % nb) * nb + ub;
  };
  // Pass 1: stable counting sort of the ratings by block into scratch arrays (sequential reads,
  // nb*nb write streams).
  int64_t* bp = a.block_ptr;
  std::fill(bp, bp + nblk + 1, int64_t(0));
  for (int64_t j = 0; j < nnz; ++j) ++bp[block_of(j) + 1];
  for (int64_t b = 0; b < nblk; ++b) bp[b + 1] += bp[b];
  std::vector<I> tr(static_cast<size_t>(nnz)), tc(static_cast<size_t>(nnz));
  std::vector<T> tv(static_cast<size_t>(nnz));
  {
    std::vector<int64_t> next(bp, bp + nblk);
    for (int64_t j = 0; j < nnz; ++j) {
      const int64_t pos = next[size_t(block_of(j))]++;
      tr[size_t(pos)] = rows[size_t(j)];
      tc[size_t(pos)] = cols[size_t(j)];
      tv[size_t(pos)] = a.values[j];
    }
  }
  // Pass 2, block by block (independent, cache-resident, so parallel): counting sort by user,
  // then shuffle each user's run.
#pragma omp parallel num_threads(a.num_threads)
  {
    std::vector<int64_t> cnt;
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < nblk; ++b) {
      const int64_t lo = bp[b], hi = bp[b + 1], ub = b % nb;
      const int64_t u0 = first_user[size_t(ub)], nu = first_user[size_t(ub) + 1] - u0;
      cnt.assign(size_t(nu) + 1, 0);
      for (int64_t t = lo; t < hi; ++t) ++cnt[size_t(tr[size_t(t)] - u0) + 1];
      for (int64_t u = 0; u < nu; ++u) cnt[size_t(u) + 1] += cnt[size_t(u)];
      for (int64_t t = lo; t < hi; ++t) {
        const int64_t pos = lo + cnt[size_t(tr[size_t(t)] - u0)]++;
        a.rows_out[pos] = tr[size_t(t)];
        a.cols_out[pos] = tc[size_t(t)];
        a.values_out[pos] = tv[size_t(t)];
      }
      if (!a.shuffle) continue;
      uint64_t state = a.seed + uint64_t(b);
      for (int64_t s = lo; s < hi;) {  // Fisher-Yates within each user's run
        int64_t e = s + 1;
        while (e < hi && a.rows_out[e] == a.rows_out[s]) ++e;
        for (int64_t t = e - s - 1; t >= 1; --t) {
          const int64_t r = s + int64_t(splitmix64(state) % uint64_t(t + 1));
          std::swap(a.cols_out[s + t], a.cols_out[r]);
          std::swap(a.values_out[s + t], a.values_out[r]);
        }
        s = e;
      }
    }
  }
  return 0;
}
}  // namespace

namespace {
thread_local double t_core_share = 1.0;
}

double sgd_mf_last_core_share() { return t_core_share; }
void note_sgd_mf_core_share(double share) { t_core_share = share; }

double thread_cpu_seconds() {
#ifdef CLOCK_THREAD_CPUTIME_ID
  timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
    return double(ts.tv_sec) + 1e-9 * ts.tv_nsec;
#endif
  return 0.0;
}

double sgd_mf_epoch(const SgdMfArgs<float, int32_t>& a, const SgdMfParams& p) {
  return dispatch(a, p);
}
double sgd_mf_epoch(const SgdMfArgs<float, int64_t>& a, const SgdMfParams& p) {
  return dispatch(a, p);
}
double sgd_mf_epoch(const SgdMfArgs<double, int32_t>& a, const SgdMfParams& p) {
  return dispatch(a, p);
}
double sgd_mf_epoch(const SgdMfArgs<double, int64_t>& a, const SgdMfParams& p) {
  return dispatch(a, p);
}
double sgd_mf_epoch(const SgdMfArgs<float, int32_t, Half>& a, const SgdMfParams& p) {
  return dispatch(a, p);
}
double sgd_mf_epoch(const SgdMfArgs<float, int64_t, Half>& a, const SgdMfParams& p) {
  return dispatch(a, p);
}

void half_to_float_n(const Half* s, float* d, int64_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
  const Isa isa = cpu_isa();
  if (isa == Isa::avx512) return avx512::half_to_float_n(s, d, n);
  if (isa == Isa::avx2) return avx2::half_to_float_n(s, d, n);
#endif
  baseline::half_to_float_n(s, d, n);
}
void float_to_half_n(const float* s, Half* d, int64_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
  const Isa isa = cpu_isa();
  if (isa == Isa::avx512) return avx512::float_to_half_n(s, d, n);
  if (isa == Isa::avx2) return avx2::float_to_half_n(s, d, n);
#endif
  baseline::float_to_half_n(s, d, n);
}

int64_t mf_block_layout(const LayoutArgs<float, int32_t>& a) { return block_layout(a); }
int64_t mf_block_layout(const LayoutArgs<float, int64_t>& a) { return block_layout(a); }
int64_t mf_block_layout(const LayoutArgs<double, int32_t>& a) { return block_layout(a); }
int64_t mf_block_layout(const LayoutArgs<double, int64_t>& a) { return block_layout(a); }

}  // namespace recfast
