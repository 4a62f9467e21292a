// IEEE binary16 storage and its conversions, shared by the CPU kernels, the GPU kernels (nvcc
// and NVRTC) and the bindings. No Python types here.
#pragma once

#include "recfast/common.hpp"

namespace recfast {

// IEEE binary16 storage for factor rows (arithmetic stays in float32): the bits, so that host
// code needs no _Float16 and NVRTC no cuda_fp16.h. The conversions below are the only ones: the
// CPU kernels, the GPU kernels and the CPU tests all run these same integer steps.
struct Half {
  uint16_t bits;
};

RECFAST_HD RECFAST_INLINE uint32_t float_bits(float f) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(f);
#else
  uint32_t u;
  __builtin_memcpy(&u, &f, 4);
  return u;
#endif
}
RECFAST_HD RECFAST_INLINE float bits_float(uint32_t u) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(u);
#else
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
#endif
}

// Exact (every half is a float). After F. Giesen's half_to_float: shift the exponent and
// mantissa into place, rebias, and renormalize subnormals by one float subtraction.
RECFAST_HD RECFAST_INLINE float half_to_float(Half h) {
  const uint32_t shifted_exp = 0x7c00u << 13;
  uint32_t o = uint32_t(h.bits & 0x7fffu) << 13;
  const uint32_t exp = o & shifted_exp;
  o += (127u - 15u) << 23;
  float f;
  if (exp == shifted_exp) {  // inf / NaN
    f = bits_float(o + ((128u - 16u) << 23));
  } else if (exp == 0) {  // zero / subnormal
    f = bits_float(o + (1u << 23)) - bits_float(113u << 23);
  } else {
    f = bits_float(o);
  }
  return bits_float(float_bits(f) | (uint32_t(h.bits & 0x8000u) << 16));
}

// Round to nearest, ties to even (as NumPy's astype(float16) and PTX cvt.rn.f16.f32); overflow
// gives inf, NaN a quiet NaN. After F. Giesen's float_to_half_fast3_rtne.
RECFAST_HD RECFAST_INLINE Half float_to_half(float f) {
  uint32_t u = float_bits(f);
  const uint32_t sign = u & 0x80000000u;
  u ^= sign;
  uint32_t o;
  if (u >= (127u + 16u) << 23) {  // |f| >= 65536 (or inf, NaN): inf, or a quiet NaN
    o = u > (255u << 23) ? 0x7e00u : 0x7c00u;
  } else if (u < (113u << 23)) {  // a subnormal half or zero: the FPU rounds the add
    const uint32_t magic = ((127u - 15u) + (23u - 10u) + 1u) << 23;
    o = float_bits(bits_float(u) + bits_float(magic)) - magic;
  } else {
    const uint32_t odd = (u >> 13) & 1u;
    u += ((15u - 127u) << 23) + 0xfffu + odd;
    o = u >> 13;
  }
  return Half{uint16_t(o | (sign >> 16))};
}

// A factor coordinate as the arithmetic type T, and back (identity unless stored as Half).
template <typename T>
RECFAST_HD RECFAST_INLINE T load_coord(T x) {
  return x;
}
RECFAST_HD RECFAST_INLINE float load_coord(Half x) { return half_to_float(x); }
template <typename T>
RECFAST_HD RECFAST_INLINE void store_coord(T* p, T x) {
  *p = x;
}
RECFAST_HD RECFAST_INLINE void store_coord(Half* p, float x) { *p = float_to_half(x); }

}  // namespace recfast
