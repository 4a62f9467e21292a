// Host launchers of the SGD-MF kernels (recfast/_kernels/mf.cuh): shapes -> grid, launched on the
// caller's stream, every launch checked. No pybind11 here (csrc/bindings/cuda/mf_bind.cpp).
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "cuda_check.cuh"
#include "mf.cuh"
#include "recfast/cuda_launch.hpp"

namespace recfast {
namespace cuda {
namespace {

constexpr int kThreads = 256;  // 8 warps: 8 ratings in flight per block

using u64 = unsigned long long;

template <typename I>
using DevI = typename std::conditional<sizeof(I) == 8, long long, int>::type;

// Warps in flight are capped at a quarter of the smaller factor matrix's rows, so that on small
// problems (ml-100k: 943 users) few warps update one row at once; large ones fill the GPU anyway.
int hogwild_grid(long long n, long long n_users, long long n_items) {
  long long rows = n_users < n_items ? n_users : n_items;
  long long warps = rows / 4 > 32 ? rows / 4 : 32;
  long long cap = (warps + kThreads / 32 - 1) / (kThreads / 32);
  int g = grid_for(n, kThreads / 32);
  return int(g < cap ? g : cap);
}

template <typename T, typename I, int KPL, bool VEC, typename S>
void run(const SgdMfArgs<T, I, S>& a, const SgdMfParams& p, double* work, cudaStream_t s) {
  using J = DevI<I>;
  const J* rows = reinterpret_cast<const J*>(a.rows);
  const J* cols = reinterpret_cast<const J*>(a.cols);
  const T lr = T(p.learning_rate), reg = T(p.regularization), breg = T(p.bias_regularization),
          mu = T(p.global_mean);
  u64* skipped = reinterpret_cast<u64*>(work + 1);
  if (a.block_ptr) {
    const long long nb = a.n_blocks;
    const long long* bp = reinterpret_cast<const long long*>(a.block_ptr);
    double* block_sse = work + 5;
    const int grid = int((nb * 32 + kThreads - 1) / kThreads);
    for (long long st = 0; st < nb; ++st) {  // one launch per stratum: blocks of one share no row
      gpu::sgd_mf_stratum<T, J, KPL, VEC, S><<<grid, kThreads, 0, s>>>(
          rows, cols, a.values, bp, st, nb, a.U, a.V, a.k, a.n_users, a.n_items, a.user_bias,
          a.item_bias, a.user_accum, a.item_accum, lr, reg, breg, mu, block_sse, skipped);
      check_launch("sgd_mf_stratum", s);
    }
    gpu::sum_in_order<<<1, 1, 0, s>>>(block_sse, nb * nb, work);
    check_launch("sum_in_order", s);
    return;
  }
  const long long n = a.order ? a.n_order : a.nnz;
  const long long* order = reinterpret_cast<const long long*>(a.order);
  gpu::sgd_mf_hogwild<T, J, KPL, VEC, S><<<hogwild_grid(n, a.n_users, a.n_items), kThreads, 0, s>>>(
      rows, cols, a.values, order, n, a.nnz, a.U, a.V, a.k, a.n_users, a.n_items, a.user_bias,
      a.item_bias, a.user_accum, a.item_accum, lr, reg, breg, mu, work, skipped);
  check_launch("sgd_mf_hogwild", s);
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

template <typename T, typename I, typename S>
double epoch(const SgdMfArgs<T, I, S>& a, const SgdMfParams& p, double* work, const Launch& l) {
  cudaStream_t s = static_cast<cudaStream_t>(l.stream);
  using J = DevI<I>;
  throw_on(cudaMemsetAsync(work, 0, 5 * sizeof(double), s), "clearing the workspace");
  // The range check, on the device, before any update: only three counts come to the host.
  u64* bad = reinterpret_cast<u64*>(work + 2);
  gpu::count_out_of_range<J><<<grid_for(a.nnz, kThreads), kThreads, 0, s>>>(
      reinterpret_cast<const J*>(a.rows), a.nnz, a.n_users, bad);
  check_launch("count_out_of_range(rows)", s);
  gpu::count_out_of_range<J><<<grid_for(a.nnz, kThreads), kThreads, 0, s>>>(
      reinterpret_cast<const J*>(a.cols), a.nnz, a.n_items, bad + 1);
  check_launch("count_out_of_range(cols)", s);
  if (a.order) {
    gpu::count_out_of_range<long long><<<grid_for(a.n_order, kThreads), kThreads, 0, s>>>(
        reinterpret_cast<const long long*>(a.order), a.n_order, a.nnz, bad + 2);
    check_launch("count_out_of_range(order)", s);
  }
  u64 counts[3] = {0, 0, 0};
  throw_on(cudaMemcpyAsync(counts, bad, sizeof counts, cudaMemcpyDeviceToHost, s), "copy");
  throw_on(cudaStreamSynchronize(s), "range check");
  const char* names[3] = {"rows", "cols", "order"};
  const long long bounds[3] = {a.n_users, a.n_items, a.nnz};
  const char* what[3] = {"n_users", "n_items", "nnz"};
  for (int j = 0; j < 3; ++j)
    if (counts[j])
      throw std::invalid_argument(std::string("recfast: ") + names[j] + " holds " +
                                  std::to_string(counts[j]) + " entries outside [0, " + what[j] +
                                  "=" + std::to_string(bounds[j]) + ")");
  const int kpl = (a.k == 32 || a.k == 64 || a.k == 128) ? int(a.k / 32) : 0;
  // Half rows are read coordinate by coordinate (KPL halves per lane: 2-8 bytes).
  const bool vec = kpl > 0 && sizeof(S) == sizeof(T) && aligned16(a.U) && aligned16(a.V);
  constexpr bool kVec = sizeof(S) == sizeof(T);  // Half rows: no vector form to instantiate
  switch (kpl * 2 + int(vec)) {
    case 2:
      run<T, I, 1, false, S>(a, p, work, s);
      break;
    case 3:
      run<T, I, 1, kVec, S>(a, p, work, s);
      break;
    case 4:
      run<T, I, 2, false, S>(a, p, work, s);
      break;
    case 5:
      run<T, I, 2, kVec, S>(a, p, work, s);
      break;
    case 8:
      run<T, I, 4, false, S>(a, p, work, s);
      break;
    case 9:
      run<T, I, 4, kVec, S>(a, p, work, s);
      break;
    default:
      run<T, I, 0, false, S>(a, p, work, s);
      break;
  }
  double out[2] = {0.0, 0.0};  // the loss and the skipped count (bits of a u64)
  throw_on(cudaMemcpyAsync(out, work, sizeof out, cudaMemcpyDeviceToHost, s), "copy");
  throw_on(cudaStreamSynchronize(s), "sgd_mf_epoch");
  if (a.skipped) {
    u64 sk;
    static_assert(sizeof sk == sizeof out[1], "counter size");
    std::memcpy(&sk, &out[1], sizeof sk);
    *a.skipped += int64_t(sk);
  }
  return out[0];
}

}  // namespace

double sgd_mf_epoch(const SgdMfArgs<float, int32_t>& a, const SgdMfParams& p, double* work,
                    const Launch& l) {
  return epoch(a, p, work, l);
}
double sgd_mf_epoch(const SgdMfArgs<float, int64_t>& a, const SgdMfParams& p, double* work,
                    const Launch& l) {
  return epoch(a, p, work, l);
}
double sgd_mf_epoch(const SgdMfArgs<double, int32_t>& a, const SgdMfParams& p, double* work,
                    const Launch& l) {
  return epoch(a, p, work, l);
}
double sgd_mf_epoch(const SgdMfArgs<double, int64_t>& a, const SgdMfParams& p, double* work,
                    const Launch& l) {
  return epoch(a, p, work, l);
}
double sgd_mf_epoch(const SgdMfArgs<float, int32_t, Half>& a, const SgdMfParams& p, double* work,
                    const Launch& l) {
  return epoch(a, p, work, l);
}
double sgd_mf_epoch(const SgdMfArgs<float, int64_t, Half>& a, const SgdMfParams& p, double* work,
                    const Launch& l) {
  return epoch(a, p, work, l);
}

}  // namespace cuda
}  // namespace recfast
