// pybind11 glue for conv2d and max-pooling (recfast/_cpu_backend.py adapts these to the backend
// signatures). Arrays arrive C-contiguous with the exact dtype (.noconvert()); shapes are checked
// again here because recfast._cpu can be imported directly.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "recfast/conv2d.hpp"

namespace py = pybind11;

namespace recfast {
namespace {

template <typename T>
using CArr = py::array_t<T, py::array::c_style>;

Act act_code(int a) {
  RECFAST_CHECK(a >= 0 && a <= 3, "activation code must be 0..3");
  return static_cast<Act>(a);
}

template <typename A>
void check_4d(const A& a, const char* name) {
  RECFAST_CHECK(a.ndim() == 4, std::string(name) + " must be 4-D (NHWC)");
}

template <typename T>
Conv2dShape conv_shape(const CArr<T>& x, const CArr<T>& w, int64_t oh, int64_t ow, int64_t sh,
                       int64_t sw, int64_t dh, int64_t dw, int64_t pt, int64_t pl) {
  check_4d(x, "x");
  check_4d(w, "w");
  RECFAST_CHECK(w.shape(2) == x.shape(3), "w must have shape (KH, KW, C, C_out) with C of x");
  RECFAST_CHECK(sh >= 1 && sw >= 1 && dh >= 1 && dw >= 1, "stride and dilation must be >= 1");
  RECFAST_CHECK(pt >= 0 && pl >= 0, "padding must be >= 0");
  RECFAST_CHECK(oh >= 1 && ow >= 1, "output size must be >= 1");
  return Conv2dShape{x.shape(0), x.shape(1), x.shape(2), x.shape(3), w.shape(0),
                     w.shape(1), w.shape(3), oh,         ow,         sh,
                     sw,         dh,         dw,         pt,         pl};
}

template <typename A>
void check_out(const A& y, const Conv2dShape& s, int64_t ch, const char* name) {
  check_4d(y, name);
  RECFAST_CHECK(y.shape(0) == s.n && y.shape(1) == s.oh && y.shape(2) == s.ow && y.shape(3) == ch,
                std::string(name) + " must have shape (N, OH, OW, C_out)");
}

template <typename T>
void forward_py(CArr<T> x, CArr<T> w, std::optional<CArr<T>> bias, CArr<T> y, int64_t sh,
                int64_t sw, int64_t dh, int64_t dw, int64_t pt, int64_t pl, int act,
                int num_threads) {
  RECFAST_CHECK(y.ndim() == 4, "out must be 4-D (NHWC)");
  const Conv2dShape s = conv_shape(x, w, y.shape(1), y.shape(2), sh, sw, dh, dw, pt, pl);
  check_out(y, s, s.co, "out");
  const T* bp = nullptr;
  if (bias) {
    RECFAST_CHECK(bias->ndim() == 1 && bias->shape(0) == s.co, "bias must have shape (C_out,)");
    bp = bias->data();
  }
  const Act a = act_code(act);
  const T *xp = x.data(), *wp = w.data();
  T* yp = y.mutable_data();
  py::gil_scoped_release nogil;
  conv2d_forward(xp, wp, bp, yp, s, a, num_threads);
}

template <typename T>
void backward_py(CArr<T> g, CArr<T> x, CArr<T> w, std::optional<CArr<T>> gx,
                 std::optional<CArr<T>> gw, int64_t sh, int64_t sw, int64_t dh, int64_t dw,
                 int64_t pt, int64_t pl, int num_threads) {
  RECFAST_CHECK(g.ndim() == 4, "grad_out must be 4-D (NHWC)");
  const Conv2dShape s = conv_shape(x, w, g.shape(1), g.shape(2), sh, sw, dh, dw, pt, pl);
  check_out(g, s, s.co, "grad_out");
  T *gxp = nullptr, *gwp = nullptr;
  if (gx) {
    RECFAST_CHECK(gx->ndim() == 4 && gx->shape(0) == s.n && gx->shape(1) == s.h &&
                      gx->shape(2) == s.w && gx->shape(3) == s.c,
                  "grad_x must have the shape of x");
    gxp = gx->mutable_data();
  }
  if (gw) {
    RECFAST_CHECK(gw->ndim() == 4 && gw->shape(0) == s.kh && gw->shape(1) == s.kw &&
                      gw->shape(2) == s.c && gw->shape(3) == s.co,
                  "grad_w must have the shape of w");
    gwp = gw->mutable_data();
  }
  const T *gp = g.data(), *xp = x.data(), *wp = w.data();
  py::gil_scoped_release nogil;
  conv2d_backward(gp, xp, wp, gxp, gwp, s, num_threads);
}

Pool2dShape pool_shape(int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw,
                       int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t oh, int64_t ow) {
  RECFAST_CHECK(kh >= 1 && kw >= 1 && sh >= 1 && sw >= 1, "size and stride must be >= 1");
  RECFAST_CHECK(ph >= 0 && pw >= 0 && 2 * ph <= kh && 2 * pw <= kw,
                "padding must be in [0, size / 2]");
  RECFAST_CHECK(h + 2 * ph >= kh && w + 2 * pw >= kw, "window larger than the padded input");
  RECFAST_CHECK(oh == (h + 2 * ph - kh) / sh + 1 && ow == (w + 2 * pw - kw) / sw + 1,
                "output shape does not match size, stride and padding");
  return Pool2dShape{n, h, w, c, kh, kw, sh, sw, ph, pw, oh, ow};
}

template <typename T>
void pool_forward_py(CArr<T> x, CArr<T> out, CArr<int64_t> idx, int64_t kh, int64_t kw, int64_t sh,
                     int64_t sw, int64_t ph, int64_t pw, int num_threads) {
  check_4d(x, "x");
  check_4d(out, "out");
  check_4d(idx, "indices");
  const Pool2dShape s = pool_shape(x.shape(0), x.shape(1), x.shape(2), x.shape(3), kh, kw, sh, sw,
                                   ph, pw, out.shape(1), out.shape(2));
  for (int d = 0; d < 4; ++d)
    RECFAST_CHECK(idx.shape(d) == out.shape(d), "indices must have the shape of out");
  RECFAST_CHECK(out.shape(0) == s.n && out.shape(3) == s.c, "out must have shape (N, OH, OW, C)");
  const T* xp = x.data();
  T* op = out.mutable_data();
  int64_t* ip = idx.mutable_data();
  py::gil_scoped_release nogil;
  max_pool2d_forward(xp, op, ip, s, num_threads);
}

template <typename T>
void pool_backward_py(CArr<T> g, CArr<int64_t> idx, CArr<T> gx, int num_threads) {
  check_4d(g, "grad_out");
  check_4d(idx, "indices");
  check_4d(gx, "grad_x");
  for (int d = 0; d < 4; ++d)
    RECFAST_CHECK(idx.shape(d) == g.shape(d), "indices must have the shape of grad_out");
  RECFAST_CHECK(gx.shape(0) == g.shape(0) && gx.shape(3) == g.shape(3),
                "grad_x must match grad_out's batch and channels");
  Pool2dShape s{gx.shape(0), gx.shape(1), gx.shape(2), gx.shape(3), 0,          0,
                0,           0,           0,           0,           g.shape(1), g.shape(2)};
  const int64_t plane = s.h * s.w, count = idx.size();
  const int64_t* ip = idx.data();
  for (int64_t i = 0; i < count; ++i)
    RECFAST_CHECK(ip[i] >= 0 && ip[i] < plane, "indices must lie in [0, H * W)");
  const T* gp = g.data();
  T* gxp = gx.mutable_data();
  py::gil_scoped_release nogil;
  max_pool2d_backward(gp, ip, gxp, s, num_threads);
}

template <typename T>
void def_conv(py::module_& m) {
  m.def("conv2d_forward", &forward_py<T>, py::arg("x").noconvert(), py::arg("w").noconvert(),
        py::arg("bias").noconvert(), py::arg("out").noconvert(), py::arg("sh"), py::arg("sw"),
        py::arg("dh"), py::arg("dw"), py::arg("pt"), py::arg("pl"), py::arg("activation") = 0,
        py::arg("num_threads") = 1);
  m.def("conv2d_backward", &backward_py<T>, py::arg("grad_out").noconvert(),
        py::arg("x").noconvert(), py::arg("w").noconvert(), py::arg("grad_x").noconvert(),
        py::arg("grad_w").noconvert(), py::arg("sh"), py::arg("sw"), py::arg("dh"), py::arg("dw"),
        py::arg("pt"), py::arg("pl"), py::arg("num_threads") = 1);
  m.def("max_pool2d_forward", &pool_forward_py<T>, py::arg("x").noconvert(),
        py::arg("out").noconvert(), py::arg("indices").noconvert(), py::arg("kh"), py::arg("kw"),
        py::arg("sh"), py::arg("sw"), py::arg("ph"), py::arg("pw"), py::arg("num_threads") = 1);
  m.def("max_pool2d_backward", &pool_backward_py<T>, py::arg("grad_out").noconvert(),
        py::arg("indices").noconvert(), py::arg("grad_x").noconvert(), py::arg("num_threads") = 1);
}

}  // namespace

void bind_conv2d(py::module_& m) {
  def_conv<float>(m);
  def_conv<double>(m);
}

}  // namespace recfast
