// pybind11 glue for the dense layer (whole forward and backward passes) and its epilogues.
// Argument checks: ../bind_helpers.hpp.
#include "../bind_helpers.hpp"
#include "recfast/activation.hpp"
#include "recfast/dense.hpp"

namespace recfast {
namespace {

using bind::in;
using bind::OptArray;
using bind::out;
using bind::Shape;

template <typename T>
void bias_activation_py(const py::array& y, const OptArray& bias, int act, int num_threads) {
  num_threads = bind::threads(num_threads);
  T* yp = out<T>(y, "y", Shape::rank(2, "(N, H)"));
  const int64_t n = y.shape(0), h = y.shape(1);
  const T* bp = in<T>(bias, "bias", {h});
  const Act a = bind::act_code(act);
  py::gil_scoped_release nogil;
  bias_activation(yp, bp, n, h, a, num_threads);
}

template <typename T>
void activation_backward_py(const py::array& grad_out, const py::array& y,
                            const py::array& grad_pre, const OptArray& grad_bias, int act,
                            int num_threads) {
  num_threads = bind::threads(num_threads);
  const T* go = in<T>(grad_out, "grad_out", Shape::rank(2, "(N, H)"));
  const int64_t n = grad_out.shape(0), h = grad_out.shape(1);
  const T* yp = in<T>(y, "y", {n, h});
  T* gp = out<T>(grad_pre, "grad_pre", {n, h});
  T* gb = out<T>(grad_bias, "grad_bias", {h});
  const Act a = bind::act_code(act);
  py::gil_scoped_release nogil;
  activation_backward(go, yp, gp, gb, n, h, a, num_threads);
}

template <typename T>
void dense_forward_py(const py::array& x, const py::array& W, const OptArray& b, const py::array& y,
                      int act, int num_threads) {
  num_threads = bind::threads(num_threads);
  const T* xp = in<T>(x, "x", Shape::rank(2, "(N, D)"));
  const int64_t n = x.shape(0), d = x.shape(1);
  const T* Wp = in<T>(W, "W", Shape::rank(2, "(H, D)"));
  const int64_t h = W.shape(0);
  RECFAST_CHECK(W.shape(1) == d, "W must have D = " + std::to_string(d) + " columns, got shape " +
                                     bind::shape_str(W));
  const T* bp = in<T>(b, "b", {h});
  T* yp = out<T>(y, "out", {n, h});
  const Act a = bind::act_code(act);
  py::gil_scoped_release nogil;
  dense_forward(xp, Wp, bp, yp, n, d, h, a, num_threads);
}

template <typename T>
void dense_backward_py(const py::array& g_out, const py::array& x, const py::array& W,
                       const OptArray& y, const OptArray& scratch, const OptArray& grad_x,
                       const OptArray& grad_W, const OptArray& grad_b, int act, int num_threads) {
  num_threads = bind::threads(num_threads);
  const T* xp = in<T>(x, "x", Shape::rank(2, "(N, D)"));
  const int64_t n = x.shape(0), d = x.shape(1);
  const T* Wp = in<T>(W, "W", Shape::rank(2, "(H, D)"));
  const int64_t h = W.shape(0);
  RECFAST_CHECK(W.shape(1) == d, "W must have D = " + std::to_string(d) + " columns, got shape " +
                                     bind::shape_str(W));
  const T* gp = in<T>(g_out, "grad_out", {n, h});
  const Act a = bind::act_code(act);
  const T* yp = in<T>(y, "output", {n, h});
  T* sp = out<T>(scratch, "scratch", {n, h});
  RECFAST_CHECK(a == Act::identity || (yp && sp),
                "output and scratch are required with an activation");
  T* gx = out<T>(grad_x, "grad_x", {n, d});
  T* gW = out<T>(grad_W, "grad_W", {h, d});
  T* gb = out<T>(grad_b, "grad_b", {h});
  py::gil_scoped_release nogil;
  dense_backward(gp, xp, Wp, yp, sp, gx, gW, gb, n, d, h, a, num_threads);
}

}  // namespace

void bind_dense(py::module_& m) {
  m.def(
      "dense_forward",
      [](const py::array& x, const py::array& W, const OptArray& b, const py::array& y, int act,
         int num_threads) {
        bind::float_dtype(
            x, "x", [&](auto t) { dense_forward_py<decltype(t)>(x, W, b, y, act, num_threads); });
      },
      py::arg("x").noconvert(), py::arg("W").noconvert(), py::arg("b").noconvert(),
      py::arg("out").noconvert(), py::arg("activation") = 0, py::arg("num_threads") = 1,
      "out (N, H) = f(x W^T + b): x (N, D), W (H, D), b (H,) or None; the GEMM on num_threads.");
  m.def(
      "dense_backward",
      [](const py::array& g_out, const py::array& x, const py::array& W, const OptArray& y,
         const OptArray& scratch, const OptArray& grad_x, const OptArray& grad_W,
         const OptArray& grad_b, int act, int num_threads) {
        bind::float_dtype(x, "x", [&](auto t) {
          dense_backward_py<decltype(t)>(g_out, x, W, y, scratch, grad_x, grad_W, grad_b, act,
                                         num_threads);
        });
      },
      py::arg("grad_out").noconvert(), py::arg("x").noconvert(), py::arg("W").noconvert(),
      py::arg("output").noconvert(), py::arg("scratch").noconvert(), py::arg("grad_x").noconvert(),
      py::arg("grad_W").noconvert(), py::arg("grad_b").noconvert(), py::arg("activation") = 0,
      py::arg("num_threads") = 1,
      "Gradients of dense_forward: grad_x (N, D), grad_W (H, D), grad_b (H,), each skipped when "
      "None; output (the forward result) and scratch (N, H) are needed with an activation.");
  m.def(
      "bias_activation",
      [](const py::array& y, const OptArray& bias, int act, int num_threads) {
        bind::float_dtype(
            y, "y", [&](auto t) { bias_activation_py<decltype(t)>(y, bias, act, num_threads); });
      },
      py::arg("y").noconvert(), py::arg("bias").noconvert() = py::none(), py::arg("activation") = 0,
      py::arg("num_threads") = 1,
      "y (N, H) = f(y + bias) in place; float32 or float64, bias (H,) of y's dtype or None.");
  m.def(
      "activation_backward",
      [](const py::array& grad_out, const py::array& y, const py::array& grad_pre,
         const OptArray& grad_bias, int act, int num_threads) {
        bind::float_dtype(grad_out, "grad_out", [&](auto t) {
          activation_backward_py<decltype(t)>(grad_out, y, grad_pre, grad_bias, act, num_threads);
        });
      },
      py::arg("grad_out").noconvert(), py::arg("y").noconvert(), py::arg("grad_pre").noconvert(),
      py::arg("grad_bias").noconvert() = py::none(), py::arg("activation") = 0,
      py::arg("num_threads") = 1,
      "grad_pre = grad_out * f'(y) (N, H); grad_bias (H,) = its column sums, unless None.");
}

}  // namespace recfast
