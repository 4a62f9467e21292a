// The convolution GEMM compiled for AVX-512 (64-byte vectors: a 6 x 64-float tile in registers);
// conv2d_cpu.cpp picks a copy at run time, so the module still loads on a CPU without it.
#include <cstdint>

#include "recfast/common.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#define RECFAST_ISA avx512
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")
#define RECFAST_VEC_BYTES 64
#include "conv2d_gemm.inc"
#endif
