#include "backend/cpu/kernels/isa.h"

#include "core/error.h"

namespace ebb::cpu {

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::Portable:
      return true;
    case Isa::Avx2Fma:
#if defined(__x86_64__) || defined(__i386__)
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
      return false;
#endif
  }
  return false;
}

Isa detected_isa() {
  static const Isa best = isa_supported(Isa::Avx2Fma) ? Isa::Avx2Fma : Isa::Portable;
  return best;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Portable:
      return "portable";
    case Isa::Avx2Fma:
      return "avx2+fma";
  }
  return "unknown";
}

void require_isa(Isa isa) {
  if (!isa_supported(isa))
    fail("CPU kernels: this processor cannot run the {} kernels", isa_name(isa));
}

}  // namespace ebb::cpu
