// conv2d forward / backward and max-pooling on the CPU, NHWC.
//
// Convolution = im2col + GEMM, tiled: the output rows (pixels) of each image are cut into chunks
// whose column buffer (rows x KH*KW*C) fits in a core's L2; OpenMP runs the chunks in parallel and
// each chunk calls a single-threaded BLAS GEMM (OpenBLAS via recfast::blas) on its own buffer, so
// OpenMP workers and BLAS threads never compete for the cores. The epilogue (bias, activation)
// runs on the chunk's output while it is still in cache (dense's bias_activation_rows). 1x1 /
// stride 1 / no padding skips im2col.
//
// Backward: the weight gradient col^T @ g is accumulated per thread into a private (K, C_out)
// buffer, and the buffers are added in thread order (deterministic for a given thread count). The
// data gradient is (g @ w^T) scattered back through the same windows (col2im); a thread scatters
// only into images it owns, or into a private copy when there are fewer images than threads.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "recfast/blas.hpp"
#include "recfast/conv2d.hpp"
#include "recfast/isa.hpp"

namespace recfast {

#define RECFAST_DECLARE_CONV_ISA(ns)                                                               \
  namespace ns {                                                                                   \
  void conv_gemm(int64_t m, int64_t n, int64_t k, const float* A, int64_t lda, const int64_t* off, \
                 const float* B, int64_t ldb, float* C, int64_t ldc, bool acc);                    \
  void conv_gemm(int64_t m, int64_t n, int64_t k, const double* A, int64_t lda,                    \
                 const int64_t* off, const double* B, int64_t ldb, double* C, int64_t ldc,         \
                 bool acc);                                                                        \
  }
RECFAST_DECLARE_CONV_ISA(baseline)
#if defined(__x86_64__) && defined(__GNUC__)
RECFAST_DECLARE_CONV_ISA(avx2)
RECFAST_DECLARE_CONV_ISA(avx512)
#endif

namespace {

// The conv kernel has AVX-512, AVX2+FMA and SSE2 copies.
bool has_avx2() { return cpu_isa() != Isa::baseline; }

// C (m, n) = A (m, k) @ B (k, n) with A(i, p) = A[i * lda + off[p]], overwriting C: the
// register-blocked kernel of conv2d_gemm.inc.
template <typename T>
void small_gemm(int64_t m, int64_t n, int64_t k, const T* A, int64_t lda, const int64_t* off,
                const T* B, int64_t ldb, T* C, int64_t ldc, bool accumulate = false) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (cpu_isa() == Isa::avx512)
    return avx512::conv_gemm(m, n, k, A, lda, off, B, ldb, C, ldc, accumulate);
  if (has_avx2()) return avx2::conv_gemm(m, n, k, A, lda, off, B, ldb, C, ldc, accumulate);
#endif
  baseline::conv_gemm(m, n, k, A, lda, off, B, ldb, C, ldc, accumulate);
}

// Forward algorithm: the direct kernel (no im2col inside the image, register-blocked over
// C_out) for small windows KH*KW*C, where a packing BLAS spends its time packing; im2col + BLAS
// above. RECFAST_CONV_ALGO=direct|gemm forces one (for measurements and tests).
constexpr int64_t kDirectMaxK = 64;

bool use_direct(int64_t k) {
  static const int forced = [] {
    const char* e = std::getenv("RECFAST_CONV_ALGO");
    if (!e) return 0;
    return std::strcmp(e, "direct") == 0 ? 1 : std::strcmp(e, "gemm") == 0 ? 2 : 0;
  }();
  if (forced) return forced == 1;
  // With 32 vector registers the kernel holds a 6 x 64-float tile and beats OpenBLAS's
  // single-threaded sgemm at every k of the benchmark (k = 400: 31 vs 43 ms, Zen 4).
  return k <= kDirectMaxK || cpu_isa() == Isa::avx512;
}

int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// Captures the first exception thrown inside a parallel region; rethrown after the join. Every
// thread still reaches each barrier (a throwing thread that skipped one would hang the others).
class ErrorSlot {
 public:
  template <typename F>
  bool run(F&& f) {
    try {
      f();
      return true;
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!err_) err_ = std::current_exception();
      return false;
    }
  }
  void rethrow() {
    if (err_) std::rethrow_exception(err_);
  }

 private:
  std::mutex mu_;
  std::exception_ptr err_;
};

// Column-buffer budget per thread, in elements (256 KB of float: half of an EPYC core's L2).
constexpr int64_t kColBudget = int64_t(1) << 16;

// Multiply-adds per extra thread: below ~1M a second thread's fork/join, and on a busy machine its
// wait for a descheduled worker (a 4 ms time slice), cost more than it saves (measured: 2 epochs of
// the digits CNN, 32-image batches, took 0.56 s on one thread and 2.2 s on two on a loaded 2-core
// VM).
constexpr int kMacsPerThreadShift = 20;

int threads_for(int64_t macs, int nt, int64_t tasks) {
  return int(std::max<int64_t>(
      1,
      std::min<int64_t>({int64_t(nt), tasks, std::max<int64_t>(1, macs >> kMacsPerThreadShift)})));
}

struct Tiling {
  int64_t pixels;     // output pixels per image (oh * ow)
  int64_t rows;       // output pixels per chunk
  int64_t per_image;  // chunks per image
  int64_t chunks;     // n * per_image
  int threads;        // OpenMP threads actually used
};

Tiling make_tiling(const Conv2dShape& s, int nt) {
  Tiling t{};
  const int64_t k = s.kh * s.kw * s.c;
  t.pixels = s.oh * s.ow;
  t.rows = std::max<int64_t>(1, std::min(t.pixels, kColBudget / std::max<int64_t>(1, k)));
  t.per_image = (t.pixels + t.rows - 1) / t.rows;
  if (s.n * t.per_image < nt) {  // few images: cut each one finer so every thread gets work
    const int64_t want = std::min(t.pixels, (nt + s.n - 1) / s.n);
    t.rows = (t.pixels + want - 1) / want;
    t.per_image = (t.pixels + t.rows - 1) / t.rows;
  }
  t.chunks = s.n * t.per_image;
  t.threads = threads_for(s.n * t.pixels * s.co * k, nt, t.chunks);
  return t;
}

bool is_pointwise(const Conv2dShape& s) {
  return s.kh == 1 && s.kw == 1 && s.sh == 1 && s.sw == 1 && s.pt == 0 && s.pl == 0 &&
         s.oh == s.h && s.ow == s.w;
}

// col (rows, kh*kw*c) = the receptive fields of output pixels [p0, p0 + rows) of image xi.
template <typename T>
void im2col(const T* xi, const Conv2dShape& s, int64_t p0, int64_t rows, T* col) {
  const int64_t c = s.c, k = s.kh * s.kw * c;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t p = p0 + r, oy = p / s.ow, ox = p % s.ow;
    T* dst = col + r * k;
    for (int64_t a = 0; a < s.kh; ++a) {
      const int64_t iy = conv_in_coord(oy, a, s.sh, s.dh, s.pt);
      if (iy < 0 || iy >= s.h) {
        std::fill(dst, dst + s.kw * c, T(0));
        dst += s.kw * c;
        continue;
      }
      const T* xrow = xi + iy * s.w * c;
      for (int64_t b = 0; b < s.kw; ++b, dst += c) {
        const int64_t ix = conv_in_coord(ox, b, s.sw, s.dw, s.pl);
        if (ix < 0 || ix >= s.w) {
          std::fill(dst, dst + c, T(0));
        } else if (c == 1) {
          dst[0] = xrow[ix];
        } else {
          std::memcpy(dst, xrow + ix * c, size_t(c) * sizeof(T));
        }
      }
    }
  }
}

// gxi (h, w, c) += the columns col (rows, kh*kw*c) of output pixels [p0, p0 + rows), through
// their windows: the adjoint of im2col.
template <typename T>
void col2im_add(const T* col, const Conv2dShape& s, int64_t p0, int64_t rows, T* gxi) {
  const int64_t c = s.c, k = s.kh * s.kw * c;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t p = p0 + r, oy = p / s.ow, ox = p % s.ow;
    const T* src = col + r * k;
    for (int64_t a = 0; a < s.kh; ++a) {
      const int64_t iy = conv_in_coord(oy, a, s.sh, s.dh, s.pt);
      if (iy < 0 || iy >= s.h) {
        src += s.kw * c;
        continue;
      }
      T* grow = gxi + iy * s.w * c;
      for (int64_t b = 0; b < s.kw; ++b, src += c) {
        const int64_t ix = conv_in_coord(ox, b, s.sw, s.dw, s.pl);
        if (ix < 0 || ix >= s.w) continue;
        T* dst = grow + ix * c;
#pragma omp simd
        for (int64_t m = 0; m < c; ++m) dst[m] += src[m];
      }
    }
  }
}

// Direct forward: output rows in parallel; inside a row, the pixels whose windows lie inside the
// image are read in place through tap offsets, the border pixels through a small im2col buffer.
template <typename T>
void forward_direct(const T* x, const T* w, const T* bias, T* y, const Conv2dShape& s, Act act,
                    int nt) {
  const int64_t k = s.kh * s.kw * s.c;
  std::vector<int64_t> taps(static_cast<size_t>(k)), ident(static_cast<size_t>(k));
  for (int64_t a = 0, p = 0; a < s.kh; ++a)
    for (int64_t b = 0; b < s.kw; ++b)
      for (int64_t m = 0; m < s.c; ++m, ++p) {
        taps[size_t(p)] = (a * s.dh * s.w + b * s.dw) * s.c + m;
        ident[size_t(p)] = p;
      }
  // Interior columns [x_lo, x_hi): every horizontal tap inside the image.
  const int64_t x_lo = std::min(s.ow, (s.pl + s.sw - 1) / s.sw);
  const int64_t span = s.w - 1 - (s.kw - 1) * s.dw + s.pl;
  const int64_t x_hi = span < 0 ? x_lo : std::max(x_lo, std::min(s.ow, span / s.sw + 1));
  const int64_t tasks = s.n * s.oh;
  const int nth = threads_for(tasks * s.ow * s.co * k, nt, tasks);
  ErrorSlot err;
#pragma omp parallel num_threads(nth) if (nth > 1)
  {
    std::vector<T> col;
    const bool ok = err.run([&] { col.resize(static_cast<size_t>(s.ow * k)); });
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tasks; ++t) {
      if (!ok) continue;
      err.run([&] {
        const int64_t img = t / s.oh, oy = t % s.oh;
        const T* xi = x + img * s.h * s.w * s.c;
        T* yrow = y + t * s.ow * s.co;
        const int64_t iy0 = oy * s.sh - s.pt;
        const bool inside = iy0 >= 0 && iy0 + (s.kh - 1) * s.dh < s.h && x_hi > x_lo;
        auto via_col = [&](int64_t ox0, int64_t ox1) {
          if (ox1 <= ox0) return;
          im2col(xi, s, oy * s.ow + ox0, ox1 - ox0, col.data());
          small_gemm(ox1 - ox0, s.co, k, col.data(), k, ident.data(), w, s.co, yrow + ox0 * s.co,
                     s.co);
        };
        if (inside) {
          const T* a = xi + (iy0 * s.w + x_lo * s.sw - s.pl) * s.c;
          small_gemm(x_hi - x_lo, s.co, k, a, s.sw * s.c, taps.data(), w, s.co, yrow + x_lo * s.co,
                     s.co);
          via_col(0, x_lo);
          via_col(x_hi, s.ow);
        } else {
          via_col(0, s.ow);
        }
        bias_activation_rows(yrow, bias, s.ow, s.co, act);
      });
    }
  }
  err.rethrow();
}

template <typename T>
void forward_impl(const T* x, const T* w, const T* bias, T* y, const Conv2dShape& s, Act act,
                  int nt) {
  if (s.n <= 0 || s.oh <= 0 || s.ow <= 0) return;
  const int64_t k = s.kh * s.kw * s.c;
  if (use_direct(k)) return forward_direct(x, w, bias, y, s, act, std::max(1, nt));
  const Tiling t = make_tiling(s, std::max(1, nt));
  const bool direct = is_pointwise(s);
  blas::ThreadScope scope(1);  // BLAS runs inside our threads, one each
  ErrorSlot err;
#pragma omp parallel num_threads(t.threads) if (t.threads > 1)
  {
    std::vector<T> col;
    const bool ok = err.run([&] { col.resize(direct ? 0 : static_cast<size_t>(t.rows * k)); });
#pragma omp for schedule(static)
    for (int64_t ch = 0; ch < t.chunks; ++ch) {
      if (!ok) continue;
      const int64_t img = ch / t.per_image, p0 = (ch % t.per_image) * t.rows;
      const int64_t rows = std::min(t.rows, t.pixels - p0);
      if (rows <= 0) continue;
      const T* xi = x + img * s.h * s.w * s.c;
      const T* a = direct ? xi + p0 * s.c : col.data();
      if (!direct) im2col(xi, s, p0, rows, col.data());
      T* yc = y + (img * t.pixels + p0) * s.co;
      err.run([&] {
        blas::gemm(false, false, rows, s.co, k, T(1), a, k, w, s.co, T(0), yc, s.co);
        bias_activation_rows(yc, bias, rows, s.co, act);
      });
    }
  }
  err.rethrow();
}

template <typename T>
void backward_impl(const T* g, const T* x, const T* w, T* gx, T* gw, const Conv2dShape& s, int nt) {
  const int64_t k = s.kh * s.kw * s.c, image = s.h * s.w * s.c;
  if (gw) std::fill(gw, gw + k * s.co, T(0));
  if (gx) std::fill(gx, gx + s.n * image, T(0));
  if (s.n <= 0 || s.oh <= 0 || s.ow <= 0 || (!gx && !gw)) return;
  Tiling t = make_tiling(s, std::max(1, nt));
  const bool direct = is_pointwise(s);
  // Small windows: the weight gradient through the register-blocked kernel (a packing BLAS is
  // slow at k = KH*KW*C rows of output); row_off[r] = r * k walks the column buffer's rows.
  const bool small_k = use_direct(k);
  std::vector<int64_t> row_off(small_k ? static_cast<size_t>(t.rows) : 0);
  for (size_t r = 0; r < row_off.size(); ++r) row_off[r] = int64_t(r) * (direct ? s.c : k);
  // The data gradient through the same kernel, when k spans whole vector panels (narrower, its
  // column tail runs scalar and BLAS is faster), needs w^T (co, k) row-major: one small copy.
  const bool gx_small = gx && small_k && k >= kDirectMaxK;
  std::vector<T> wt(gx_small ? static_cast<size_t>(k * s.co) : 0);
  std::vector<int64_t> co_off(gx_small ? static_cast<size_t>(s.co) : 0);
  for (int64_t i = 0; gx_small && i < k; ++i)
    for (int64_t o = 0; o < s.co; ++o) wt[size_t(o * k + i)] = w[i * s.co + o];
  for (size_t o = 0; o < co_off.size(); ++o) co_off[o] = int64_t(o);
  // Data gradient ownership: by image when every thread can have one (or the gradient rows are
  // disjoint anyway: pointwise), else private copies of the (few) images, added after.
  const bool by_image = direct || s.n >= t.threads;
  const int nth = t.threads;
  const bool private_gx = gx && !by_image;
  std::vector<T> gw_part(gw ? static_cast<size_t>(nth * k * s.co) : 0, T(0));
  std::vector<T> gx_part(private_gx ? static_cast<size_t>(nth * s.n * image) : 0, T(0));
  blas::ThreadScope scope(1);
  ErrorSlot err;
#pragma omp parallel num_threads(nth) if (nth > 1)
  {
    const int tid = thread_id();
    std::vector<T> col, colg;
    const bool ok = err.run([&] {
      col.resize(direct ? 0 : static_cast<size_t>(t.rows * k));
      colg.resize(gx && !direct ? static_cast<size_t>(t.rows * k) : 0);
    });
    T* gw_acc = gw ? gw_part.data() + size_t(tid) * size_t(k * s.co) : nullptr;
    T* gx_dst = private_gx ? gx_part.data() + size_t(tid) * size_t(s.n * image) : gx;
    auto chunk = [&](int64_t img, int64_t p0) {
      const int64_t rows = std::min(t.rows, t.pixels - p0);
      if (!ok || rows <= 0) return;
      const T* xi = x + img * image;
      const T* gc = g + (img * t.pixels + p0) * s.co;
      if (gw_acc) {
        const T* a = direct ? xi + p0 * s.c : col.data();
        if (!direct) im2col(xi, s, p0, rows, col.data());
        // gw (k, co) += col^T (k, rows) @ g (rows, co)
        if (small_k)  // the register-blocked kernel: A(i, r) = col[r * k + i]
          small_gemm(k, s.co, rows, a, 1, row_off.data(), gc, s.co, gw_acc, s.co, true);
        else
          blas::gemm(true, false, k, s.co, rows, T(1), a, k, gc, s.co, T(1), gw_acc, s.co);
      }
      if (gx_dst) {
        T* gxi = gx_dst + img * image;
        // g (rows, co) @ w^T (co, k): pixel rows of gx, or the column buffer's for col2im.
        T* dst = direct ? gxi + p0 * s.c : colg.data();
        if (gx_small)
          small_gemm(rows, k, s.co, gc, s.co, co_off.data(), wt.data(), k, dst, k);
        else
          blas::gemm(false, true, rows, k, s.co, T(1), gc, s.co, w, s.co, T(0), dst, k);
        if (!direct) col2im_add(colg.data(), s, p0, rows, gxi);  // pointwise: rows are disjoint
      }
    };
    if (by_image) {
#pragma omp for schedule(static)
      for (int64_t img = 0; img < s.n; ++img)
        for (int64_t c = 0; c < t.per_image; ++c) err.run([&] { chunk(img, c * t.rows); });
    } else {
#pragma omp for schedule(static)
      for (int64_t ch = 0; ch < t.chunks; ++ch)
        err.run([&] { chunk(ch / t.per_image, (ch % t.per_image) * t.rows); });
    }
  }
  err.rethrow();
  if (gw) {
    for (int th = 0; th < nth; ++th) {
      const T* p = gw_part.data() + size_t(th) * size_t(k * s.co);
#pragma omp simd
      for (int64_t i = 0; i < k * s.co; ++i) gw[i] += p[i];
    }
  }
  if (private_gx) {
    for (int th = 0; th < nth; ++th) {
      const T* p = gx_part.data() + size_t(th) * size_t(s.n * image);
#pragma omp simd
      for (int64_t i = 0; i < s.n * image; ++i) gx[i] += p[i];
    }
  }
}

template <typename T>
void pool_forward_impl(const T* x, T* out, int64_t* idx, const Pool2dShape& s, int nt) {
  const int64_t total = s.n * s.oh;
  nt = int(std::max<int64_t>(1, std::min<int64_t>(nt, total)));
  if (s.n * s.oh * s.ow * s.c < (int64_t(1) << 18)) nt = 1;  // start-up costs more than this
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t t = 0; t < total; ++t) {
    const int64_t img = t / s.oh, oy = t % s.oh;
    const T* xi = x + img * s.h * s.w * s.c;
    const int64_t y0 = std::max<int64_t>(oy * s.sh - s.ph, 0);
    const int64_t y1 = std::min<int64_t>(oy * s.sh - s.ph + s.kh, s.h);
    for (int64_t ox = 0; ox < s.ow; ++ox) {
      const int64_t x0 = std::max<int64_t>(ox * s.sw - s.pw, 0);
      const int64_t x1 = std::min<int64_t>(ox * s.sw - s.pw + s.kw, s.w);
      T* best = out + ((img * s.oh + oy) * s.ow + ox) * s.c;
      int64_t* arg = idx + ((img * s.oh + oy) * s.ow + ox) * s.c;
      const T* first = xi + (y0 * s.w + x0) * s.c;
      for (int64_t m = 0; m < s.c; ++m) {
        best[m] = first[m];
        arg[m] = y0 * s.w + x0;
      }
      for (int64_t iy = y0; iy < y1; ++iy) {
        for (int64_t ix = (iy == y0 ? x0 + 1 : x0); ix < x1; ++ix) {
          const T* v = xi + (iy * s.w + ix) * s.c;
          const int64_t pos = iy * s.w + ix;
#pragma omp simd
          for (int64_t m = 0; m < s.c; ++m) {
            const bool take = pool_takes(v[m], best[m]);
            best[m] = take ? v[m] : best[m];
            arg[m] = take ? pos : arg[m];
          }
        }
      }
    }
  }
}

// Each index is checked as it is read (the caller's check may be stale: another thread can
// rewrite idx during the call); one outside [0, h * w) is skipped and counted.
template <typename T>
int64_t pool_backward_impl(const T* g, const int64_t* idx, T* gx, const Pool2dShape& s, int nt) {
  const int64_t plane = s.h * s.w, outs = s.oh * s.ow;
  std::fill(gx, gx + s.n * plane * s.c, T(0));
  if (s.n == 0 || s.c == 0 || outs == 0) return 0;  // nothing to scatter (and no task to split)
  // Tasks own (image, channel block) slices of gx, so the scatter-add never races.
  const int64_t blocks =
      s.n >= nt ? 1 : std::max<int64_t>(1, std::min<int64_t>(s.c, (nt + s.n - 1) / s.n));
  const int64_t cb = (s.c + blocks - 1) / blocks, tasks = s.n * blocks;
  nt = int(std::max<int64_t>(1, std::min<int64_t>(nt, tasks)));
  if (s.n * outs * s.c < (int64_t(1) << 18)) nt = 1;
  int64_t bad = 0;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1) reduction(+ : bad)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t img = t / blocks, c0 = (t % blocks) * cb, c1 = std::min(s.c, c0 + cb);
    T* gxi = gx + img * plane * s.c;
    for (int64_t p = 0; p < outs; ++p) {
      const T* gp = g + (img * outs + p) * s.c;
      const int64_t* ip = idx + (img * outs + p) * s.c;
      for (int64_t m = c0; m < c1; ++m) {
        const int64_t q = ip[m];
        if (uint64_t(q) >= uint64_t(plane)) {
          ++bad;
          continue;
        }
        gxi[q * s.c + m] += gp[m];
      }
    }
  }
  return bad;
}

}  // namespace

void conv2d_forward(const float* x, const float* w, const float* bias, float* y,
                    const Conv2dShape& s, Act act, int nt) {
  forward_impl(x, w, bias, y, s, act, nt);
}
void conv2d_forward(const double* x, const double* w, const double* bias, double* y,
                    const Conv2dShape& s, Act act, int nt) {
  forward_impl(x, w, bias, y, s, act, nt);
}
void conv2d_backward(const float* g, const float* x, const float* w, float* gx, float* gw,
                     const Conv2dShape& s, int nt) {
  backward_impl(g, x, w, gx, gw, s, nt);
}
void conv2d_backward(const double* g, const double* x, const double* w, double* gx, double* gw,
                     const Conv2dShape& s, int nt) {
  backward_impl(g, x, w, gx, gw, s, nt);
}
void max_pool2d_forward(const float* x, float* out, int64_t* idx, const Pool2dShape& s, int nt) {
  pool_forward_impl(x, out, idx, s, nt);
}
void max_pool2d_forward(const double* x, double* out, int64_t* idx, const Pool2dShape& s, int nt) {
  pool_forward_impl(x, out, idx, s, nt);
}
int64_t max_pool2d_backward(const float* g, const int64_t* idx, float* gx, const Pool2dShape& s,
                            int nt) {
  return pool_backward_impl(g, idx, gx, s, nt);
}
int64_t max_pool2d_backward(const double* g, const int64_t* idx, double* gx, const Pool2dShape& s,
                            int nt) {
  return pool_backward_impl(g, idx, gx, s, nt);
}

}  // namespace recfast
