// pybind11 glue for the dense-layer epilogues (recfast/dense.py runs the GEMMs in NumPy's BLAS).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "recfast/activation.hpp"

namespace py = pybind11;

namespace recfast {
namespace {

template <typename T>
using CArr = py::array_t<T, py::array::c_style>;

Act parse_act(int a) {
  RECFAST_CHECK(a >= 0 && a <= 3, "activation code must be 0..3");
  return static_cast<Act>(a);
}

template <typename T>
void bias_activation_py(CArr<T> y, std::optional<CArr<T>> b, int act, int num_threads) {
  RECFAST_CHECK(y.ndim() == 2, "y must be 2-D");
  const int64_t n = y.shape(0), h = y.shape(1);
  const T* bp = nullptr;
  if (b) {
    RECFAST_CHECK(b->ndim() == 1 && b->shape(0) == h, "bias must have shape (H,)");
    bp = b->data();
  }
  T* yp = y.mutable_data();
  const Act a = parse_act(act);
  py::gil_scoped_release nogil;
  bias_activation(yp, bp, n, h, a, num_threads);
}

template <typename T>
void activation_backward_py(CArr<T> g_out, CArr<T> y, CArr<T> g_pre, std::optional<CArr<T>> g_bias,
                            int act, int num_threads) {
  RECFAST_CHECK(g_out.ndim() == 2 && y.ndim() == 2 && g_pre.ndim() == 2,
                "grad_out, y and grad_pre must be 2-D");
  const int64_t n = g_out.shape(0), h = g_out.shape(1);
  RECFAST_CHECK(y.shape(0) == n && y.shape(1) == h && g_pre.shape(0) == n && g_pre.shape(1) == h,
                "grad_out, y and grad_pre must have the same shape");
  T* gb = nullptr;
  if (g_bias) {
    RECFAST_CHECK(g_bias->ndim() == 1 && g_bias->shape(0) == h, "grad_bias must have shape (H,)");
    gb = g_bias->mutable_data();
  }
  const T *go = g_out.data(), *yp = y.data();
  T* gp = g_pre.mutable_data();
  const Act a = parse_act(act);
  py::gil_scoped_release nogil;
  activation_backward(go, yp, gp, gb, n, h, a, num_threads);
}

template <typename T>
void def_dense(py::module_& m) {
  m.def("bias_activation", &bias_activation_py<T>, py::arg("y").noconvert(),
        py::arg("bias").noconvert() = py::none(), py::arg("activation") = 0,
        py::arg("num_threads") = 1);
  m.def("activation_backward", &activation_backward_py<T>, py::arg("grad_out").noconvert(),
        py::arg("y").noconvert(), py::arg("grad_pre").noconvert(),
        py::arg("grad_bias").noconvert() = py::none(), py::arg("activation") = 0,
        py::arg("num_threads") = 1);
}

}  // namespace

void bind_dense(py::module_& m) {
  def_dense<float>(m);
  def_dense<double>(m);
}

}  // namespace recfast
