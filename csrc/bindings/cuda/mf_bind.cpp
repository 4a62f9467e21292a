// pybind11 glue for the CUDA SGD-MF launcher: device pointers as integers (checked in Python by
// recfast/_backends/_device.py), sizes checked again here, the GIL released for the epoch.
#include <cstdint>
#include <string>

#include "../bind_helpers.hpp"
#include "recfast/cuda_launch.hpp"

namespace recfast {
namespace {

template <typename T>
T* ptr(uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

template <typename T, typename I, typename S = T>
double epoch_py(uintptr_t rows, uintptr_t cols, uintptr_t values, int64_t nnz, uintptr_t U,
                uintptr_t V, int64_t n_users, int64_t n_items, int64_t k, uintptr_t ub,
                uintptr_t ib, uintptr_t ua, uintptr_t ia, uintptr_t order, int64_t n_order,
                uintptr_t block_ptr, int64_t n_blocks, double lr, double reg, double breg,
                double mu, uintptr_t work, int64_t work_size, uintptr_t stream) {
  RECFAST_CHECK(nnz >= 0 && n_users >= 0 && n_items >= 0 && k >= 0, "sizes must be >= 0");
  RECFAST_CHECK(U && V && (nnz == 0 || (rows && cols && values)), "null device pointer");
  RECFAST_CHECK(!ub == !ib, "give both user_bias and item_bias, or neither");
  RECFAST_CHECK(!ua == !ia, "give both user_accum and item_accum, or neither");
  RECFAST_CHECK(!(order && block_ptr), "order and block_ptr are exclusive");
  RECFAST_CHECK(!block_ptr || (n_blocks >= 1 && n_blocks <= 4096), "n_blocks must be in [1, 4096]");
  RECFAST_CHECK(work && work_size >= cuda::mf_work_size(block_ptr ? n_blocks : 0),
                "workspace too small: need " +
                    std::to_string(cuda::mf_work_size(block_ptr ? n_blocks : 0)) + " doubles");
  SgdMfArgs<T, I, S> a;
  a.rows = ptr<const I>(rows);
  a.cols = ptr<const I>(cols);
  a.values = ptr<const T>(values);
  a.nnz = nnz;
  a.U = ptr<S>(U);
  a.V = ptr<S>(V);
  a.k = k;
  a.n_users = n_users;
  a.n_items = n_items;
  a.user_bias = ptr<T>(ub);
  a.item_bias = ptr<T>(ib);
  a.user_accum = ptr<T>(ua);
  a.item_accum = ptr<T>(ia);
  a.order = ptr<const int64_t>(order);
  a.n_order = order ? n_order : 0;
  a.block_ptr = ptr<const int64_t>(block_ptr);
  a.n_blocks = block_ptr ? n_blocks : 0;
  int64_t skipped = 0;
  a.skipped = &skipped;
  SgdMfParams p;
  p.learning_rate = lr;
  p.regularization = reg;
  p.bias_regularization = breg;
  p.global_mean = mu;
  cuda::Launch l;
  l.stream = reinterpret_cast<void*>(stream);
  double sse;
  {
    py::gil_scoped_release nogil;
    sse = cuda::sgd_mf_epoch(a, p, ptr<double>(work), l);
  }
  RECFAST_CHECK(skipped == 0,
                "rows, cols or order changed while the kernel ran: " + std::to_string(skipped) +
                    " ratings had indices out of range and were skipped");
  return sse;
}

}  // namespace

void bind_cuda_mf(py::module_& m) {
  m.def("mf_work_size", &cuda::mf_work_size, py::arg("n_blocks"),
        "Doubles of device workspace sgd_mf_epoch needs.");
  m.def(
      "sgd_mf_epoch",
      [](const std::string& dtype, const std::string& index, uintptr_t rows, uintptr_t cols,
         uintptr_t values, int64_t nnz, uintptr_t U, uintptr_t V, int64_t n_users, int64_t n_items,
         int64_t k, uintptr_t ub, uintptr_t ib, uintptr_t ua, uintptr_t ia, uintptr_t order,
         int64_t n_order, uintptr_t block_ptr, int64_t n_blocks, double lr, double reg, double breg,
         double mu, uintptr_t work, int64_t work_size, uintptr_t stream) {
        const bool i32 = index == "int32";
        RECFAST_CHECK(i32 || index == "int64", "index dtype must be int32 or int64, got " + index);
        if (dtype == "float16")  // the factors' storage; values, biases, accumulators float32
          return i32 ? epoch_py<float, int32_t, Half>(rows, cols, values, nnz, U, V, n_users,
                                                      n_items, k, ub, ib, ua, ia, order, n_order,
                                                      block_ptr, n_blocks, lr, reg, breg, mu, work,
                                                      work_size, stream)
                     : epoch_py<float, int64_t, Half>(rows, cols, values, nnz, U, V, n_users,
                                                      n_items, k, ub, ib, ua, ia, order, n_order,
                                                      block_ptr, n_blocks, lr, reg, breg, mu, work,
                                                      work_size, stream);
        if (dtype == "float32")
          return i32 ? epoch_py<float, int32_t>(rows, cols, values, nnz, U, V, n_users, n_items, k,
                                                ub, ib, ua, ia, order, n_order, block_ptr, n_blocks,
                                                lr, reg, breg, mu, work, work_size, stream)
                     : epoch_py<float, int64_t>(rows, cols, values, nnz, U, V, n_users, n_items, k,
                                                ub, ib, ua, ia, order, n_order, block_ptr, n_blocks,
                                                lr, reg, breg, mu, work, work_size, stream);
        RECFAST_CHECK(dtype == "float64",
                      "dtype must be float16, float32 or float64, got " + dtype);
        return i32 ? epoch_py<double, int32_t>(rows, cols, values, nnz, U, V, n_users, n_items, k,
                                               ub, ib, ua, ia, order, n_order, block_ptr, n_blocks,
                                               lr, reg, breg, mu, work, work_size, stream)
                   : epoch_py<double, int64_t>(rows, cols, values, nnz, U, V, n_users, n_items, k,
                                               ub, ib, ua, ia, order, n_order, block_ptr, n_blocks,
                                               lr, reg, breg, mu, work, work_size, stream);
      },
      "One SGD epoch on device arrays (pointers); returns the loss. See recfast.sgd_mf_epoch.");
}

}  // namespace recfast
