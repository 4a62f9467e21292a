// pybind11 glue for the SGD-MF kernels: take pointers with the GIL held, release it for the kernel.
// Python validates first (recfast/_validate.py); these checks repeat the cheap ones because
// recfast._cpu can be imported directly, and a bad index must never reach the kernel. Argument
// checks: ../bind_helpers.hpp.
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>

#include "../bind_helpers.hpp"
#include "recfast/mf.hpp"

namespace recfast {
namespace {

using bind::in;
using bind::OptArray;
using bind::out;
using bind::Shape;

// rows, cols (nnz,) of index type I and values (nnz,) of T; returns nnz.
template <typename T, typename I>
int64_t check_ratings(const py::array& rows, const py::array& cols, const py::array& values) {
  in<I>(rows, "rows", Shape::rank(1, "(nnz,)"));
  const int64_t nnz = rows.shape(0);
  in<I>(cols, "cols", {nnz});
  in<T>(values, "values", {nnz});
  return nnz;
}

template <typename T, typename I, typename S = T>
double sgd_mf_epoch_py(const py::array& rows, const py::array& cols, const py::array& values,
                       const py::array& U, const py::array& V, const OptArray& user_bias,
                       const OptArray& item_bias, const OptArray& user_accum,
                       const OptArray& item_accum, const OptArray& order, const OptArray& block_ptr,
                       int64_t n_blocks, double learning_rate, double regularization,
                       double bias_regularization, double global_mean, int num_threads) {
  num_threads = bind::threads(num_threads);
  const int64_t nnz = check_ratings<T, I>(rows, cols, values);
  SgdMfArgs<T, I, S> a;
  a.U = out<S>(U, "user_factors", Shape::rank(2, "(n_users, k)"));
  a.V = out<S>(V, "item_factors", Shape::rank(2, "(n_items, k)"));
  RECFAST_CHECK(U.shape(1) == V.shape(1),
                "user_factors and item_factors must have the same number of columns, got " +
                    bind::shape_str(U) + " and " + bind::shape_str(V));
  a.rows = static_cast<const I*>(rows.data());
  a.cols = static_cast<const I*>(cols.data());
  a.values = static_cast<const T*>(values.data());
  a.nnz = nnz;
  a.k = U.shape(1);
  const int64_t n_users = U.shape(0), n_items = V.shape(0);
  a.user_bias = out<T>(user_bias, "user_bias", {n_users});
  a.item_bias = out<T>(item_bias, "item_bias", {n_items});
  RECFAST_CHECK(!a.user_bias == !a.item_bias, "give both user_bias and item_bias, or neither");
  a.user_accum = out<T>(user_accum, "user_accum", {n_users});
  a.item_accum = out<T>(item_accum, "item_accum", {n_items});
  RECFAST_CHECK(!a.user_accum == !a.item_accum, "give both user_accum and item_accum, or neither");
  RECFAST_CHECK(num_threads >= 1, "num_threads must be >= 1");
  if (order) {
    RECFAST_CHECK(!block_ptr, "order and block_ptr are exclusive");
    a.order = in<int64_t>(*order, "order", Shape::rank(1, "(n_order,)"));
    a.n_order = order->shape(0);
  }
  if (block_ptr) {
    RECFAST_CHECK(n_blocks >= 1, "n_blocks must be >= 1");
    const int64_t* bp = in<int64_t>(*block_ptr, "block_ptr", {n_blocks * n_blocks + 1});
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
  a.n_users = n_users;
  a.n_items = n_items;
  int64_t skipped = 0;
  a.skipped = &skipped;
  py::gil_scoped_release nogil;
  // Checked here so that bad input modifies nothing; the kernel checks again as it reads.
  bind::check_range(a.rows, nnz, n_users, "rows");
  bind::check_range(a.cols, nnz, n_items, "cols");
  if (a.order) bind::check_range(a.order, a.n_order, nnz, "order");
  const double sse = sgd_mf_epoch(a, p);
  RECFAST_CHECK(skipped == 0,
                "rows, cols or order changed while the kernel ran: " + std::to_string(skipped) +
                    " ratings had indices out of range and were skipped");
  return sse;
}

template <typename T, typename I>
py::tuple block_layout_py(const py::array& rows, const py::array& cols, const py::array& values,
                          int64_t n_users, int64_t n_items, int64_t n_blocks,
                          std::optional<uint64_t> seed, int num_threads) {
  num_threads = bind::threads(num_threads);
  const int64_t nnz = check_ratings<T, I>(rows, cols, values);
  RECFAST_CHECK(n_users >= 1 && n_items >= 1 && n_blocks >= 1,
                "n_users, n_items and n_blocks must be >= 1");
  RECFAST_CHECK(n_blocks <= 4096, "n_blocks must be <= 4096");
  RECFAST_CHECK(num_threads >= 1, "num_threads must be >= 1");
  py::array_t<I> rows_out(nnz), cols_out(nnz);
  py::array_t<T> values_out(nnz);
  py::array_t<int64_t> block_ptr(n_blocks * n_blocks + 1);
  LayoutArgs<T, I> a{static_cast<const I*>(rows.data()),
                     static_cast<const I*>(cols.data()),
                     static_cast<const T*>(values.data()),
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
    bind::check_range(a.rows, nnz, n_users, "rows");
    bind::check_range(a.cols, nnz, n_items, "cols");
    const int64_t bad = mf_block_layout(a);  // checks its private copy of the indices again
    RECFAST_CHECK(bad == 0, "rows or cols changed while the kernel ran: entries out of range");
  }
  return py::make_tuple(rows_out, cols_out, values_out, block_ptr);
}

// Calls f(T{}, I{}) for the dtypes of values (float32/float64) and rows (int32/int64).
template <typename F>
decltype(auto) mf_dtypes(const py::array& rows, const py::array& values, F&& f) {
  return bind::float_dtype(values, "values", [&](auto t) {
    return bind::index_dtype(rows, "rows", [&](auto i) { return f(t, i); });
  });
}

}  // namespace

void bind_sgd_mf(py::module_& m) {
  m.def(
      "sgd_mf_epoch",
      [](const py::array& rows, const py::array& cols, const py::array& values, const py::array& U,
         const py::array& V, const OptArray& user_bias, const OptArray& item_bias,
         const OptArray& user_accum, const OptArray& item_accum, const OptArray& order,
         const OptArray& block_ptr, int64_t n_blocks, double learning_rate, double regularization,
         double bias_regularization, double global_mean, int num_threads) {
        return mf_dtypes(rows, values, [&](auto t, auto i) {
          using T = decltype(t);
          using I = decltype(i);
          if constexpr (std::is_same<T, float>::value) {
            if (bind::has_dtype<Half>(U))  // float16 storage, float32 arithmetic
              return sgd_mf_epoch_py<T, I, Half>(rows, cols, values, U, V, user_bias, item_bias,
                                                 user_accum, item_accum, order, block_ptr, n_blocks,
                                                 learning_rate, regularization, bias_regularization,
                                                 global_mean, num_threads);
          }
          return sgd_mf_epoch_py<T, I>(rows, cols, values, U, V, user_bias, item_bias, user_accum,
                                       item_accum, order, block_ptr, n_blocks, learning_rate,
                                       regularization, bias_regularization, global_mean,
                                       num_threads);
        });
      },
      py::arg("rows").noconvert(), py::arg("cols").noconvert(), py::arg("values").noconvert(),
      py::arg("user_factors").noconvert(), py::arg("item_factors").noconvert(),
      py::arg("user_bias").noconvert() = py::none(), py::arg("item_bias").noconvert() = py::none(),
      py::arg("user_accum").noconvert() = py::none(),
      py::arg("item_accum").noconvert() = py::none(), py::arg("order").noconvert() = py::none(),
      py::arg("block_ptr").noconvert() = py::none(), py::arg("n_blocks") = 0,
      py::arg("learning_rate"), py::arg("regularization"), py::arg("bias_regularization"),
      py::arg("global_mean"), py::arg("num_threads") = 1);
  // The float16 conversions of the factor storage, in the instruction-set copy the kernels run
  // (recfast/half.hpp's steps, or F16C), exposed so that the tests can check them against NumPy.
  m.def(
      "float_to_half",
      [](const py::array& x) {
        const float* src = in<float>(x, "x", Shape::rank(1, "(n,)"));
        const int64_t n = x.shape(0);
        py::array_t<uint16_t> bits(n);
        uint16_t* dst = bits.mutable_data();
        {
          py::gil_scoped_release nogil;
          float_to_half_n(src, reinterpret_cast<Half*>(dst), n);
        }
        return py::array(bits.attr("view")(py::dtype("float16")));
      },
      py::arg("x").noconvert(), "float32 (n,) -> float16 (n,), rounded to nearest even");
  m.def(
      "half_to_float",
      [](const py::array& x) {
        const Half* src = in<Half>(x, "x", Shape::rank(1, "(n,)"));
        const int64_t n = x.shape(0);
        py::array_t<float> outa(n);
        float* dst = outa.mutable_data();
        {
          py::gil_scoped_release nogil;
          half_to_float_n(src, dst, n);
        }
        return outa;
      },
      py::arg("x").noconvert(), "float16 (n,) -> float32 (n,), exact");
  m.def("sgd_mf_last_core_share", &sgd_mf_last_core_share,
        "Share of its core the least-served thread got in this thread's last block-scheduled "
        "sgd_mf_epoch (about 1 when quiet, 0.5 beside another process; 1 after one thread).");
  m.def(
      "mf_block_layout",
      [](const py::array& rows, const py::array& cols, const py::array& values, int64_t n_users,
         int64_t n_items, int64_t n_blocks, std::optional<uint64_t> seed, int num_threads) {
        return mf_dtypes(rows, values, [&](auto t, auto i) {
          return block_layout_py<decltype(t), decltype(i)>(rows, cols, values, n_users, n_items,
                                                           n_blocks, seed, num_threads);
        });
      },
      py::arg("rows").noconvert(), py::arg("cols").noconvert(), py::arg("values").noconvert(),
      py::arg("n_users"), py::arg("n_items"), py::arg("n_blocks"), py::arg("seed") = py::none(),
      py::arg("num_threads") = 1);
}

}  // namespace recfast
