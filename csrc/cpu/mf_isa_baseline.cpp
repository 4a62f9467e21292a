// SGD-MF kernels for the compiler's default target (x86-64 SSE2, or -march=native under
// RECFAST_NATIVE=1); the fallback when the CPU has no AVX2.
#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "recfast/mf.hpp"

#define RECFAST_ISA baseline
#include "mf_kernel.inc"
