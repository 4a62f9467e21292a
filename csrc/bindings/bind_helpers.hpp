// The one helper set of the pybind11 bindings (csrc/bindings/<device>/*_bind.cpp).
//
// Array arguments are bound as py::array / std::optional<py::array> (None): pybind11 only checks
// that they are ndarrays and never converts them, and each function has one overload, which
// dispatches on the dtype of its first array (float_dtype / index_dtype). The helpers below then
// check every array: the exact dtype (never a cast: float64 into a float32 kernel, int64 indices
// into int32 ones, or a byte-swapped copy), C-contiguity, rank and shape, writeable outputs. A
// wrong type, dtype or layout raises TypeError; a wrong shape, value or index ValueError; each
// message names the argument, what was expected and what came.
//
// Why not py::array_t<T, c_style> with .noconvert(): its caster calls PyArray_FromAny on every
// array even when nothing needs converting, and float/double overloads make pybind11 try each
// signature in turn; for a 17-argument call on tiny shapes that was most of the call's time.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "recfast/activation.hpp"
#include "recfast/common.hpp"
#include "recfast/half.hpp"
#include "recfast/rnn_cells.hpp"

namespace recfast {

namespace py = pybind11;

namespace bind {

using OptArray = std::optional<py::array>;

// ------------------------------------------------------------------------------------ threads
// The cores this process may run on (libgomp's omp_get_num_procs honours the affinity mask).
inline int usable_cores() {
#ifdef _OPENMP
  return std::max(1, omp_get_num_procs());
#else
  return std::max(1u, std::thread::hardware_concurrency());
#endif
}

// A thread count from Python: >= 1 (ValueError), clamped to the usable cores. A count such as
// 10**6 or 2**31 - 1 reached libgomp unchecked before and made it crash or abort allocating the
// threads' stacks; Python clamps too (recfast/_threads.py), this covers direct callers.
inline int threads(int n) {
  RECFAST_CHECK(n >= 1, "num_threads must be >= 1, got " + std::to_string(n));
  static const int cores = usable_cores();
  return n < cores ? n : cores;
}

// ------------------------------------------------------------------------------------ dtypes
template <typename T>
struct DtypeName;
template <>
struct DtypeName<float> {
  static constexpr const char* value = "float32";
};
template <>
struct DtypeName<double> {
  static constexpr const char* value = "float64";
};
template <>
struct DtypeName<uint8_t> {
  static constexpr const char* value = "uint8";
};
template <>
struct DtypeName<int32_t> {
  static constexpr const char* value = "int32";
};
template <>
struct DtypeName<int64_t> {
  static constexpr const char* value = "int64";
};

template <>
struct DtypeName<Half> {
  static constexpr const char* value = "float16";
};

// NumPy's descriptor of T, looked up once (the builtin descriptors live as long as NumPy).
template <typename T>
PyObject* dtype_of() {
  static PyObject* const d = py::dtype::of<T>().release().ptr();
  return d;
}
template <>
inline PyObject* dtype_of<Half>() {  // float16 storage: no C++ type of its own in pybind11
  static PyObject* const d = py::dtype("float16").release().ptr();
  return d;
}

// True when a's dtype is exactly T in native byte order (int64 and longlong count as the same).
template <typename T>
bool has_dtype(const py::array& a) {
  PyObject* descr = py::detail::array_proxy(a.ptr())->descr;
  return descr == dtype_of<T>() ||
         py::detail::npy_api::get().PyArray_EquivTypes_(descr, dtype_of<T>());
}

inline std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

inline std::string tuple_str(const py::ssize_t* v, py::ssize_t n) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < n; ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + (n == 1 ? ",)" : ")");
}
inline std::string shape_str(const py::array& a) { return tuple_str(a.shape(), a.ndim()); }

[[noreturn]] inline void type_error(const std::string& msg) {
  throw py::type_error("recfast: " + msg);
}

// Calls f(T{}) with T = float or double, the dtype of `a` (the call's first floating array).
template <typename F>
decltype(auto) float_dtype(const py::array& a, const char* name, F&& f) {
  if (has_dtype<float>(a)) return f(float{});
  if (has_dtype<double>(a)) return f(double{});
  type_error(std::string(name) + " must have dtype float32 or float64, got " + dtype_str(a));
}

// Calls f(I{}) with I = int32_t or int64_t, the dtype of the index array `a`.
template <typename F>
decltype(auto) index_dtype(const py::array& a, const char* name, F&& f) {
  if (has_dtype<int32_t>(a)) return f(int32_t{});
  if (has_dtype<int64_t>(a)) return f(int64_t{});
  type_error(std::string(name) + " must have dtype int32 or int64, got " + dtype_str(a));
}

// ------------------------------------------------------------------------------------ shapes
// An expected shape: every extent given, or only the rank (any extents, described by `label`).
class Shape {
 public:
  Shape(std::initializer_list<int64_t> dims) : rank_(static_cast<int>(dims.size())) {
    if (rank_ > kMaxRank) throw std::logic_error("recfast: Shape takes at most 4 extents");
    int i = 0;
    for (int64_t d : dims) dims_[i++] = d;
  }
  static Shape rank(int n, const char* label) {
    Shape s{};
    s.rank_ = n;
    s.label_ = label;
    return s;
  }
  bool matches(const py::array& a) const {
    if (a.ndim() != rank_) return false;
    if (label_) return true;
    for (int i = 0; i < rank_; ++i)
      if (a.shape(i) != dims_[i]) return false;
    return true;
  }
  std::string str() const {
    if (label_) return "be " + std::to_string(rank_) + "-D " + label_;
    std::string s = "have shape (";
    for (int i = 0; i < rank_; ++i) s += (i ? ", " : "") + std::to_string(dims_[i]);
    return s + (rank_ == 1 ? ",)" : ")");
  }

 private:
  static constexpr int kMaxRank = 4;
  int rank_ = 0;
  int64_t dims_[kMaxRank] = {};
  const char* label_ = nullptr;
};

// --------------------------------------------------------------------------- array arguments
// Checks `a` (called `name`): dtype T, C-contiguous, `shape`; returns it for reading.
template <typename T>
const T* in(const py::array& a, const char* name, const Shape& shape) {
  if (!has_dtype<T>(a))
    type_error(std::string(name) + " must have dtype " + DtypeName<T>::value + ", got " +
               dtype_str(a));
  if (!py::detail::check_flags(a.ptr(), py::array::c_style))
    type_error(std::string(name) + " must be C-contiguous, got shape " + shape_str(a) +
               " with strides " + tuple_str(a.strides(), a.ndim()));
  RECFAST_CHECK(shape.matches(a),
                std::string(name) + " must " + shape.str() + ", got shape " + shape_str(a));
  return static_cast<const T*>(a.data());
}

// The same, for an output: also writeable.
template <typename T>
T* out(const py::array& a, const char* name, const Shape& shape) {
  const T* p = in<T>(a, name, shape);
  RECFAST_CHECK(a.writeable(), std::string(name) + " must be writeable");
  return const_cast<T*>(p);
}

// Optional arrays: nullptr for None.
template <typename T>
const T* in(const OptArray& a, const char* name, const Shape& shape) {
  return a ? in<T>(*a, name, shape) : nullptr;
}

template <typename T>
T* out(const OptArray& a, const char* name, const Shape& shape) {
  return a ? out<T>(*a, name, shape) : nullptr;
}

// ------------------------------------------------------------------------------------ values
// Every x[j] (j < n) in [0, hi), else ValueError naming `name`, `range` (default "[0, hi)") and the
// first entry outside. No Python calls: runs with the GIL released too.
template <typename I>
void check_range(const I* x, int64_t n, int64_t hi, const char* name, const char* range = nullptr) {
  bool ok = true;
  for (int64_t j = 0; j < n; ++j) ok &= (x[j] >= 0) & (int64_t(x[j]) < hi);
  if (ok) return;
  // Bounded: another thread may have rewritten the bad entry back into range meanwhile.
  int64_t j = 0;
  I v = 0;
  for (; j < n; ++j) {
    v = x[j];
    if (!(v >= 0 && int64_t(v) < hi)) break;
  }
  const std::string where =
      j < n ? ", got " + std::to_string(int64_t(v)) + " at position " + std::to_string(j)
            : " (an entry outside it changed while being read)";
  RECFAST_CHECK(false, std::string(name) + " must lie in " +
                           (range ? std::string(range) : "[0, " + std::to_string(hi) + ")") +
                           where);
}

// Enum codes from Python: the valid range comes from the enum's name table (E::count entries).
template <typename E, typename Entry, size_t K>
E enum_code(int code, const Entry (&table)[K], const char* what) {
  if (code >= 0 && code < static_cast<int>(E::count)) return static_cast<E>(code);
  std::string names;
  for (size_t i = 0; i < K; ++i) names += (i ? ", " : "") + std::to_string(i) + " " + table[i].name;
  RECFAST_CHECK(
      false, std::string(what) + " code must be one of " + names + "; got " + std::to_string(code));
  return E::count;  // not reached
}

inline Act act_code(int code) { return enum_code<Act>(code, kActNames, "activation"); }
inline Cell cell_code(int code) { return enum_code<Cell>(code, kCellNames, "cell"); }

// {"activation": {"identity": 0, ...}, "cell": {"rnn": 0, ...}}: recfast._cpu.codes().
inline py::dict codes() {
  py::dict act, cell, all;
  for (const auto& e : kActNames) act[e.name] = static_cast<int>(e.code);
  for (const auto& e : kCellNames) cell[e.name] = static_cast<int>(e.code);
  all["activation"] = act;
  all["cell"] = cell;
  return all;
}

}  // namespace bind
}  // namespace recfast
