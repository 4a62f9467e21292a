// pybind11 glue for the CUDA dense epilogues (asynchronous on the given stream).
#include <cstdint>
#include <string>

#include "../bind_helpers.hpp"
#include "recfast/activation.hpp"
#include "recfast/cuda_launch.hpp"

namespace recfast {
namespace {

void check_act(int act) {
  RECFAST_CHECK(act >= 0 && act < int(Act::count),
                "unknown activation code " + std::to_string(act));
}

cuda::Launch on(uintptr_t stream) {
  cuda::Launch l;
  l.stream = reinterpret_cast<void*>(stream);
  return l;
}

}  // namespace

void bind_cuda_dense(py::module_& m) {
  m.def(
      "bias_activation",
      [](const std::string& dtype, uintptr_t y, uintptr_t b, int64_t n, int64_t h, int act,
         uintptr_t stream) {
        check_act(act);
        RECFAST_CHECK(n >= 0 && h >= 0 && (y || n * h == 0), "bad output");
        py::gil_scoped_release nogil;
        if (dtype == "float32")
          cuda::bias_activation(reinterpret_cast<float*>(y), reinterpret_cast<const float*>(b), n,
                                h, act, on(stream));
        else if (dtype == "float64")
          cuda::bias_activation(reinterpret_cast<double*>(y), reinterpret_cast<const double*>(b), n,
                                h, act, on(stream));
        else
          throw std::invalid_argument("recfast: dtype must be float32 or float64");
      },
      "y (n, h) = f(y + b) in place on the device; b may be 0 (no bias).");
  m.def(
      "activation_backward",
      [](const std::string& dtype, uintptr_t g, uintptr_t y, uintptr_t gp, int64_t total, int act,
         uintptr_t stream) {
        check_act(act);
        RECFAST_CHECK(total >= 0 && ((g && y && gp) || total == 0), "null device pointer");
        py::gil_scoped_release nogil;
        if (dtype == "float32")
          cuda::activation_backward(reinterpret_cast<const float*>(g),
                                    reinterpret_cast<const float*>(y), reinterpret_cast<float*>(gp),
                                    total, act, on(stream));
        else if (dtype == "float64")
          cuda::activation_backward(reinterpret_cast<const double*>(g),
                                    reinterpret_cast<const double*>(y),
                                    reinterpret_cast<double*>(gp), total, act, on(stream));
        else
          throw std::invalid_argument("recfast: dtype must be float32 or float64");
      },
      "g_pre = g_out * f'(y) over `total` contiguous entries on the device.");
}

}  // namespace recfast
