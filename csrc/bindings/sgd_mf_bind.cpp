// pybind11 glue for the SGD-MF kernels: take pointers with the GIL held, release it for the kernel.
// Python validates first (recfast/_validate.py); these checks repeat the cheap ones because
// recfast._cpu can be imported directly, and a bad index must never reach the kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>
#include <string>

#include "recfast/sgd_mf.hpp"

namespace py = pybind11;

namespace recfast {
namespace {

template <typename T>
using CArr = py::array_t<T, py::array::c_style>;

template <typename A>
void check_len(const A& a, int64_t n, const char* name) {
  RECFAST_CHECK(a.ndim() == 1 && a.shape(0) == n,
                std::string(name) + " must have shape (" + std::to_string(n) + ",)");
}

template <typename I>
void check_range(const I* x, int64_t n, int64_t hi, const char* name) {
  bool ok = true;
  for (int64_t j = 0; j < n; ++j) ok &= (x[j] >= 0) & (int64_t(x[j]) < hi);
  RECFAST_CHECK(ok, std::string(name) + " has entries outside [0, " + std::to_string(hi) + ")");
}

template <typename T>
T* opt_row_vector(std::optional<CArr<T>>& a, int64_t n, const char* name) {
  if (!a) return nullptr;
  check_len(*a, n, name);
  return a->mutable_data();  // raises ValueError for a read-only array
}

template <typename T, typename I>
double sgd_mf_epoch_py(CArr<I> rows, CArr<I> cols, CArr<T> values, CArr<T> U, CArr<T> V,
                       std::optional<CArr<T>> user_bias, std::optional<CArr<T>> item_bias,
                       std::optional<CArr<T>> user_accum, std::optional<CArr<T>> item_accum,
                       std::optional<CArr<int64_t>> order, std::optional<CArr<int64_t>> block_ptr,
                       int64_t n_blocks, double learning_rate, double regularization,
                       double bias_regularization, double global_mean, int num_threads) {
  RECFAST_CHECK(U.ndim() == 2 && V.ndim() == 2 && U.shape(1) == V.shape(1),
                "user_factors and item_factors must be 2-D with the same number of columns");
  const int64_t nnz = rows.ndim() == 1 ? rows.shape(0) : -1;
  check_len(rows, nnz, "rows");
  check_len(cols, nnz, "cols");
  check_len(values, nnz, "values");
  SgdMfArgs<T, I> a;
  a.rows = rows.data();
  a.cols = cols.data();
  a.values = values.data();
  a.nnz = nnz;
  a.k = U.shape(1);
  const int64_t n_users = U.shape(0), n_items = V.shape(0);
  a.U = U.mutable_data();
  a.V = V.mutable_data();
  a.user_bias = opt_row_vector(user_bias, n_users, "user_bias");
  a.item_bias = opt_row_vector(item_bias, n_items, "item_bias");
  RECFAST_CHECK(!a.user_bias == !a.item_bias, "give both user_bias and item_bias, or neither");
  a.user_accum = opt_row_vector(user_accum, n_users, "user_accum");
  a.item_accum = opt_row_vector(item_accum, n_items, "item_accum");
  RECFAST_CHECK(!a.user_accum == !a.item_accum, "give both user_accum and item_accum, or neither");
  RECFAST_CHECK(num_threads >= 1, "num_threads must be >= 1");
  if (order) {
    RECFAST_CHECK(!block_ptr, "order and block_ptr are exclusive");
    RECFAST_CHECK(order->ndim() == 1, "order must be 1-D");
    a.order = order->data();
    a.n_order = order->shape(0);
  }
  if (block_ptr) {
    RECFAST_CHECK(n_blocks >= 1, "n_blocks must be >= 1");
    check_len(*block_ptr, n_blocks * n_blocks + 1, "block_ptr");
    const int64_t* bp = block_ptr->data();
    bool ok = bp[0] == 0 && bp[n_blocks * n_blocks] == nnz;
    for (int64_t b = 0; b < n_blocks * n_blocks; ++b) ok &= bp[b] <= bp[b + 1];
    RECFAST_CHECK(ok, "block_ptr must rise from 0 to nnz");
    a.block_ptr = bp;
    a.n_blocks = n_blocks;
  }
  SgdMfParams p;
  p.learning_rate = learning_rate;
  p.regularization = regularization;
  p.bias_regularization = bias_regularization;
  p.global_mean = global_mean;
  p.num_threads = num_threads;
  py::gil_scoped_release nogil;
  check_range(a.rows, nnz, n_users, "rows");
  check_range(a.cols, nnz, n_items, "cols");
  if (a.order) check_range(a.order, a.n_order, nnz, "order");
  return sgd_mf_epoch(a, p);
}

template <typename T, typename I>
void def_epoch(py::module_& m) {
  m.def("sgd_mf_epoch", &sgd_mf_epoch_py<T, I>, py::arg("rows").noconvert(),
        py::arg("cols").noconvert(), py::arg("values").noconvert(),
        py::arg("user_factors").noconvert(), py::arg("item_factors").noconvert(),
        py::arg("user_bias").noconvert() = py::none(),
        py::arg("item_bias").noconvert() = py::none(),
        py::arg("user_accum").noconvert() = py::none(),
        py::arg("item_accum").noconvert() = py::none(), py::arg("order").noconvert() = py::none(),
        py::arg("block_ptr").noconvert() = py::none(), py::arg("n_blocks") = 0,
        py::arg("learning_rate"), py::arg("regularization"), py::arg("bias_regularization"),
        py::arg("global_mean"), py::arg("num_threads") = 1);
}

template <typename T, typename I>
py::tuple block_layout_py(CArr<I> rows, CArr<I> cols, CArr<T> values, int64_t n_users,
                          int64_t n_items, int64_t n_blocks, std::optional<uint64_t> seed,
                          int num_threads) {
  const int64_t nnz = rows.ndim() == 1 ? rows.shape(0) : -1;
  check_len(rows, nnz, "rows");
  check_len(cols, nnz, "cols");
  check_len(values, nnz, "values");
  RECFAST_CHECK(n_users >= 1 && n_items >= 1 && n_blocks >= 1,
                "n_users, n_items and n_blocks must be >= 1");
  RECFAST_CHECK(n_blocks <= 4096, "n_blocks must be <= 4096");
  RECFAST_CHECK(num_threads >= 1, "num_threads must be >= 1");
  py::array_t<I> rows_out(nnz), cols_out(nnz);
  py::array_t<T> values_out(nnz);
  py::array_t<int64_t> block_ptr(n_blocks * n_blocks + 1);
  LayoutArgs<T, I> a{rows.data(),
                     cols.data(),
                     values.data(),
                     nnz,
                     n_users,
                     n_items,
                     n_blocks,
                     seed.has_value(),
                     seed.value_or(0),
                     rows_out.mutable_data(),
                     cols_out.mutable_data(),
                     values_out.mutable_data(),
                     block_ptr.mutable_data(),
                     num_threads};
  {
    py::gil_scoped_release nogil;
    check_range(a.rows, nnz, n_users, "rows");
    check_range(a.cols, nnz, n_items, "cols");
    mf_block_layout(a);
  }
  return py::make_tuple(rows_out, cols_out, values_out, block_ptr);
}

template <typename T, typename I>
void def_layout(py::module_& m) {
  m.def("mf_block_layout", &block_layout_py<T, I>, py::arg("rows").noconvert(),
        py::arg("cols").noconvert(), py::arg("values").noconvert(), py::arg("n_users"),
        py::arg("n_items"), py::arg("n_blocks"), py::arg("seed") = py::none(),
        py::arg("num_threads") = 1);
}

}  // namespace

void bind_sgd_mf(py::module_& m) {
  def_epoch<float, int32_t>(m);
  def_epoch<float, int64_t>(m);
  def_epoch<double, int32_t>(m);
  def_epoch<double, int64_t>(m);
  def_layout<float, int32_t>(m);
  def_layout<float, int64_t>(m);
  def_layout<double, int32_t>(m);
  def_layout<double, int64_t>(m);
}

}  // namespace recfast
