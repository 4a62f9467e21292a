// SGD-MF entry points: pick the instruction-set copy once, and the block layout.
#include <algorithm>
#include <vector>

#include "recfast/sgd_mf.hpp"

namespace recfast {

#define RECFAST_DECLARE_ISA(ns)                                                 \
  namespace ns {                                                                \
  double sgd_mf_epoch(const SgdMfArgs<float, int32_t>& a, const SgdMfParams& p);  \
  double sgd_mf_epoch(const SgdMfArgs<float, int64_t>& a, const SgdMfParams& p);  \
  double sgd_mf_epoch(const SgdMfArgs<double, int32_t>& a, const SgdMfParams& p); \
  double sgd_mf_epoch(const SgdMfArgs<double, int64_t>& a, const SgdMfParams& p); \
  }
RECFAST_DECLARE_ISA(baseline)
#if defined(__x86_64__) && defined(__GNUC__)
RECFAST_DECLARE_ISA(avx2)
RECFAST_DECLARE_ISA(avx512)
#endif

namespace {
enum class Isa { baseline, avx2, avx512 };

Isa detect_isa() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
    return Isa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
#endif
  return Isa::baseline;
}

const Isa kIsa = detect_isa();

template <typename T, typename I>
double dispatch(const SgdMfArgs<T, I>& a, const SgdMfParams& p) {
  if (a.k == 0 || (a.order ? a.n_order : a.nnz) == 0) return 0.0;
#if defined(__x86_64__) && defined(__GNUC__)
  if (kIsa == Isa::avx512) return avx512::sgd_mf_epoch(a, p);
  if (kIsa == Isa::avx2) return avx2::sgd_mf_epoch(a, p);
#endif
  return baseline::sgd_mf_epoch(a, p);
}

template <typename I>
void block_layout(const I* rows, const I* cols, int64_t nnz, int64_t n_users, int64_t n_items,
                  int64_t nb, int64_t* perm, int64_t* block_ptr) {
  // LSD radix sort: stable by user, then stable by block id, so users ascend within each block.
  std::vector<int64_t> count(size_t(std::max(n_users, nb * nb)) + 1, 0);
  std::vector<int64_t> by_user(static_cast<size_t>(nnz));
  for (int64_t j = 0; j < nnz; ++j) ++count[size_t(rows[j]) + 1];
  for (int64_t u = 0; u < n_users; ++u) count[size_t(u) + 1] += count[size_t(u)];
  for (int64_t j = 0; j < nnz; ++j) by_user[size_t(count[size_t(rows[j])]++)] = j;

  auto block_of = [&](int64_t j) {
    const int64_t ub = int64_t(rows[j]) * nb / n_users, ib = int64_t(cols[j]) * nb / n_items;
    return ((ib - ub + nb) % nb) * nb + ub;
  };
  const int64_t nblk = nb * nb;
  std::fill(block_ptr, block_ptr + nblk + 1, int64_t(0));
  for (int64_t j = 0; j < nnz; ++j) ++block_ptr[block_of(j) + 1];
  for (int64_t b = 0; b < nblk; ++b) block_ptr[b + 1] += block_ptr[b];
  std::vector<int64_t> next(block_ptr, block_ptr + nblk);
  for (int64_t j : by_user) perm[next[size_t(block_of(j))]++] = j;
}
}  // namespace

double sgd_mf_epoch(const SgdMfArgs<float, int32_t>& a, const SgdMfParams& p) { return dispatch(a, p); }
double sgd_mf_epoch(const SgdMfArgs<float, int64_t>& a, const SgdMfParams& p) { return dispatch(a, p); }
double sgd_mf_epoch(const SgdMfArgs<double, int32_t>& a, const SgdMfParams& p) { return dispatch(a, p); }
double sgd_mf_epoch(const SgdMfArgs<double, int64_t>& a, const SgdMfParams& p) { return dispatch(a, p); }

void mf_block_layout(const int32_t* rows, const int32_t* cols, int64_t nnz, int64_t n_users,
                     int64_t n_items, int64_t nb, int64_t* perm, int64_t* block_ptr) {
  block_layout(rows, cols, nnz, n_users, n_items, nb, perm, block_ptr);
}
void mf_block_layout(const int64_t* rows, const int64_t* cols, int64_t nnz, int64_t n_users,
                     int64_t n_items, int64_t nb, int64_t* perm, int64_t* block_ptr) {
  block_layout(rows, cols, nnz, n_users, n_items, nb, perm, block_ptr);
}

const char* simd_level() {
  switch (kIsa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "baseline";
  }
}

}  // namespace recfast
