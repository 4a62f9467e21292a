// SGD-MF kernels for the compiler's default target (x86-64 SSE2, or -march=native under
// RECFAST_NATIVE=1); the fallback when the CPU has no AVX2.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <type_traits>
#include <vector>

#include "recfast/mf.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

#define RECFAST_ISA baseline
#include "mf_kernel.inc"
