// Which instruction-set copy of the kernels to run: detected once per process. Kernels that have
// per-ISA copies (csrc/cpu/*_isa_*.cpp, compiled with `#pragma GCC target`) dispatch on it, so one
// binary is fast on new CPUs and still runs on old ones.
#pragma once

namespace recfast {

enum class Isa { baseline, avx2, avx512 };

Isa cpu_isa();             // detected once; RECFAST_ISA=baseline|avx2 can lower it (tests)
const char* simd_level();  // "avx512", "avx2" or "baseline"

}  // namespace recfast
