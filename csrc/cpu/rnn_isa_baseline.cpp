// The recurrent kernels' row passes for the compiler's default target (x86-64 SSE2, or
// -march=native under RECFAST_NATIVE=1); the fallback when the CPU has no AVX2.
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "rnn_rows.hpp"

#define RECFAST_ISA baseline
#define RECFAST_VEC_BYTES 16
#include "rnn_rows.inc"
