// The convolution GEMM for the compiler's default target (x86-64 SSE2, or -march=native under
// RECFAST_NATIVE=1); the fallback when the CPU has no AVX2.
#include <cstdint>

#include "recfast/common.hpp"

#define RECFAST_ISA baseline
#define RECFAST_VEC_BYTES 16
#include "conv2d_gemm.inc"
