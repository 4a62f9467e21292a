// recfast._cuda: the CUDA kernels (csrc/cuda/*.cu, from recfast/_kernels/*.cuh). Device arrays
// arrive as raw pointers from recfast/_backends/_device.py, which reads and checks their
// __cuda_array_interface__ / DLPack (device, dtype, strides, read-only flag); these bindings check
// the scalars again and release the GIL around every launch. Imports with no GPU or driver (cudart
// is linked statically): device_status() then says why no device is usable.
#include "../bind_helpers.hpp"
#include "recfast/cuda_launch.hpp"

namespace recfast {
void bind_cuda_mf(py::module_& m);
void bind_cuda_dense(py::module_& m);
void bind_cuda_rnn(py::module_& m);
void bind_cuda_conv2d(py::module_& m);
}  // namespace recfast

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "recfast CUDA kernels (launched on the caller's stream)";
#ifdef VERSION_INFO
  m.attr("__version__") = VERSION_INFO;
#else
  m.attr("__version__") = "dev";
#endif
  m.def("device_status", &recfast::cuda::device_status,
        "'' when a CUDA device is usable, else the reason ('no CUDA device (...)'). Never raises.");
  m.def("device_count", &recfast::cuda::device_count);
  m.def("runtime_version", &recfast::cuda::runtime_version,
        "CUDA runtime linked in, 'major.minor'.");
  m.def("codes", &recfast::bind::codes, "The activation and cell codes the kernels take.");
  recfast::bind_cuda_mf(m);
  recfast::bind_cuda_dense(m);
  recfast::bind_cuda_rnn(m);
  recfast::bind_cuda_conv2d(m);
}
