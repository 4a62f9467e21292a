// pybind11 glue for the fused recurrent step (asynchronous on the given stream).
#include <cstdint>
#include <string>

#include "../bind_helpers.hpp"
#include "recfast/activation.hpp"
#include "recfast/cuda_launch.hpp"
#include "recfast/rnn_cells.hpp"

namespace recfast {

void bind_cuda_rnn(py::module_& m) {
  m.def(
      "rnn_step_forward",
      [](const std::string& dtype, int cell, int act, uintptr_t a, uintptr_t u, uintptr_t b_ih,
         uintptr_t b_hh, uintptr_t lengths, int64_t t, uintptr_t h_prev, uintptr_t c_prev,
         uintptr_t h_new, uintptr_t c_new, uintptr_t out_t, uintptr_t gates_t, int64_t N, int64_t H,
         uintptr_t stream) {
        RECFAST_CHECK(cell >= 0 && cell < int(Cell::count), "unknown cell code");
        RECFAST_CHECK(act >= 0 && act < int(Act::count), "unknown activation code");
        RECFAST_CHECK(N >= 0 && H >= 0 && t >= 0, "sizes must be >= 0");
        RECFAST_CHECK(N * H == 0 || (a && u && h_prev && h_new), "null device pointer");
        RECFAST_CHECK(cell != int(Cell::lstm) || N * H == 0 || (c_prev && c_new),
                      "the LSTM needs c_prev and c_new");
        cuda::RnnStepArgs s;
        s.cell = cell;
        s.act = act;
        s.a = reinterpret_cast<const void*>(a);
        s.u = reinterpret_cast<const void*>(u);
        s.b_ih = reinterpret_cast<const void*>(b_ih);
        s.b_hh = reinterpret_cast<const void*>(b_hh);
        s.lengths = reinterpret_cast<const int64_t*>(lengths);
        s.t = t;
        s.h_prev = reinterpret_cast<const void*>(h_prev);
        s.c_prev = reinterpret_cast<const void*>(c_prev);
        s.h_new = reinterpret_cast<void*>(h_new);
        s.c_new = reinterpret_cast<void*>(c_new);
        s.out_t = reinterpret_cast<void*>(out_t);
        s.gates_t = reinterpret_cast<void*>(gates_t);
        s.N = N;
        s.H = H;
        cuda::Launch l;
        l.stream = reinterpret_cast<void*>(stream);
        py::gil_scoped_release nogil;
        if (dtype == "float32")
          cuda::rnn_step_forward_f32(s, l);
        else if (dtype == "float64")
          cuda::rnn_step_forward_f64(s, l);
        else
          throw std::invalid_argument("recfast: dtype must be float32 or float64");
      },
      "One fused recurrent step over N x H units on the device (see recfast/_kernels/rnn.cuh).");
  m.def(
      "rnn_step_backward",
      [](const std::string& dtype, int cell, int act, uintptr_t grad_out_t, uintptr_t dh_base,
         uintptr_t dh_mat, uintptr_t dc, uintptr_t h_prev, uintptr_t h, uintptr_t c_prev,
         uintptr_t c, uintptr_t gates_t, uintptr_t lengths, int64_t t, uintptr_t gx_t,
         uintptr_t gh_t, int64_t N, int64_t H, uintptr_t stream) {
        RECFAST_CHECK(cell >= 0 && cell < int(Cell::count), "unknown cell code");
        RECFAST_CHECK(act >= 0 && act < int(Act::count), "unknown activation code");
        RECFAST_CHECK(N >= 0 && H >= 0 && t >= 0, "sizes must be >= 0");
        RECFAST_CHECK(N * H == 0 || (dh_base && dh_mat && h_prev && h && gx_t && gh_t),
                      "null device pointer");
        RECFAST_CHECK(cell == int(Cell::rnn) || N * H == 0 || gates_t, "the gate cache is needed");
        RECFAST_CHECK(cell != int(Cell::lstm) || N * H == 0 || (dc && c_prev && c),
                      "the LSTM needs dc and the cell states");
        cuda::RnnStepBackArgs s;
        s.cell = cell;
        s.act = act;
        s.grad_out_t = reinterpret_cast<const void*>(grad_out_t);
        s.dh_base = reinterpret_cast<void*>(dh_base);
        s.dh_mat = reinterpret_cast<const void*>(dh_mat);
        s.dc = reinterpret_cast<void*>(dc);
        s.h_prev = reinterpret_cast<const void*>(h_prev);
        s.h = reinterpret_cast<const void*>(h);
        s.c_prev = reinterpret_cast<const void*>(c_prev);
        s.c = reinterpret_cast<const void*>(c);
        s.gates_t = reinterpret_cast<const void*>(gates_t);
        s.lengths = reinterpret_cast<const int64_t*>(lengths);
        s.t = t;
        s.gx_t = reinterpret_cast<void*>(gx_t);
        s.gh_t = reinterpret_cast<void*>(gh_t);
        s.N = N;
        s.H = H;
        cuda::Launch l;
        l.stream = reinterpret_cast<void*>(stream);
        py::gil_scoped_release nogil;
        if (dtype == "float32")
          cuda::rnn_step_backward_f32(s, l);
        else if (dtype == "float64")
          cuda::rnn_step_backward_f64(s, l);
        else
          throw std::invalid_argument("recfast: dtype must be float32 or float64");
      },
      "One BPTT step over N x H units on the device (see recfast/_kernels/rnn.cuh).");
}

}  // namespace recfast
