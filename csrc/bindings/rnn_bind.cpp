// pybind11 glue for the recurrent sequence kernels (recfast/rnn.py validates first; these checks
// are the cheap second line for direct callers of recfast._cpu).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <vector>

#include "recfast/rnn.hpp"

namespace py = pybind11;

namespace recfast {
namespace {

template <typename T>
using CArr = py::array_t<T, py::array::c_style>;
template <typename T>
using Opt = std::optional<CArr<T>>;
using Lengths = std::optional<py::array_t<int64_t, py::array::c_style>>;

void expect_shape(const py::array& a, std::vector<int64_t> shape, const char* name) {
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i)
    ok = a.shape(static_cast<py::ssize_t>(i)) == shape[i];
  if (!ok) {
    std::string want = "(";
    for (size_t i = 0; i < shape.size(); ++i) want += (i ? ", " : "") + std::to_string(shape[i]);
    RECFAST_CHECK(false, std::string(name) + " must have shape " + want + ")");
  }
}

template <typename T>
const T* in_ptr(const Opt<T>& a, std::vector<int64_t> shape, const char* name) {
  if (!a) return nullptr;
  expect_shape(*a, std::move(shape), name);
  return a->data();
}

template <typename T>
T* out_ptr(Opt<T>& a, std::vector<int64_t> shape, const char* name) {
  if (!a) return nullptr;
  expect_shape(*a, std::move(shape), name);
  return a->mutable_data();
}

// h_like: h0 (N, H), or the states cache (T + 1, N, H) in backward.
RnnShape make_shape(int cell, int act, const py::array& xs, const py::array& h_like) {
  RECFAST_CHECK(cell >= 0 && cell <= 2, "cell code must be 0 (rnn), 1 (gru) or 2 (lstm)");
  RECFAST_CHECK(act >= 0 && act <= 3, "activation code must be 0..3");
  RECFAST_CHECK(xs.ndim() == 3, "xs must be (T, N, D)");
  const py::ssize_t r = h_like.ndim();
  RECFAST_CHECK(r == 2 || (r == 3 && h_like.shape(0) == xs.shape(0) + 1),
                "h0 must be (N, H) and states (T + 1, N, H)");
  RECFAST_CHECK(h_like.shape(r - 2) == xs.shape(1), "h0 must have one row per sequence");
  RnnShape s;
  s.T = xs.shape(0);
  s.N = xs.shape(1);
  s.D = xs.shape(2);
  s.H = h_like.shape(r - 1);
  s.cell = static_cast<Cell>(cell);
  s.act = static_cast<Act>(act);
  return s;
}

const int64_t* check_lengths(const Lengths& l, const RnnShape& s) {
  if (!l) return nullptr;
  expect_shape(*l, {s.N}, "lengths");
  const int64_t* p = l->data();
  for (int64_t n = 0; n < s.N; ++n)
    RECFAST_CHECK(p[n] >= 0 && p[n] <= s.T, "lengths must lie in [0, T]");
  return p;
}

template <typename T>
void forward_py(int cell, int act, CArr<T> xs, CArr<T> h0, Opt<T> c0, CArr<T> W, CArr<T> U,
                Opt<T> b_ih, Opt<T> b_hh, Lengths lengths, Opt<T> out, CArr<T> h_last,
                Opt<T> c_last, Opt<T> states, Opt<T> cells, Opt<T> gates, int num_threads) {
  const RnnShape s = make_shape(cell, act, xs, h0);
  const int64_t GH = gate_count(s.cell) * s.H;
  const bool lstm = s.cell == Cell::lstm;
  RnnForwardArgs<T> a;
  a.xs = xs.data();
  a.h0 = h0.data();
  expect_shape(W, {GH, s.D}, "W");
  expect_shape(U, {GH, s.H}, "U");
  a.W = W.data();
  a.U = U.data();
  a.c0 = in_ptr(c0, {s.N, s.H}, "c0");
  RECFAST_CHECK(!lstm || a.c0, "the LSTM needs c0");
  a.b_ih = in_ptr(b_ih, {GH}, "b_ih");
  a.b_hh = in_ptr(b_hh, {GH}, "b_hh");
  a.lengths = check_lengths(lengths, s);
  a.out = out_ptr(out, {s.T, s.N, s.H}, "out");
  expect_shape(h_last, {s.N, s.H}, "h_last");
  a.h_last = h_last.mutable_data();
  a.c_last = out_ptr(c_last, {s.N, s.H}, "c_last");
  a.states = out_ptr(states, {s.T + 1, s.N, s.H}, "states");
  a.cells = out_ptr(cells, {s.T + 1, s.N, s.H}, "cells");
  a.gates = out_ptr(gates, {s.T, s.N, gate_cache_width(s)}, "gates");
  if (a.states) RECFAST_CHECK(!lstm || a.cells, "the LSTM cache needs cells");
  if (a.states) RECFAST_CHECK(s.cell == Cell::rnn || a.gates, "the GRU/LSTM cache needs gates");
  py::gil_scoped_release nogil;
  rnn_forward(s, a, num_threads);
}

template <typename T>
void backward_py(int cell, int act, CArr<T> xs, CArr<T> W, CArr<T> U, Lengths lengths,
                 CArr<T> states, Opt<T> cells, Opt<T> gates, Opt<T> grad_out, Opt<T> grad_h_last,
                 Opt<T> grad_c_last, Opt<T> grad_xs, Opt<T> grad_h0, Opt<T> grad_c0, Opt<T> grad_W,
                 Opt<T> grad_U, Opt<T> grad_b_ih, Opt<T> grad_b_hh, int num_threads) {
  RECFAST_CHECK(states.ndim() == 3, "states must be (T + 1, N, H)");
  const RnnShape s = make_shape(cell, act, xs, states);
  const int64_t GH = gate_count(s.cell) * s.H;
  const bool lstm = s.cell == Cell::lstm;
  expect_shape(W, {GH, s.D}, "W");
  expect_shape(U, {GH, s.H}, "U");
  RnnBackwardArgs<T> a;
  a.xs = xs.data();
  a.W = W.data();
  a.U = U.data();
  a.lengths = check_lengths(lengths, s);
  a.states = states.data();
  a.cells = in_ptr(cells, {s.T + 1, s.N, s.H}, "cells");
  a.gates = in_ptr(gates, {s.T, s.N, gate_cache_width(s)}, "gates");
  RECFAST_CHECK(!lstm || a.cells, "the LSTM backward needs cells");
  RECFAST_CHECK(s.cell == Cell::rnn || a.gates, "the GRU/LSTM backward needs gates");
  a.grad_out = in_ptr(grad_out, {s.T, s.N, s.H}, "grad_out");
  a.grad_h_last = in_ptr(grad_h_last, {s.N, s.H}, "grad_h_last");
  a.grad_c_last = in_ptr(grad_c_last, {s.N, s.H}, "grad_c_last");
  a.grad_xs = out_ptr(grad_xs, {s.T, s.N, s.D}, "grad_xs");
  a.grad_h0 = out_ptr(grad_h0, {s.N, s.H}, "grad_h0");
  a.grad_c0 = out_ptr(grad_c0, {s.N, s.H}, "grad_c0");
  a.grad_W = out_ptr(grad_W, {GH, s.D}, "grad_W");
  a.grad_U = out_ptr(grad_U, {GH, s.H}, "grad_U");
  a.grad_b_ih = out_ptr(grad_b_ih, {GH}, "grad_b_ih");
  a.grad_b_hh = out_ptr(grad_b_hh, {GH}, "grad_b_hh");
  py::gil_scoped_release nogil;
  rnn_backward(s, a, num_threads);
}

template <typename T>
void def_rnn(py::module_& m) {
  m.def("rnn_forward", &forward_py<T>, py::arg("cell"), py::arg("activation"),
        py::arg("xs").noconvert(), py::arg("h0").noconvert(), py::arg("c0").noconvert(),
        py::arg("W").noconvert(), py::arg("U").noconvert(), py::arg("b_ih").noconvert(),
        py::arg("b_hh").noconvert(), py::arg("lengths").noconvert(), py::arg("out").noconvert(),
        py::arg("h_last").noconvert(), py::arg("c_last").noconvert(), py::arg("states").noconvert(),
        py::arg("cells").noconvert(), py::arg("gates").noconvert(), py::arg("num_threads") = 1);
  m.def("rnn_backward", &backward_py<T>, py::arg("cell"), py::arg("activation"),
        py::arg("xs").noconvert(), py::arg("W").noconvert(), py::arg("U").noconvert(),
        py::arg("lengths").noconvert(), py::arg("states").noconvert(), py::arg("cells").noconvert(),
        py::arg("gates").noconvert(), py::arg("grad_out").noconvert(),
        py::arg("grad_h_last").noconvert(), py::arg("grad_c_last").noconvert(),
        py::arg("grad_xs").noconvert(), py::arg("grad_h0").noconvert(),
        py::arg("grad_c0").noconvert(), py::arg("grad_W").noconvert(),
        py::arg("grad_U").noconvert(), py::arg("grad_b_ih").noconvert(),
        py::arg("grad_b_hh").noconvert(), py::arg("num_threads") = 1);
}

}  // namespace

void bind_rnn(py::module_& m) {
  def_rnn<float>(m);
  def_rnn<double>(m);
}

}  // namespace recfast
