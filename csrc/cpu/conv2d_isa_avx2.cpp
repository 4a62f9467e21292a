// The convolution GEMM compiled for AVX2 + FMA; conv2d_cpu.cpp picks a copy at run time, so the
// module still loads and runs on a CPU without them.
#include <cstdint>

#include "recfast/common.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#define RECFAST_ISA avx2
#pragma GCC target("avx2,fma")
#define RECFAST_VEC_BYTES 32
#include "conv2d_gemm.inc"
#endif
