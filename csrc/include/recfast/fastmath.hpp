// exp, sigmoid and tanh written as straight-line arithmetic (no calls, no tables, no branches), so
// loops over them vectorize: glibc's scalar expf/tanhf made the fused epilogues slower than NumPy.
// Accuracy: a few ulp against glibc (tests/test_fastmath.py). NaN in gives NaN out; +-inf saturate.
#pragma once

#ifndef __CUDACC_RTC__
#include <cstdint>
#include <cstring>
#endif

#include "recfast/common.hpp"

namespace recfast {
namespace fm {

template <typename To, typename From>
RECFAST_HD RECFAST_INLINE To bits(From x) {
  static_assert(sizeof(To) == sizeof(From), "bit cast between different sizes");
  To y;
#ifdef __CUDACC_RTC__
  memcpy(&y, &x, sizeof(To));  // NVRTC's built-in device memcpy (it has no <cstring>)
#else
  std::memcpy(&y, &x, sizeof(To));
#endif
  return y;
}

// exp(x): x = n ln2 + r with |r| <= ln2/2, exp(r) by polynomial, 2^n built in the exponent bits.
// Rounding to n uses the 1.5 * 2^mantissa trick, so n also sits in the low bits of j.
RECFAST_HD RECFAST_INLINE float exp(float x) {
  x = x < -87.0f ? -87.0f : x;  // NaN passes both comparisons unchanged
  x = x > 88.0f ? 88.0f : x;
  const float magic = 12582912.0f;  // 1.5 * 2^23
  const float j = x * 1.44269504088896341f + magic;
  const float n = j - magic;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;  // Cephes expf
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const uint32_t e = (bits<uint32_t>(j) + 127u) << 23;
  return p * bits<float>(e);
}

RECFAST_HD RECFAST_INLINE double exp(double x) {
  x = x < -708.0 ? -708.0 : x;
  x = x > 709.0 ? 709.0 : x;
  const double magic = 6755399441055744.0;  // 1.5 * 2^52
  const double j = x * 1.4426950408889634074 + magic;
  const double n = j - magic;
  double r = x - n * 6.93145751953125e-1;
  r = r - n * 1.42860682030941723212e-6;
  // Taylor series to r^13: truncation below 1e-17 for |r| <= ln2/2.
  double p = 1.0 / 6227020800.0;
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * (r * r) + r + 1.0;
  const uint64_t e = (bits<uint64_t>(j) + 1023u) << 52;
  return p * bits<double>(e);
}

template <typename T>
RECFAST_HD RECFAST_INLINE T sigmoid(T x) {
  return T(1) / (T(1) + fm::exp(-x));
}

// tanh: an odd polynomial/rational near 0 (where 1 - 2/(e^2x + 1) would cancel), else through exp.
// Both sides are computed and one selected, which keeps the loop branch-free.
RECFAST_HD RECFAST_INLINE float tanh(float x) {
  const float a = x < 0.0f ? -x : x;
  const float big = 1.0f - 2.0f / (fm::exp(2.0f * a) + 1.0f);
  const float z = x * x;
  float p = -5.70498872745e-3f;  // Cephes tanhf
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = p * z * x + x;
  const float signed_big = x < 0.0f ? -big : big;
  return a > 0.625f ? signed_big : small;
}

RECFAST_HD RECFAST_INLINE double tanh(double x) {
  const double a = x < 0.0 ? -x : x;
  const double big = 1.0 - 2.0 / (fm::exp(2.0 * a) + 1.0);
  const double z = x * x;
  // Cephes tanh: x + x z P(z) / Q(z) on |x| <= 0.625.
  double p = -9.64399179425052238628e-1;
  p = p * z - 9.92877231001918586564e1;
  p = p * z - 1.61468768441708447952e3;
  double q = z + 1.12811678491632931402e2;
  q = q * z + 2.23548839060100448583e3;
  q = q * z + 4.84406305325125486048e3;
  const double small = x + x * z * p / q;
  const double signed_big = x < 0.0 ? -big : big;
  return a > 0.625 ? signed_big : small;
}

}  // namespace fm
}  // namespace recfast
