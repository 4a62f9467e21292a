// iALS and BPR kernels compiled for avx512; implicit_cpu.cpp picks a copy at run time.
#include <cmath>
#include <cstdint>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "recfast/common.hpp"
#include "recfast/implicit.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#define RECFAST_ISA avx512
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")
#include "implicit_kernel.inc"
#endif
