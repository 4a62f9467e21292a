// pybind11 glue for the implicit-feedback kernels (top-k, iALS half-sweep, BPR epoch): check the
// arrays with the GIL held, range-check the indices, release the GIL for the kernel. Python
// validates first (recfast/implicit.py); these checks repeat the cheap ones for direct callers.
#include <cstdint>
#include <optional>
#include <string>

#include "../bind_helpers.hpp"
#include "recfast/implicit.hpp"

namespace recfast {
namespace {

using bind::in;
using bind::OptArray;
using bind::out;
using bind::Shape;

// CSR structure: indptr (n_rows + 1,) int64 rising from 0 to nnz; returns nnz.
int64_t check_indptr(const int64_t* p, int64_t n_rows, const char* name) {
  RECFAST_CHECK(p[0] == 0, std::string(name) + " must start at 0");
  for (int64_t r = 0; r < n_rows; ++r)
    RECFAST_CHECK(p[r] <= p[r + 1], std::string(name) + " must not decrease");
  return p[n_rows];
}

template <typename T, typename I>
void topk_py(const py::array& Q, const py::array& V, const OptArray& bias, const OptArray& cand,
             const OptArray& banned, const OptArray& ex_indptr, const OptArray& ex_indices,
             int64_t n, const py::array& out_items, const py::array& out_scores, int num_threads) {
  TopkArgs<T, I> a;
  a.num_threads = bind::threads(num_threads);
  a.Q = in<T>(Q, "user_factors", Shape::rank(2, "(m, k)"));
  a.m = Q.shape(0);
  a.k = Q.shape(1);
  a.V = in<T>(V, "item_factors", Shape::rank(2, "(n_items, k)"));
  RECFAST_CHECK(V.shape(1) == a.k, "user_factors and item_factors must have the same k, got " +
                                       bind::shape_str(Q) + " and " + bind::shape_str(V));
  a.n_items = V.shape(0);
  RECFAST_CHECK(n >= 1, "n must be >= 1, got " + std::to_string(n));
  a.n = n;
  a.bias = in<T>(bias, "item_bias", {a.n_items});
  if (cand) {
    a.cand = in<int64_t>(*cand, "items", Shape::rank(1, "(n_candidates,)"));
    a.n_cand = cand->shape(0);
  }
  a.banned = in<uint8_t>(banned, "banned", {a.n_items});
  RECFAST_CHECK(!ex_indptr == !ex_indices, "give both exclude_indptr and exclude_indices");
  int64_t ex_nnz = 0;
  if (ex_indptr) {
    a.ex_indptr = in<int64_t>(*ex_indptr, "exclude_indptr", {a.m + 1});
    ex_nnz = check_indptr(a.ex_indptr, a.m, "exclude_indptr");
    a.ex_indices = in<I>(*ex_indices, "exclude_indices", {ex_nnz});
  }
  a.out_items = out<int64_t>(out_items, "out_items", {a.m, n});
  a.out_scores = out<T>(out_scores, "out_scores", {a.m, n});
  py::gil_scoped_release nogil;
  if (a.cand) bind::check_range(a.cand, a.n_cand, a.n_items, "items");
  if (a.ex_indices) bind::check_range(a.ex_indices, ex_nnz, a.n_items, "exclude_indices");
  topk(a);
}

template <typename T, typename I>
int64_t als_py(const py::array& indptr, const py::array& indices, const py::array& conf,
               const py::array& X, const py::array& Y, const OptArray& gram, const OptArray& rows,
               double reg, int cg_steps, int num_threads) {
  AlsArgs<T, I> a;
  a.num_threads = bind::threads(num_threads);
  a.X = out<T>(X, "X", Shape::rank(2, "(n_rows, k)"));
  a.Y = in<T>(Y, "Y", Shape::rank(2, "(n_cols, k)"));
  RECFAST_CHECK(X.shape(1) == Y.shape(1), "X and Y must have the same k, got " +
                                              bind::shape_str(X) + " and " + bind::shape_str(Y));
  a.n_rows = X.shape(0);
  a.n_cols = Y.shape(0);
  a.k = X.shape(1);
  a.gram = in<T>(gram, "gram", {a.k, a.k});
  a.indptr = in<int64_t>(indptr, "indptr", {a.n_rows + 1});
  const int64_t nnz = check_indptr(a.indptr, a.n_rows, "indptr");
  a.indices = in<I>(indices, "indices", {nnz});
  a.conf = in<T>(conf, "confidence", {nnz});
  if (rows) {
    a.rows = in<int64_t>(*rows, "rows", Shape::rank(1, "(n_solve,)"));
    a.n_solve = rows->shape(0);
  }
  RECFAST_CHECK(reg >= 0, "regularization must be >= 0");
  RECFAST_CHECK(cg_steps >= 0, "cg_steps must be >= 0");
  a.regularization = reg;
  a.cg_steps = cg_steps;
  int64_t bad = 0;
  a.bad_index = &bad;
  py::gil_scoped_release nogil;
  bind::check_range(a.indices, nnz, a.n_cols, "indices");
  if (a.rows) bind::check_range(a.rows, a.n_solve, a.n_rows, "rows");
  const int64_t failed = als_half_sweep(a);
  RECFAST_CHECK(bad == 0, "indices or rows changed while the kernel ran: " + std::to_string(bad) +
                              " entries out of range were skipped");
  return failed;
}

template <typename T, typename I>
py::tuple bpr_py(const py::array& indptr, const py::array& indices, const py::array& row_of,
                 const py::array& U, const py::array& V, const OptArray& bias, int64_t n_samples,
                 double lr, double reg, uint64_t seed, bool popularity, int num_threads) {
  BprArgs<T, I> a;
  a.num_threads = bind::threads(num_threads);
  a.U = out<T>(U, "user_factors", Shape::rank(2, "(n_users, k)"));
  a.V = out<T>(V, "item_factors", Shape::rank(2, "(n_items, k)"));
  RECFAST_CHECK(U.shape(1) == V.shape(1), "user_factors and item_factors must have the same k");
  a.n_users = U.shape(0);
  a.n_items = V.shape(0);
  a.k = U.shape(1);
  a.indptr = in<int64_t>(indptr, "indptr", {a.n_users + 1});
  a.nnz = check_indptr(a.indptr, a.n_users, "indptr");
  a.indices = in<I>(indices, "indices", {a.nnz});
  a.row_of = in<I>(row_of, "row_of", {a.nnz});
  a.bias = out<T>(bias, "item_bias", {a.n_items});
  RECFAST_CHECK(n_samples >= 0, "n_samples must be >= 0");
  RECFAST_CHECK(a.nnz > 0 || n_samples == 0, "BPR needs at least one positive");
  a.n_samples = n_samples;
  a.learning_rate = lr;
  a.regularization = reg;
  a.seed = seed;
  a.popularity = popularity;
  BprResult r;
  {
    py::gil_scoped_release nogil;
    bind::check_range(a.indices, a.nnz, a.n_items, "indices");
    bind::check_range(a.row_of, a.nnz, a.n_users, "row_of");
    r = bpr_epoch(a);
  }
  RECFAST_CHECK(r.bad_index == 0, "indices or row_of changed while the kernel ran");
  return py::make_tuple(r.loss, r.correct, r.updated, r.skipped);
}

}  // namespace

void bind_implicit(py::module_& m) {
  m.def(
      "topk",
      [](const py::array& Q, const py::array& V, const OptArray& bias, const OptArray& cand,
         const OptArray& banned, const OptArray& ex_indptr, const OptArray& ex_indices, int64_t n,
         const py::array& out_items, const py::array& out_scores, int num_threads) {
        return bind::float_dtype(Q, "user_factors", [&](auto t) {
          using T = decltype(t);
          if (ex_indices && bind::has_dtype<int64_t>(*ex_indices))
            return topk_py<T, int64_t>(Q, V, bias, cand, banned, ex_indptr, ex_indices, n,
                                       out_items, out_scores, num_threads);
          return topk_py<T, int32_t>(Q, V, bias, cand, banned, ex_indptr, ex_indices, n, out_items,
                                     out_scores, num_threads);
        });
      },
      py::arg("user_factors").noconvert(), py::arg("item_factors").noconvert(),
      py::arg("item_bias").noconvert() = py::none(), py::arg("items").noconvert() = py::none(),
      py::arg("banned").noconvert() = py::none(),
      py::arg("exclude_indptr").noconvert() = py::none(),
      py::arg("exclude_indices").noconvert() = py::none(), py::arg("n"),
      py::arg("out_items").noconvert(), py::arg("out_scores").noconvert(),
      py::arg("num_threads") = 1);
  m.def(
      "als_half_sweep",
      [](const py::array& indptr, const py::array& indices, const py::array& conf,
         const py::array& X, const py::array& Y, const OptArray& gram, const OptArray& rows,
         double reg, int cg_steps, int num_threads) {
        return bind::float_dtype(conf, "confidence", [&](auto t) {
          return bind::index_dtype(indices, "indices", [&](auto i) {
            return als_py<decltype(t), decltype(i)>(indptr, indices, conf, X, Y, gram, rows, reg,
                                                    cg_steps, num_threads);
          });
        });
      },
      py::arg("indptr").noconvert(), py::arg("indices").noconvert(),
      py::arg("confidence").noconvert(), py::arg("X").noconvert(), py::arg("Y").noconvert(),
      py::arg("gram").noconvert() = py::none(), py::arg("rows").noconvert() = py::none(),
      py::arg("regularization"), py::arg("cg_steps") = 3, py::arg("num_threads") = 1);
  m.def(
      "bpr_epoch",
      [](const py::array& indptr, const py::array& indices, const py::array& row_of,
         const py::array& U, const py::array& V, const OptArray& bias, int64_t n_samples, double lr,
         double reg, uint64_t seed, bool popularity, int num_threads) {
        return bind::float_dtype(U, "user_factors", [&](auto t) {
          return bind::index_dtype(indices, "indices", [&](auto i) {
            return bpr_py<decltype(t), decltype(i)>(indptr, indices, row_of, U, V, bias, n_samples,
                                                    lr, reg, seed, popularity, num_threads);
          });
        });
      },
      py::arg("indptr").noconvert(), py::arg("indices").noconvert(), py::arg("row_of").noconvert(),
      py::arg("user_factors").noconvert(), py::arg("item_factors").noconvert(),
      py::arg("item_bias").noconvert() = py::none(), py::arg("n_samples"), py::arg("learning_rate"),
      py::arg("regularization"), py::arg("seed"), py::arg("popularity") = false,
      py::arg("num_threads") = 1);
}

}  // namespace recfast
