// The recurrent kernels' row passes compiled for avx512; rnn_cpu.cpp picks a copy at run time.
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "rnn_rows.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#define RECFAST_ISA avx512
#define RECFAST_ISA_AVX512 1
#include <immintrin.h>
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")
#include "rnn_rows.inc"
#endif
