// Row-major GEMM over the Fortran BLAS pointers SciPy exports (see recfast/blas.hpp).
#include "recfast/blas.hpp"

#include <algorithm>
#include <atomic>
#include <climits>
#include <mutex>

#include "recfast/common.hpp"

namespace recfast {
namespace blas {
namespace {

std::atomic<sgemm_fn> g_sgemm{nullptr};
std::atomic<dgemm_fn> g_dgemm{nullptr};
std::atomic<sgemm64_fn> g_sgemm64{nullptr};
std::atomic<dgemm64_fn> g_dgemm64{nullptr};
std::atomic<sgemv64_fn> g_sgemv64{nullptr};
std::atomic<dgemv64_fn> g_dgemv64{nullptr};
std::atomic<set_threads_fn> g_set_threads{nullptr};
std::atomic<get_threads_fn> g_get_threads{nullptr};

template <typename F>
struct Fortran;
template <>
struct Fortran<float> {
  static sgemm_fn get() { return g_sgemm.load(std::memory_order_acquire); }
  static sgemm64_fn get64() { return g_sgemm64.load(std::memory_order_acquire); }
  static sgemv64_fn gemv64() { return g_sgemv64.load(std::memory_order_acquire); }
};
template <>
struct Fortran<double> {
  static dgemm_fn get() { return g_dgemm.load(std::memory_order_acquire); }
  static dgemm64_fn get64() { return g_dgemm64.load(std::memory_order_acquire); }
  static dgemv64_fn gemv64() { return g_dgemv64.load(std::memory_order_acquire); }
};

// Fallback: i-k-j loops over 64-wide column panels; the inner loop is contiguous in B and C.
template <typename T>
void gemm_loop(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda,
               const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0)) {
      std::fill(c, c + n, T(0));
    } else if (beta != T(1)) {
      for (int64_t j = 0; j < n; ++j) c[j] *= beta;
    }
    for (int64_t p = 0; p < k; ++p) {
      const T a = alpha * (ta ? A[p * lda + i] : A[i * lda + p]);
      if (!tb) {
        const T* b = B + p * ldb;
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) c[j] += a * b[j];
      } else {
        for (int64_t j = 0; j < n; ++j) c[j] += a * B[j * ldb + p];
      }
    }
  }
}

template <typename T>
void gemm_impl(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda,
               const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {  // C = beta * C
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
    return;
  }
  const char opa = ta ? 'T' : 'N', opb = tb ? 'T' : 'N';
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
  auto gemv = Fortran<T>::gemv64();
  if (m == 1 && gemv) {  // c = op(B)^T a as one GEMV: no packing of B, which GEMM would redo
    if (beta == T(0)) std::fill(C, C + n, T(0));  // so that NaN in C cannot survive 0 * NaN
    const int64_t inc_a = ta ? lda : 1, one = 1;
    if (tb) {
      const char t = 'T';
      gemv(&t, &k, &n, &alpha, B, &ldb, A, &inc_a, &beta, C, &one);
    } else {
      const char t = 'N';
      gemv(&t, &n, &k, &alpha, B, &ldb, A, &inc_a, &beta, C, &one);
    }
    return;
  }
  if (auto f64 = Fortran<T>::get64()) {
    f64(&opb, &opa, &n, &m, &k, &alpha, B, &ldb, A, &lda, &beta, C, &ldc);
    return;
  }
  auto f = Fortran<T>::get();
  if (!f) return gemm_loop(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
  RECFAST_CHECK(n < INT_MAX && k < INT_MAX && lda < INT_MAX && ldb < INT_MAX && ldc < INT_MAX,
                "matrix dimension too large for 32-bit BLAS");
  // Rows of C beyond 32-bit BLAS's reach are done in chunks.
  const int64_t chunk = std::max<int64_t>(1, (INT_MAX - 1) / std::max<int64_t>(1, ldc));
  for (int64_t i0 = 0; i0 < m; i0 += chunk) {
    const int mi = int(std::min(chunk, m - i0));
    const int ni = int(n), ki = int(k), la = int(lda), lb = int(ldb), lc = int(ldc);
    const T* Ai = ta ? A + i0 : A + i0 * lda;
    f(&opb, &opa, &ni, &mi, &ki, &alpha, B, &lb, Ai, &la, &beta, C + i0 * ldc, &lc);
  }
}

}  // namespace

void install(sgemm_fn s, dgemm_fn d, set_threads_fn st, get_threads_fn gt) {
  g_sgemm64.store(nullptr, std::memory_order_release);
  g_dgemm64.store(nullptr, std::memory_order_release);
  g_sgemv64.store(nullptr, std::memory_order_release);
  g_dgemv64.store(nullptr, std::memory_order_release);
  const bool both = st && gt;
  g_set_threads.store(both ? st : nullptr, std::memory_order_release);
  g_get_threads.store(both ? gt : nullptr, std::memory_order_release);
  g_sgemm.store(s, std::memory_order_release);
  g_dgemm.store(d, std::memory_order_release);
}

void install64(sgemm64_fn s, dgemm64_fn d, sgemv64_fn sv, dgemv64_fn dv, set_threads_fn st,
               get_threads_fn gt) {
  install(nullptr, nullptr, st, gt);
  g_sgemv64.store(sv && dv ? sv : nullptr, std::memory_order_release);
  g_dgemv64.store(sv && dv ? dv : nullptr, std::memory_order_release);
  g_sgemm64.store(s, std::memory_order_release);
  g_dgemm64.store(d, std::memory_order_release);
}

bool installed() {
  return (g_sgemm.load() && g_dgemm.load()) || (g_sgemm64.load() && g_dgemm64.load());
}

// Overlapping scopes (calls from several Python threads) share the pool: each sets its count, and
// the last one out restores the count the first one found, so no setting leaks out.
std::mutex g_scope_mutex;
int g_scopes = 0, g_original = 0;

ThreadScope::ThreadScope(int n) {
  auto st = g_set_threads.load(std::memory_order_acquire);
  auto gt = g_get_threads.load(std::memory_order_acquire);
  if (!st || !gt || n < 1) return;
  std::lock_guard<std::mutex> lock(g_scope_mutex);
  const int cur = gt();
  if (g_scopes++ == 0) g_original = cur;
  if (cur != n) st(n);
  active_ = true;
}

ThreadScope::~ThreadScope() {
  if (!active_) return;
  std::lock_guard<std::mutex> lock(g_scope_mutex);
  if (--g_scopes == 0 && g_get_threads.load()() != g_original) g_set_threads.load()(g_original);
}

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_impl(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* A,
          int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  gemm_impl(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace blas
}  // namespace recfast
