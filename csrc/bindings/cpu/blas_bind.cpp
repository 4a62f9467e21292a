// pybind11 glue for the BLAS pointers: installed once at import from scipy.linalg.cython_blas.
#include <cstdint>
#include <string>

#include "../bind_helpers.hpp"
#include "recfast/blas.hpp"
#include "recfast/common.hpp"

namespace recfast {
namespace {

void* capsule_pointer(const py::object& cap, const char* what) {
  RECFAST_CHECK(PyCapsule_CheckExact(cap.ptr()), std::string(what) + " must be a PyCapsule");
  void* p = PyCapsule_GetPointer(cap.ptr(), PyCapsule_GetName(cap.ptr()));
  if (!p) throw py::error_already_set();
  return p;
}

void install_py(const py::object& sgemm, const py::object& dgemm, std::uintptr_t set_threads,
                std::uintptr_t get_threads) {
  if (sgemm.is_none() || dgemm.is_none()) {
    blas::install(nullptr, nullptr, nullptr, nullptr);
    return;
  }
  blas::install(reinterpret_cast<blas::sgemm_fn>(capsule_pointer(sgemm, "sgemm")),
                reinterpret_cast<blas::dgemm_fn>(capsule_pointer(dgemm, "dgemm")),
                reinterpret_cast<blas::set_threads_fn>(set_threads),
                reinterpret_cast<blas::get_threads_fn>(get_threads));
}

void install64_py(std::uintptr_t sgemm, std::uintptr_t dgemm, std::uintptr_t sgemv,
                  std::uintptr_t dgemv, std::uintptr_t set_threads, std::uintptr_t get_threads) {
  RECFAST_CHECK(sgemm && dgemm, "sgemm and dgemm addresses must be non-zero");
  blas::install64(
      reinterpret_cast<blas::sgemm64_fn>(sgemm), reinterpret_cast<blas::dgemm64_fn>(dgemm),
      reinterpret_cast<blas::sgemv64_fn>(sgemv), reinterpret_cast<blas::dgemv64_fn>(dgemv),
      reinterpret_cast<blas::set_threads_fn>(set_threads),
      reinterpret_cast<blas::get_threads_fn>(get_threads));
}

// Test hook: the BLAS pool's thread count inside a ThreadScope(n) (0: no setter installed).
int scoped_threads_py(int n, std::uintptr_t get_threads) {
  blas::ThreadScope scope(n);
  return get_threads ? reinterpret_cast<blas::get_threads_fn>(get_threads)() : 0;
}

// Test hook: c = alpha * op(a) @ op(b) + beta * c through the same path the kernels use.
template <typename T>
void gemm_py(const py::array& a, const py::array& b, const py::array& c, bool trans_a, bool trans_b,
             double alpha, double beta) {
  const T* ap = bind::in<T>(a, "a", bind::Shape::rank(2, "(M, K)"));
  const T* bp = bind::in<T>(b, "b", bind::Shape::rank(2, "(K, N)"));
  T* cp = bind::out<T>(c, "c", bind::Shape::rank(2, "(M, N)"));
  const int64_t m = trans_a ? a.shape(1) : a.shape(0), k = trans_a ? a.shape(0) : a.shape(1);
  const int64_t kb = trans_b ? b.shape(1) : b.shape(0), n = trans_b ? b.shape(0) : b.shape(1);
  RECFAST_CHECK(k == kb && c.shape(0) == m && c.shape(1) == n, "gemm: shapes do not conform");
  py::gil_scoped_release nogil;
  blas::gemm(trans_a, trans_b, m, n, k, T(alpha), ap, a.shape(1), bp, b.shape(1), T(beta), cp,
             c.shape(1));
}

}  // namespace

void bind_blas(py::module_& m) {
  m.def("blas_install", &install_py, py::arg("sgemm"), py::arg("dgemm"), py::arg("set_threads") = 0,
        py::arg("get_threads") = 0,
        "Hand over the Fortran sgemm/dgemm capsules of scipy.linalg.cython_blas and the addresses "
        "of the BLAS's set/get thread-count functions (None capsules: the fallback loop).");
  m.def("blas_install64", &install64_py, py::arg("sgemm"), py::arg("dgemm"), py::arg("sgemv") = 0,
        py::arg("dgemv") = 0, py::arg("set_threads") = 0, py::arg("get_threads") = 0,
        "Hand over the addresses of ILP64 Fortran sgemm/dgemm/sgemv/dgemv (64-bit integer "
        "arguments; gemv optional) and of the BLAS's set/get thread-count functions.");
  m.def("blas_installed", &blas::installed);
  m.def("blas_scoped_threads", &scoped_threads_py, py::arg("n"), py::arg("get_threads"));
  m.def(
      "blas_gemm",
      [](const py::array& a, const py::array& b, const py::array& c, bool trans_a, bool trans_b,
         double alpha, double beta) {
        bind::float_dtype(
            a, "a", [&](auto t) { gemm_py<decltype(t)>(a, b, c, trans_a, trans_b, alpha, beta); });
      },
      py::arg("a").noconvert(), py::arg("b").noconvert(), py::arg("c").noconvert(),
      py::arg("trans_a") = false, py::arg("trans_b") = false, py::arg("alpha") = 1.0,
      py::arg("beta") = 0.0);
}

}  // namespace recfast
