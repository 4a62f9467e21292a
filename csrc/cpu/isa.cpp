// CPU feature detection for the per-ISA kernel copies (see recfast/isa.hpp).
#include "recfast/isa.hpp"

#include <cstdlib>
#include <cstring>

namespace recfast {
namespace {

Isa hardware() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
    return Isa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
#endif
  return Isa::baseline;
}

// RECFAST_ISA=baseline|avx2 lowers the level (tests run the copies older CPUs get); it never
// raises it past what the CPU has.
Isa detect() {
  const Isa hw = hardware();
  const char* e = std::getenv("RECFAST_ISA");
  if (e && std::strcmp(e, "baseline") == 0) return Isa::baseline;
  if (e && std::strcmp(e, "avx2") == 0 && hw == Isa::avx512) return Isa::avx2;
  return hw;
}

}  // namespace

Isa cpu_isa() {  // a function-local static: safe to call from other files' static initializers
  static const Isa isa = detect();
  return isa;
}

const char* simd_level() {
  switch (cpu_isa()) {
    case Isa::avx512:
      return "avx512";
    case Isa::avx2:
      return "avx2";
    default:
      return "baseline";
  }
}

}  // namespace recfast
