// Host entry points of recfast._cuda's kernels (csrc/cuda/*.cu). Plain C++: no CUDA or pybind11
// headers, so the bindings (csrc/bindings/cuda) compile with the host compiler alone. Every
// pointer is device memory the caller allocated (CuPy's pool or PyTorch's allocator); the
// launchers allocate nothing, launch on `stream` and check every launch (throwing
// std::runtime_error with CUDA's message). RECFAST_CUDA_SYNC=1 synchronizes after every launch.
#pragma once

#include <cstdint>
#include <string>

#include "recfast/conv2d.hpp"
#include "recfast/mf.hpp"

namespace recfast {
namespace cuda {

struct Launch {
  void* stream = nullptr;  // a cudaStream_t; null: the legacy default stream
};

// "" when a CUDA device is usable, else why not ("no CUDA device: ..."). Never throws.
std::string device_status();
int device_count();
std::string runtime_version();

// Device workspace of sgd_mf_epoch, in doubles: the loss, three counters (skipped ratings, bad
// rows/cols/order entries found by the pre-check; 64-bit integers) and one loss per block.
inline int64_t mf_work_size(int64_t n_blocks) { return 5 + n_blocks * n_blocks; }

// One SGD epoch on the device (Hogwild, or the FPSGD strata when a.block_ptr is set). Indices are
// range-checked on the device before any update (std::invalid_argument naming the array), and
// again as the kernel reads them (a.skipped counts ratings skipped then). Returns the loss; waits
// for the stream (the loss comes back to the host).
double sgd_mf_epoch(const SgdMfArgs<float, int32_t>& a, const SgdMfParams& p, double* work,
                    const Launch& l);
double sgd_mf_epoch(const SgdMfArgs<float, int64_t>& a, const SgdMfParams& p, double* work,
                    const Launch& l);
double sgd_mf_epoch(const SgdMfArgs<double, int32_t>& a, const SgdMfParams& p, double* work,
                    const Launch& l);
double sgd_mf_epoch(const SgdMfArgs<double, int64_t>& a, const SgdMfParams& p, double* work,
                    const Launch& l);
// float16 factor storage, float32 arithmetic (recfast/half.hpp's conversions).
double sgd_mf_epoch(const SgdMfArgs<float, int32_t, Half>& a, const SgdMfParams& p, double* work,
                    const Launch& l);
double sgd_mf_epoch(const SgdMfArgs<float, int64_t, Half>& a, const SgdMfParams& p, double* work,
                    const Launch& l);

// Dense epilogues (recfast/_kernels/dense.cuh); asynchronous on the stream.
void bias_activation(float* y, const float* b, int64_t n, int64_t h, int act, const Launch& l);
void bias_activation(double* y, const double* b, int64_t n, int64_t h, int act, const Launch& l);
void activation_backward(const float* g_out, const float* y, float* g_pre, int64_t total, int act,
                         const Launch& l);
void activation_backward(const double* g_out, const double* y, double* g_pre, int64_t total,
                         int act, const Launch& l);

// One fused recurrent step (recfast/_kernels/rnn.cuh) over N x H units; asynchronous.
struct RnnStepArgs {
  int cell = 0, act = 0;
  const void *a = nullptr, *u = nullptr, *b_ih = nullptr, *b_hh = nullptr;
  const int64_t* lengths = nullptr;
  int64_t t = 0;
  const void *h_prev = nullptr, *c_prev = nullptr;
  void *h_new = nullptr, *c_new = nullptr, *out_t = nullptr, *gates_t = nullptr;
  int64_t N = 0, H = 0;
};
void rnn_step_forward_f32(const RnnStepArgs& a, const Launch& l);
void rnn_step_forward_f64(const RnnStepArgs& a, const Launch& l);

// One BPTT step (recfast/_kernels/rnn.cuh, rnn_step_backward); asynchronous.
struct RnnStepBackArgs {
  int cell = 0, act = 0;
  const void* grad_out_t = nullptr;
  void* dh_base = nullptr;
  const void* dh_mat = nullptr;
  void* dc = nullptr;
  const void *h_prev = nullptr, *h = nullptr, *c_prev = nullptr, *c = nullptr;
  const void* gates_t = nullptr;
  const int64_t* lengths = nullptr;
  int64_t t = 0;
  void *gx_t = nullptr, *gh_t = nullptr;
  int64_t N = 0, H = 0;
};
void rnn_step_backward_f32(const RnnStepBackArgs& a, const Launch& l);
void rnn_step_backward_f64(const RnnStepBackArgs& a, const Launch& l);

// Direct NHWC convolution and max-pooling (recfast/_kernels/conv2d.cuh); asynchronous. f64 picks
// double over float for every pointer. count_out_of_range adds to *bad (device memory).
void conv2d_forward(bool f64, const void* x, const void* w, const void* bias, void* y,
                    const Conv2dShape& s, int act, const Launch& l);
void conv2d_grad_x(bool f64, const void* g, const void* w, void* gx, const Conv2dShape& s,
                   const Launch& l);
void conv2d_grad_w(bool f64, const void* g, const void* x, void* gw, const Conv2dShape& s,
                   const Launch& l);
void max_pool2d_forward(bool f64, const void* x, void* out, int64_t* idx, const Pool2dShape& s,
                        const Launch& l);
void max_pool2d_backward(bool f64, const void* g, const int64_t* idx, void* gx,
                         unsigned long long* bad, const Pool2dShape& s, const Launch& l);
void count_out_of_range(const int64_t* idx, int64_t n, int64_t bound, unsigned long long* bad,
                        const Launch& l);

}  // namespace cuda
}  // namespace recfast
