// iALS and BPR kernels for the compiler's default target; the fallback without AVX2.
#include <cmath>
#include <cstdint>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "recfast/common.hpp"
#include "recfast/implicit.hpp"

#define RECFAST_ISA baseline
#include "implicit_kernel.inc"
