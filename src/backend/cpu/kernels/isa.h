#pragma once
// Which instruction set a CPU kernel runs with. The choice is made at run time from what the
// processor reports, so one binary runs everywhere; callers (and tests) may also ask for a
// specific one, e.g. to compare the SIMD path with the portable one.
namespace ebb::cpu {

enum class Isa {
  Portable,  // plain C++, whatever the compiler's baseline target allows
  Avx2Fma,   // x86-64 AVX2 + FMA3
};

bool isa_supported(Isa isa);

// The fastest instruction set this processor supports; detected once.
Isa detected_isa();

const char* isa_name(Isa isa);

// Throws ebb::Error when the processor cannot run `isa`.
void require_isa(Isa isa);

}  // namespace ebb::cpu
