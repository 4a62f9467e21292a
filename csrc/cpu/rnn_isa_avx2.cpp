// The recurrent kernels' row passes compiled for avx2; rnn_cpu.cpp picks a copy at run time.
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "rnn_rows.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#define RECFAST_ISA avx2
#define RECFAST_VEC_BYTES 32
#pragma GCC target("avx2,fma")
#include "rnn_rows.inc"
#endif
