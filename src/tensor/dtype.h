#pragma once
// Element types of every tensor Ebb can read: the safetensors dtypes and the ggml types that
// diffusion GGUF files use. Block-quantized types store `block_elems` values in `block_bytes`.
#include <cstdint>
#include <optional>
#include <string_view>

namespace ebb {

enum class DType : uint8_t {
  F64,
  F32,
  F16,
  BF16,
  F8_E4M3,
  F8_E5M2,
  I64,
  I32,
  I16,
  I8,
  U64,
  U32,
  U16,
  U8,
  BOOL,
  Q4_0,
  Q4_1,
  Q5_0,
  Q5_1,
  Q8_0,
  Q2_K,
  Q3_K,
  Q4_K,
  Q5_K,
  Q6_K,
  Q8_K,
  IQ4_NL,
  IQ4_XS,
};
inline constexpr int kDTypeCount = static_cast<int>(DType::IQ4_XS) + 1;

struct DTypeInfo {
  std::string_view name;  // as the file format spells it (safetensors names, ggml names)
  uint32_t block_elems;   // 1 for plain element types
  uint32_t block_bytes;   // bytes of one block (of one element for plain types)
  bool quantized;
};

const DTypeInfo& dtype_info(DType t);
inline std::string_view dtype_name(DType t) {
  return dtype_info(t).name;
}

// Bytes needed for `elems` elements, or nullopt when `elems` is not a whole number of blocks
// or the size overflows.
std::optional<uint64_t> dtype_bytes(DType t, uint64_t elems);

std::optional<DType> dtype_from_safetensors(std::string_view name);
std::optional<DType> dtype_from_ggml(uint32_t ggml_type);
// ggml's numeric type id; only meaningful for types GGUF can store.
std::optional<uint32_t> dtype_to_ggml(DType t);
// safetensors cannot hold block-quantized types.
bool dtype_in_safetensors(DType t);

}  // namespace ebb
