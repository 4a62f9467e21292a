// pybind11 glue for the CUDA convolution and max-pooling launchers (asynchronous on the stream).
// Shapes arrive as the fields of Conv2dShape / Pool2dShape, in order (recfast/conv2d.hpp).
#include <cstdint>
#include <string>
#include <vector>

#include "../bind_helpers.hpp"
#include "recfast/activation.hpp"
#include "recfast/conv2d.hpp"
#include "recfast/cuda_launch.hpp"

namespace recfast {
namespace {

bool is_f64(const std::string& dtype) {
  RECFAST_CHECK(dtype == "float32" || dtype == "float64",
                "dtype must be float32 or float64, got " + dtype);
  return dtype == "float64";
}

void non_negative(const std::vector<int64_t>& d, size_t n) {
  RECFAST_CHECK(d.size() == n, "expected " + std::to_string(n) + " shape fields");
  for (int64_t v : d) RECFAST_CHECK(v >= 0, "shape fields must be >= 0");
}

Conv2dShape conv_shape(const std::vector<int64_t>& d) {
  non_negative(d, 15);
  RECFAST_CHECK(d[9] >= 1 && d[10] >= 1 && d[11] >= 1 && d[12] >= 1,
                "strides and dilations must be >= 1");
  return Conv2dShape{d[0], d[1], d[2],  d[3],  d[4],  d[5],  d[6], d[7],
                     d[8], d[9], d[10], d[11], d[12], d[13], d[14]};
}

Pool2dShape pool_shape(const std::vector<int64_t>& d) {
  non_negative(d, 12);
  return Pool2dShape{d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11]};
}

template <typename T>
T* p(uintptr_t v) {
  return reinterpret_cast<T*>(v);
}

cuda::Launch on(uintptr_t stream) {
  cuda::Launch l;
  l.stream = reinterpret_cast<void*>(stream);
  return l;
}

}  // namespace

void bind_cuda_conv2d(py::module_& m) {
  m.def("conv2d_forward",
        [](const std::string& dt, uintptr_t x, uintptr_t w, uintptr_t b, uintptr_t y, int act,
           const std::vector<int64_t>& dims, uintptr_t stream) {
          RECFAST_CHECK(act >= 0 && act < int(Act::count), "unknown activation code");
          const bool f64 = is_f64(dt);
          const Conv2dShape s = conv_shape(dims);
          py::gil_scoped_release nogil;
          cuda::conv2d_forward(f64, p<const void>(x), p<const void>(w), p<const void>(b),
                               p<void>(y), s, act, on(stream));
        });
  m.def("conv2d_grad_x", [](const std::string& dt, uintptr_t g, uintptr_t w, uintptr_t gx,
                            const std::vector<int64_t>& dims, uintptr_t stream) {
    const bool f64 = is_f64(dt);
    const Conv2dShape s = conv_shape(dims);
    py::gil_scoped_release nogil;
    cuda::conv2d_grad_x(f64, p<const void>(g), p<const void>(w), p<void>(gx), s, on(stream));
  });
  m.def("conv2d_grad_w", [](const std::string& dt, uintptr_t g, uintptr_t x, uintptr_t gw,
                            const std::vector<int64_t>& dims, uintptr_t stream) {
    const bool f64 = is_f64(dt);
    const Conv2dShape s = conv_shape(dims);
    py::gil_scoped_release nogil;
    cuda::conv2d_grad_w(f64, p<const void>(g), p<const void>(x), p<void>(gw), s, on(stream));
  });
  m.def("max_pool2d_forward", [](const std::string& dt, uintptr_t x, uintptr_t out, uintptr_t idx,
                                 const std::vector<int64_t>& dims, uintptr_t stream) {
    const bool f64 = is_f64(dt);
    const Pool2dShape s = pool_shape(dims);
    py::gil_scoped_release nogil;
    cuda::max_pool2d_forward(f64, p<const void>(x), p<void>(out), p<int64_t>(idx), s, on(stream));
  });
  m.def("max_pool2d_backward",
        [](const std::string& dt, uintptr_t g, uintptr_t idx, uintptr_t gx, uintptr_t bad,
           const std::vector<int64_t>& dims, uintptr_t stream) {
          const bool f64 = is_f64(dt);
          const Pool2dShape s = pool_shape(dims);
          RECFAST_CHECK(bad != 0, "null counter");
          py::gil_scoped_release nogil;
          cuda::max_pool2d_backward(f64, p<const void>(g), p<const int64_t>(idx), p<void>(gx),
                                    p<unsigned long long>(bad), s, on(stream));
        });
  m.def("count_out_of_range",
        [](uintptr_t idx, int64_t n, int64_t bound, uintptr_t bad, uintptr_t stream) {
          RECFAST_CHECK(n >= 0 && bad != 0 && (idx != 0 || n == 0), "bad arguments");
          py::gil_scoped_release nogil;
          cuda::count_out_of_range(p<const int64_t>(idx), n, bound, p<unsigned long long>(bad),
                                   on(stream));
        });
}

}  // namespace recfast
