// recfast._cpu: the C++ CPU kernels. Each op's bindings live in <op>_bind.cpp.
#ifdef _OPENMP
#include <omp.h>
#endif

#include "../bind_helpers.hpp"
#include "recfast/isa.hpp"

namespace recfast {
void bind_sgd_mf(py::module_& m);
void bind_dense(py::module_& m);
void bind_blas(py::module_& m);
void bind_rnn(py::module_& m);
void bind_conv2d(py::module_& m);
void bind_implicit(py::module_& m);
}  // namespace recfast

PYBIND11_MODULE(_cpu, m) {
  m.doc() = "recfast C++ CPU kernels (OpenMP, runtime-dispatched SIMD)";
#ifdef VERSION_INFO
  m.attr("__version__") = VERSION_INFO;
#else
  m.attr("__version__") = "dev";
#endif
#ifdef _OPENMP
  m.attr("openmp") = true;
#else
  m.attr("openmp") = false;
#endif
  m.def("codes", &recfast::bind::codes,
        "The activation and cell codes the kernels take, from the C++ enums: {'activation': "
        "{name: code}, 'cell': {name: code}}.");
  m.def("simd_level", &recfast::simd_level, "Instruction set the kernels dispatch to.");
  // omp_get_max_threads is per calling thread: threadpoolctl's limit in this thread shows here.
  m.def("omp_max_threads", []() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
  });
  recfast::bind_sgd_mf(m);
  recfast::bind_dense(m);
  recfast::bind_blas(m);
  recfast::bind_rnn(m);
  recfast::bind_conv2d(m);
  recfast::bind_implicit(m);
}
