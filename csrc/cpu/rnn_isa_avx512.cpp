// The recurrent kernels' row passes compiled for avx512; rnn_cpu.cpp picks a copy at run time.
#include <algorithm>
#include <cstring>

#include "rnn_rows.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#define RECFAST_ISA avx512
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")
#include "rnn_rows.inc"
#endif
