// Row-major GEMM for the kernels, backed by the BLAS that SciPy ships (its cython_blas sgemm/dgemm
// pointers are handed over at import, so nothing is linked at build time). Without them a plain
// blocked loop runs: correct, slower. No Python types here.
#pragma once

#include <cstdint>

namespace recfast {
namespace blas {

// Fortran BLAS signatures, as scipy.linalg.cython_blas exports them.
using sgemm_fn = void (*)(const char*, const char*, const int*, const int*, const int*,
                          const float*, const float*, const int*, const float*, const int*,
                          const float*, float*, const int*);
using dgemm_fn = void (*)(const char*, const char*, const int*, const int*, const int*,
                          const double*, const double*, const int*, const double*, const int*,
                          const double*, double*, const int*);
// The same with 64-bit integers (ILP64), as the OpenBLAS inside NumPy's wheels exports them.
using sgemm64_fn = void (*)(const char*, const char*, const int64_t*, const int64_t*,
                            const int64_t*, const float*, const float*, const int64_t*,
                            const float*, const int64_t*, const float*, float*, const int64_t*);
using dgemm64_fn = void (*)(const char*, const char*, const int64_t*, const int64_t*,
                            const int64_t*, const double*, const double*, const int64_t*,
                            const double*, const int64_t*, const double*, double*, const int64_t*);
using sgemv64_fn = void (*)(const char*, const int64_t*, const int64_t*, const float*, const float*,
                            const int64_t*, const float*, const int64_t*, const float*, float*,
                            const int64_t*);
using dgemv64_fn = void (*)(const char*, const int64_t*, const int64_t*, const double*,
                            const double*, const int64_t*, const double*, const int64_t*,
                            const double*, double*, const int64_t*);
using set_threads_fn = void (*)(int);
using get_threads_fn = int (*)();

// Installed once at import (recfast/_cpu_backend.py); nulls select the fallback loop.
void install(sgemm_fn s, dgemm_fn d, set_threads_fn set_threads, get_threads_fn get_threads);
// gemv pointers are optional: a one-row product then skips GEMM's packing of the other operand.
void install64(sgemm64_fn s, dgemm64_fn d, sgemv64_fn sv, dgemv64_fn dv, set_threads_fn set_threads,
               get_threads_fn get_threads);
bool installed();

// Sets the BLAS pool's thread count for its lifetime; the last of overlapping scopes restores the
// count found by the first (a no-op when the BLAS exported no setter). OpenBLAS's pool is
// process-wide, so concurrent calls asking for different counts change speed, never results.
class ThreadScope {
 public:
  explicit ThreadScope(int n);
  ~ThreadScope();
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  bool active_ = false;
};

// C (m x n) = alpha * op(A) * op(B) + beta * C, all row-major. op(A) is m x k: A is stored (m, lda)
// or, when trans_a, (k, lda) and read transposed. Same for B (k x n). beta == 0 ignores C's
// previous content (NaN included), as BLAS does.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
          const double* A, int64_t lda, const double* B, int64_t ldb, double beta, double* C,
          int64_t ldc);

}  // namespace blas
}  // namespace recfast
