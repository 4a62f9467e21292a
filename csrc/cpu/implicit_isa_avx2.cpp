// iALS and BPR kernels compiled for avx2; implicit_cpu.cpp picks a copy at run time.
#include <cmath>
#include <cstdint>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "recfast/common.hpp"
#include "recfast/implicit.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#define RECFAST_ISA avx2
#pragma GCC target("avx2,fma")
#include "implicit_kernel.inc"
#endif
