// pybind11 glue for conv2d and max-pooling (recfast/_backends/cpu/conv2d.py adapts these to the
// backend signatures). Shapes are checked again here because recfast._cpu can be imported
// directly. Argument checks: ../bind_helpers.hpp.
#include <string>

#include "../bind_helpers.hpp"
#include "recfast/conv2d.hpp"

namespace recfast {
namespace {

using bind::in;
using bind::OptArray;
using bind::out;
using bind::Shape;

const Shape kNHWC = Shape::rank(4, "(N, H, W, C)");

// x (N, H, W, C), w (KH, KW, C, C_out) and the geometry; (oh, ow) from the output's shape.
template <typename T>
Conv2dShape conv_shape(const py::array& x, const py::array& w, const py::array& y,
                       const char* y_name, int64_t sh, int64_t sw, int64_t dh, int64_t dw,
                       int64_t pt, int64_t pl) {
  RECFAST_CHECK(y.ndim() == 4, std::string(y_name) + " must be 4-D (N, OH, OW, C_out), got shape " +
                                   bind::shape_str(y));
  in<T>(x, "x", kNHWC);
  in<T>(w, "w", Shape::rank(4, "(KH, KW, C, C_out)"));
  RECFAST_CHECK(w.shape(2) == x.shape(3), "w must have shape (KH, KW, C, C_out) with C of x, got " +
                                              bind::shape_str(w) + " for x " + bind::shape_str(x));
  RECFAST_CHECK(sh >= 1 && sw >= 1 && dh >= 1 && dw >= 1, "stride and dilation must be >= 1");
  RECFAST_CHECK(pt >= 0 && pl >= 0, "padding must be >= 0");
  const int64_t oh = y.shape(1), ow = y.shape(2);
  RECFAST_CHECK(oh >= 1 && ow >= 1, "output size must be >= 1");
  return Conv2dShape{x.shape(0), x.shape(1), x.shape(2), x.shape(3), w.shape(0),
                     w.shape(1), w.shape(3), oh,         ow,         sh,
                     sw,         dh,         dw,         pt,         pl};
}

template <typename T>
void forward_py(const py::array& x, const py::array& w, const OptArray& bias, const py::array& y,
                int64_t sh, int64_t sw, int64_t dh, int64_t dw, int64_t pt, int64_t pl, int act,
                int num_threads) {
  num_threads = bind::threads(num_threads);
  const Conv2dShape s = conv_shape<T>(x, w, y, "out", sh, sw, dh, dw, pt, pl);
  T* yp = out<T>(y, "out", {s.n, s.oh, s.ow, s.co});
  const T* bp = in<T>(bias, "bias", {s.co});
  const Act a = bind::act_code(act);
  const T *xp = static_cast<const T*>(x.data()), *wp = static_cast<const T*>(w.data());
  py::gil_scoped_release nogil;
  conv2d_forward(xp, wp, bp, yp, s, a, num_threads);
}

template <typename T>
void backward_py(const py::array& g, const py::array& x, const py::array& w, const OptArray& gx,
                 const OptArray& gw, int64_t sh, int64_t sw, int64_t dh, int64_t dw, int64_t pt,
                 int64_t pl, int num_threads) {
  num_threads = bind::threads(num_threads);
  const Conv2dShape s = conv_shape<T>(x, w, g, "grad_out", sh, sw, dh, dw, pt, pl);
  const T* gp = in<T>(g, "grad_out", {s.n, s.oh, s.ow, s.co});
  T* gxp = out<T>(gx, "grad_x", {s.n, s.h, s.w, s.c});
  T* gwp = out<T>(gw, "grad_w", {s.kh, s.kw, s.c, s.co});
  const T *xp = static_cast<const T*>(x.data()), *wp = static_cast<const T*>(w.data());
  py::gil_scoped_release nogil;
  conv2d_backward(gp, xp, wp, gxp, gwp, s, num_threads);
}

Pool2dShape pool_shape(const py::array& x, const py::array& y, int64_t kh, int64_t kw, int64_t sh,
                       int64_t sw, int64_t ph, int64_t pw) {
  const int64_t h = x.shape(1), w = x.shape(2);
  // An empty image has windows wholly in the padding: no maximum and no index to report (it
  // crashed the kernel, or returned garbage, before).
  RECFAST_CHECK(h >= 1 && w >= 1,
                "x must have a non-empty image (H, W >= 1), got shape " + bind::shape_str(x));
  RECFAST_CHECK(kh >= 1 && kw >= 1 && sh >= 1 && sw >= 1, "size and stride must be >= 1");
  RECFAST_CHECK(ph >= 0 && pw >= 0 && 2 * ph <= kh && 2 * pw <= kw,
                "padding must be in [0, size / 2]");
  RECFAST_CHECK(h + 2 * ph >= kh && w + 2 * pw >= kw, "window larger than the padded input");
  const int64_t oh = (h + 2 * ph - kh) / sh + 1, ow = (w + 2 * pw - kw) / sw + 1;
  RECFAST_CHECK(y.ndim() == 4 && y.shape(1) == oh && y.shape(2) == ow,
                "output shape does not match size, stride and padding: want (N, " +
                    std::to_string(oh) + ", " + std::to_string(ow) + ", C), got " +
                    bind::shape_str(y));
  return Pool2dShape{x.shape(0), h, w, x.shape(3), kh, kw, sh, sw, ph, pw, oh, ow};
}

template <typename T>
void pool_forward_py(const py::array& x, const py::array& y, const py::array& idx, int64_t kh,
                     int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int num_threads) {
  num_threads = bind::threads(num_threads);
  const T* xp = in<T>(x, "x", kNHWC);
  const Pool2dShape s = pool_shape(x, y, kh, kw, sh, sw, ph, pw);
  T* op = out<T>(y, "out", {s.n, s.oh, s.ow, s.c});
  int64_t* ip = out<int64_t>(idx, "indices", {s.n, s.oh, s.ow, s.c});
  py::gil_scoped_release nogil;
  max_pool2d_forward(xp, op, ip, s, num_threads);
}

template <typename T>
void pool_backward_py(const py::array& g, const py::array& idx, const py::array& gx,
                      int num_threads) {
  num_threads = bind::threads(num_threads);
  const T* gp = in<T>(g, "grad_out", kNHWC);
  const int64_t n = g.shape(0), oh = g.shape(1), ow = g.shape(2), c = g.shape(3);
  const int64_t* ip = in<int64_t>(idx, "indices", {n, oh, ow, c});
  T* gxp = out<T>(gx, "grad_x", kNHWC);
  RECFAST_CHECK(gx.shape(0) == n && gx.shape(3) == c,
                "grad_x must match grad_out's batch and channels, got " + bind::shape_str(gx) +
                    " for grad_out " + bind::shape_str(g));
  const Pool2dShape s{n, gx.shape(1), gx.shape(2), c, 0, 0, 0, 0, 0, 0, oh, ow};
  bind::check_range(ip, n * oh * ow * c, s.h * s.w, "indices", "[0, H * W)");
  py::gil_scoped_release nogil;
  const int64_t bad = max_pool2d_backward(gp, ip, gxp, s, num_threads);  // checked as read too
  RECFAST_CHECK(bad == 0, "indices changed while the kernel ran: " + std::to_string(bad) +
                              " entries outside [0, H * W) were skipped");
}

}  // namespace

void bind_conv2d(py::module_& m) {
  m.def(
      "conv2d_forward",
      [](const py::array& x, const py::array& w, const OptArray& bias, const py::array& y,
         int64_t sh, int64_t sw, int64_t dh, int64_t dw, int64_t pt, int64_t pl, int act,
         int num_threads) {
        bind::float_dtype(x, "x", [&](auto t) {
          forward_py<decltype(t)>(x, w, bias, y, sh, sw, dh, dw, pt, pl, act, num_threads);
        });
      },
      py::arg("x").noconvert(), py::arg("w").noconvert(), py::arg("bias").noconvert(),
      py::arg("out").noconvert(), py::arg("sh"), py::arg("sw"), py::arg("dh"), py::arg("dw"),
      py::arg("pt"), py::arg("pl"), py::arg("activation") = 0, py::arg("num_threads") = 1);
  m.def(
      "conv2d_backward",
      [](const py::array& g, const py::array& x, const py::array& w, const OptArray& gx,
         const OptArray& gw, int64_t sh, int64_t sw, int64_t dh, int64_t dw, int64_t pt, int64_t pl,
         int num_threads) {
        bind::float_dtype(g, "grad_out", [&](auto t) {
          backward_py<decltype(t)>(g, x, w, gx, gw, sh, sw, dh, dw, pt, pl, num_threads);
        });
      },
      py::arg("grad_out").noconvert(), py::arg("x").noconvert(), py::arg("w").noconvert(),
      py::arg("grad_x").noconvert(), py::arg("grad_w").noconvert(), py::arg("sh"), py::arg("sw"),
      py::arg("dh"), py::arg("dw"), py::arg("pt"), py::arg("pl"), py::arg("num_threads") = 1);
  m.def(
      "max_pool2d_forward",
      [](const py::array& x, const py::array& y, const py::array& idx, int64_t kh, int64_t kw,
         int64_t sh, int64_t sw, int64_t ph, int64_t pw, int num_threads) {
        bind::float_dtype(x, "x", [&](auto t) {
          pool_forward_py<decltype(t)>(x, y, idx, kh, kw, sh, sw, ph, pw, num_threads);
        });
      },
      py::arg("x").noconvert(), py::arg("out").noconvert(), py::arg("indices").noconvert(),
      py::arg("kh"), py::arg("kw"), py::arg("sh"), py::arg("sw"), py::arg("ph"), py::arg("pw"),
      py::arg("num_threads") = 1);
  m.def(
      "max_pool2d_backward",
      [](const py::array& g, const py::array& idx, const py::array& gx, int num_threads) {
        bind::float_dtype(g, "grad_out",
                          [&](auto t) { pool_backward_py<decltype(t)>(g, idx, gx, num_threads); });
      },
      py::arg("grad_out").noconvert(), py::arg("indices").noconvert(),
      py::arg("grad_x").noconvert(), py::arg("num_threads") = 1);
}

}  // namespace recfast
