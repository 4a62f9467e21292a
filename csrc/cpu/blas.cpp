// Row-major GEMM over the Fortran BLAS pointers SciPy exports (see recfast/blas.hpp).
#include "recfast/blas.hpp"

#include <algorithm>
#include <atomic>
#include <climits>

#include "recfast/common.hpp"

namespace recfast {
namespace blas {
namespace {

std::atomic<sgemm_fn> g_sgemm{nullptr};
std::atomic<dgemm_fn> g_dgemm{nullptr};
std::atomic<set_threads_fn> g_set_threads{nullptr};
std::atomic<get_threads_fn> g_get_threads{nullptr};

template <typename F>
struct Fortran;
template <>
struct Fortran<float> {
  static sgemm_fn get() { return g_sgemm.load(std::memory_order_acquire); }
};
template <>
struct Fortran<double> {
  static dgemm_fn get() { return g_dgemm.load(std::memory_order_acquire); }
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
  auto f = Fortran<T>::get();
  if (!f) return gemm_loop(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
  RECFAST_CHECK(n < INT_MAX && k < INT_MAX && lda < INT_MAX && ldb < INT_MAX && ldc < INT_MAX,
                "matrix dimension too large for 32-bit BLAS");
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands. Rows of C
  // beyond 32-bit BLAS's reach are done in chunks.
  const int64_t chunk = std::max<int64_t>(1, (INT_MAX - 1) / std::max<int64_t>(1, ldc));
  for (int64_t i0 = 0; i0 < m; i0 += chunk) {
    const int mi = int(std::min(chunk, m - i0));
    const int ni = int(n), ki = int(k), la = int(lda), lb = int(ldb), lc = int(ldc);
    const char opa = ta ? 'T' : 'N', opb = tb ? 'T' : 'N';
    const T* Ai = ta ? A + i0 : A + i0 * lda;
    f(&opb, &opa, &ni, &mi, &ki, &alpha, B, &lb, Ai, &la, &beta, C + i0 * ldc, &lc);
  }
}

}  // namespace

void install(sgemm_fn s, dgemm_fn d, set_threads_fn st, get_threads_fn gt) {
  const bool both = st && gt;
  g_set_threads.store(both ? st : nullptr, std::memory_order_release);
  g_get_threads.store(both ? gt : nullptr, std::memory_order_release);
  g_sgemm.store(s, std::memory_order_release);
  g_dgemm.store(d, std::memory_order_release);
}

bool installed() { return g_sgemm.load() != nullptr && g_dgemm.load() != nullptr; }

ThreadScope::ThreadScope(int n) {
  auto st = g_set_threads.load(std::memory_order_acquire);
  auto gt = g_get_threads.load(std::memory_order_acquire);
  if (!st || !gt || n < 1) return;
  const int cur = gt();
  if (cur != n) {
    st(n);
    previous_ = cur;
  }
}

ThreadScope::~ThreadScope() {
  if (previous_ > 0) g_set_threads.load(std::memory_order_acquire)(previous_);
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
