// pybind11 glue for the recurrent sequence kernels (recfast/rnn.py validates first; these checks
// are the cheap second line for direct callers of recfast._cpu). Argument checks:
// ../bind_helpers.hpp.
#include <string>

#include "../bind_helpers.hpp"
#include "recfast/rnn.hpp"

namespace recfast {
namespace {

using bind::in;
using bind::OptArray;
using bind::out;
using bind::Shape;

// T, N, D from xs (T, N, D); H from h0 (N, H) in forward, from states (T + 1, N, H) in backward.
template <typename T>
RnnShape make_shape(int cell, int act, const py::array& xs, const py::array& h_like,
                    bool is_states) {
  RnnShape s;
  s.cell = bind::cell_code(cell);
  s.act = bind::act_code(act);
  in<T>(xs, "xs", Shape::rank(3, "(T, N, D)"));
  s.T = xs.shape(0);
  s.N = xs.shape(1);
  s.D = xs.shape(2);
  const char* name = is_states ? "states" : "h0";
  in<T>(h_like, name, is_states ? Shape::rank(3, "(T + 1, N, H)") : Shape::rank(2, "(N, H)"));
  s.H = h_like.shape(h_like.ndim() - 1);
  const Shape want = is_states ? Shape{s.T + 1, s.N, s.H} : Shape{s.N, s.H};
  RECFAST_CHECK(want.matches(h_like), std::string(name) + " must " + want.str() +
                                          " (T, N from xs), got shape " + bind::shape_str(h_like));
  return s;
}

const int64_t* lengths_ptr(const OptArray& l, const RnnShape& s) {
  const int64_t* p = in<int64_t>(l, "lengths", {s.N});
  if (p) bind::check_range(p, s.N, s.T + 1, "lengths", "[0, T]");
  return p;
}

template <typename T>
void forward_py(int cell, int act, const py::array& xs, const py::array& h0, const OptArray& c0,
                const py::array& W, const py::array& U, const OptArray& b_ih, const OptArray& b_hh,
                const OptArray& lengths, const OptArray& outputs, const py::array& h_last,
                const OptArray& c_last, const OptArray& states, const OptArray& cells,
                const OptArray& gates, int num_threads) {
  num_threads = bind::threads(num_threads);
  const RnnShape s = make_shape<T>(cell, act, xs, h0, false);
  const int64_t GH = gate_count(s.cell) * s.H;
  const bool lstm = s.cell == Cell::lstm;
  RnnForwardArgs<T> a;
  a.xs = static_cast<const T*>(xs.data());
  a.h0 = static_cast<const T*>(h0.data());
  a.W = in<T>(W, "W", {GH, s.D});
  a.U = in<T>(U, "U", {GH, s.H});
  a.c0 = in<T>(c0, "c0", {s.N, s.H});
  RECFAST_CHECK(!lstm || a.c0, "the LSTM needs c0");
  a.b_ih = in<T>(b_ih, "b_ih", {GH});
  a.b_hh = in<T>(b_hh, "b_hh", {GH});
  a.lengths = lengths_ptr(lengths, s);
  a.out = out<T>(outputs, "out", {s.T, s.N, s.H});
  a.h_last = out<T>(h_last, "h_last", {s.N, s.H});
  a.c_last = out<T>(c_last, "c_last", {s.N, s.H});
  a.states = out<T>(states, "states", {s.T + 1, s.N, s.H});
  a.cells = out<T>(cells, "cells", {s.T + 1, s.N, s.H});
  a.gates = out<T>(gates, "gates", {s.T, s.N, gate_cache_width(s)});
  if (a.states) RECFAST_CHECK(!lstm || a.cells, "the LSTM cache needs cells");
  if (a.states) RECFAST_CHECK(s.cell == Cell::rnn || a.gates, "the GRU/LSTM cache needs gates");
  py::gil_scoped_release nogil;
  rnn_forward(s, a, num_threads);
}

template <typename T>
void backward_py(int cell, int act, const py::array& xs, const py::array& W, const py::array& U,
                 const OptArray& lengths, const py::array& states, const OptArray& cells,
                 const OptArray& gates, const OptArray& grad_out, const OptArray& grad_h_last,
                 const OptArray& grad_c_last, const OptArray& grad_xs, const OptArray& grad_h0,
                 const OptArray& grad_c0, const OptArray& grad_W, const OptArray& grad_U,
                 const OptArray& grad_b_ih, const OptArray& grad_b_hh, int num_threads) {
  num_threads = bind::threads(num_threads);
  const RnnShape s = make_shape<T>(cell, act, xs, states, true);
  const int64_t GH = gate_count(s.cell) * s.H;
  const bool lstm = s.cell == Cell::lstm;
  RnnBackwardArgs<T> a;
  a.xs = static_cast<const T*>(xs.data());
  a.W = in<T>(W, "W", {GH, s.D});
  a.U = in<T>(U, "U", {GH, s.H});
  a.lengths = lengths_ptr(lengths, s);
  a.states = static_cast<const T*>(states.data());
  a.cells = in<T>(cells, "cells", {s.T + 1, s.N, s.H});
  a.gates = in<T>(gates, "gates", {s.T, s.N, gate_cache_width(s)});
  RECFAST_CHECK(!lstm || a.cells, "the LSTM backward needs cells");
  RECFAST_CHECK(s.cell == Cell::rnn || a.gates, "the GRU/LSTM backward needs gates");
  a.grad_out = in<T>(grad_out, "grad_out", {s.T, s.N, s.H});
  a.grad_h_last = in<T>(grad_h_last, "grad_h_last", {s.N, s.H});
  a.grad_c_last = in<T>(grad_c_last, "grad_c_last", {s.N, s.H});
  a.grad_xs = out<T>(grad_xs, "grad_xs", {s.T, s.N, s.D});
  a.grad_h0 = out<T>(grad_h0, "grad_h0", {s.N, s.H});
  a.grad_c0 = out<T>(grad_c0, "grad_c0", {s.N, s.H});
  a.grad_W = out<T>(grad_W, "grad_W", {GH, s.D});
  a.grad_U = out<T>(grad_U, "grad_U", {GH, s.H});
  a.grad_b_ih = out<T>(grad_b_ih, "grad_b_ih", {GH});
  a.grad_b_hh = out<T>(grad_b_hh, "grad_b_hh", {GH});
  py::gil_scoped_release nogil;
  rnn_backward(s, a, num_threads);
}

void forward_any(int cell, int act, const py::array& xs, const py::array& h0, const OptArray& c0,
                 const py::array& W, const py::array& U, const OptArray& b_ih, const OptArray& b_hh,
                 const OptArray& lengths, const OptArray& outputs, const py::array& h_last,
                 const OptArray& c_last, const OptArray& states, const OptArray& cells,
                 const OptArray& gates, int num_threads) {
  bind::float_dtype(xs, "xs", [&](auto t) {
    forward_py<decltype(t)>(cell, act, xs, h0, c0, W, U, b_ih, b_hh, lengths, outputs, h_last,
                            c_last, states, cells, gates, num_threads);
  });
}

void backward_any(int cell, int act, const py::array& xs, const py::array& W, const py::array& U,
                  const OptArray& lengths, const py::array& states, const OptArray& cells,
                  const OptArray& gates, const OptArray& grad_out, const OptArray& grad_h_last,
                  const OptArray& grad_c_last, const OptArray& grad_xs, const OptArray& grad_h0,
                  const OptArray& grad_c0, const OptArray& grad_W, const OptArray& grad_U,
                  const OptArray& grad_b_ih, const OptArray& grad_b_hh, int num_threads) {
  bind::float_dtype(xs, "xs", [&](auto t) {
    backward_py<decltype(t)>(cell, act, xs, W, U, lengths, states, cells, gates, grad_out,
                             grad_h_last, grad_c_last, grad_xs, grad_h0, grad_c0, grad_W, grad_U,
                             grad_b_ih, grad_b_hh, num_threads);
  });
}

}  // namespace

void bind_rnn(py::module_& m) {
  m.def("rnn_forward", &forward_any, py::arg("cell"), py::arg("activation"),
        py::arg("xs").noconvert(), py::arg("h0").noconvert(), py::arg("c0").noconvert(),
        py::arg("W").noconvert(), py::arg("U").noconvert(), py::arg("b_ih").noconvert(),
        py::arg("b_hh").noconvert(), py::arg("lengths").noconvert(), py::arg("out").noconvert(),
        py::arg("h_last").noconvert(), py::arg("c_last").noconvert(), py::arg("states").noconvert(),
        py::arg("cells").noconvert(), py::arg("gates").noconvert(), py::arg("num_threads") = 1);
  m.def("rnn_backward", &backward_any, py::arg("cell"), py::arg("activation"),
        py::arg("xs").noconvert(), py::arg("W").noconvert(), py::arg("U").noconvert(),
        py::arg("lengths").noconvert(), py::arg("states").noconvert(), py::arg("cells").noconvert(),
        py::arg("gates").noconvert(), py::arg("grad_out").noconvert(),
        py::arg("grad_h_last").noconvert(), py::arg("grad_c_last").noconvert(),
        py::arg("grad_xs").noconvert(), py::arg("grad_h0").noconvert(),
        py::arg("grad_c0").noconvert(), py::arg("grad_W").noconvert(),
        py::arg("grad_U").noconvert(), py::arg("grad_b_ih").noconvert(),
        py::arg("grad_b_hh").noconvert(), py::arg("num_threads") = 1);
}

}  // namespace recfast
