// Shared C++ plumbing: error checks and the host/device qualifier. No Python types here.
#pragma once

// NVRTC (the cupy backend compiles recfast/_kernels/*.cuh at run time) has no C++ standard
// library: it gets the fixed-width integers from here and none of the host-only error plumbing.
#ifdef __CUDACC_RTC__
typedef long long int64_t;
typedef unsigned long long uint64_t;
typedef int int32_t;
typedef unsigned int uint32_t;
typedef unsigned short uint16_t;
#else
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#endif

#if defined(__CUDACC__) || defined(__CUDA_ARCH__)
#define RECFAST_HD __host__ __device__
#else
#define RECFAST_HD
#endif

#if defined(__GNUC__) && !defined(__CUDA_ARCH__)
#define RECFAST_INLINE inline __attribute__((always_inline))
#define RECFAST_PREFETCH(p) __builtin_prefetch((p), 1, 3)
#else
#define RECFAST_INLINE inline
#define RECFAST_PREFETCH(p) ((void)0)
#endif

#ifndef __CUDACC_RTC__
// Throws std::invalid_argument (pybind11 turns it into ValueError) when cond is false.
#define RECFAST_CHECK(cond, msg)                                                \
  do {                                                                          \
    if (!(cond)) throw std::invalid_argument(std::string("recfast: ") + (msg)); \
  } while (0)
#endif

namespace recfast {

// True when a name table {name, code} lists every code of enum E in order, 0 .. E::count - 1.
template <typename E, typename Entry, size_t K>
RECFAST_HD constexpr bool names_every_code(const Entry (&table)[K]) {
  if (K != static_cast<size_t>(E::count)) return false;
  for (size_t i = 0; i < K; ++i)
    if (static_cast<size_t>(table[i].code) != i) return false;
  return true;
}

}  // namespace recfast
