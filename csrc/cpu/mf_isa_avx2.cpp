// SGD-MF kernels compiled for avx2; mf_cpu.cpp picks a copy at run time, so the module
// still loads and runs on a CPU without it.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <type_traits>
#include <vector>

#include "recfast/mf.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#define RECFAST_ISA avx2
#pragma GCC target("avx2,fma,f16c")
#define RECFAST_F16C 1
#include "mf_kernel.inc"
#endif
