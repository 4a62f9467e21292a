// Per-element arithmetic of the recurrent cells, forward and backward, host and device. Gate
// layouts follow PyTorch: GRU rows r, z, n (3H); LSTM rows i, f, g, o (4H). "x*" is the input
// projection W x + b_ih of a gate, "h*" the recurrent one U h (+ b_hh for the GRU).
#pragma once

#include "recfast/activation.hpp"
#include "recfast/common.hpp"
#include "recfast/fastmath.hpp"

namespace recfast {

// The codes Python passes (recfast/_codes.py's CELL_CODES; recfast._cpu.codes() reads kCellNames).
// `count` ends the valid range.
enum class Cell : int { rnn = 0, gru = 1, lstm = 2, count };

struct CellName {
  const char* name;
  Cell code;
};
inline constexpr CellName kCellNames[] = {
    {"rnn", Cell::rnn}, {"gru", Cell::gru}, {"lstm", Cell::lstm}};
static_assert(names_every_code<Cell>(kCellNames), "kCellNames lists every cell, in order");

// Rows of W / U per hidden unit.
RECFAST_HD RECFAST_INLINE int gate_count(Cell c) {
  return c == Cell::rnn ? 1 : (c == Cell::gru ? 3 : 4);
}

// GRU: r = s(xr + hr), z = s(xz + hz), n = tanh(xn + r hn), h = (1 - z) n + z h_prev.
template <typename T>
struct GruGates {
  T r, z, n, h;
};

template <typename T>
RECFAST_HD RECFAST_INLINE GruGates<T> gru_forward(T xr, T xz, T xn, T hr, T hz, T hn, T h_prev) {
  GruGates<T> g;
  g.r = fm::sigmoid(xr + hr);
  g.z = fm::sigmoid(xz + hz);
  g.n = fm::tanh(xn + g.r * hn);
  g.h = g.n + g.z * (h_prev - g.n);
  return g;
}

// Gradients of the pre-activations from dh (the total gradient reaching h): the input side gets
// (dr, dz, dn), the recurrent side (dr, dz, dn * r); dh_prev gets dh * z directly plus U^T(...).
template <typename T>
struct GruGrads {
  T dr, dz, dn, dhn, dh_prev;
};

template <typename T>
RECFAST_HD RECFAST_INLINE GruGrads<T> gru_backward(T dh, T h_prev, T r, T z, T n, T hn) {
  GruGrads<T> d;
  const T dn_pre = dh * (T(1) - z) * (T(1) - n * n);
  d.dz = dh * (h_prev - n) * z * (T(1) - z);
  d.dr = dn_pre * hn * r * (T(1) - r);
  d.dn = dn_pre;
  d.dhn = dn_pre * r;
  d.dh_prev = dh * z;
  return d;
}

// LSTM: i, f, o = s(.), g = tanh(.), c = f c_prev + i g, h = o tanh(c).
template <typename T>
struct LstmGates {
  T i, f, g, o, c, h;
};

template <typename T>
RECFAST_HD RECFAST_INLINE LstmGates<T> lstm_forward(T ai, T af, T ag, T ao, T c_prev) {
  LstmGates<T> s;
  s.i = fm::sigmoid(ai);
  s.f = fm::sigmoid(af);
  s.g = fm::tanh(ag);
  s.o = fm::sigmoid(ao);
  s.c = s.f * c_prev + s.i * s.g;
  s.h = s.o * fm::tanh(s.c);
  return s;
}

template <typename T>
struct LstmGrads {
  T di, df, dg, do_, dc_prev;
};

// dh, dc: gradients reaching h and c of this step; returns the pre-activation gradients.
template <typename T>
RECFAST_HD RECFAST_INLINE LstmGrads<T> lstm_backward(T dh, T dc, T c_prev, T i, T f, T g, T o,
                                                     T c) {
  LstmGrads<T> d;
  const T tc = fm::tanh(c);
  const T dct = dc + dh * o * (T(1) - tc * tc);
  d.di = dct * g * i * (T(1) - i);
  d.df = dct * c_prev * f * (T(1) - f);
  d.dg = dct * i * (T(1) - g * g);
  d.do_ = dh * tc * o * (T(1) - o);
  d.dc_prev = dct * f;
  return d;
}

}  // namespace recfast
