#include "tensor/dtype.h"

#include <array>

#include "core/checked_math.h"

namespace ebb {
namespace {

struct Entry {
  DTypeInfo info;
  int ggml;  // -1: no ggml id
  bool safetensors;
};

// ggml ids and block layouts follow ggml's ggml.h / ggml-common.h.
constexpr std::array<Entry, kDTypeCount> kTable = {{
    {{"F64", 1, 8, false}, 28, true},      {{"F32", 1, 4, false}, 0, true},
    {{"F16", 1, 2, false}, 1, true},       {{"BF16", 1, 2, false}, 30, true},
    {{"F8_E4M3", 1, 1, false}, -1, true},  {{"F8_E5M2", 1, 1, false}, -1, true},
    {{"I64", 1, 8, false}, 27, true},      {{"I32", 1, 4, false}, 26, true},
    {{"I16", 1, 2, false}, 25, true},      {{"I8", 1, 1, false}, 24, true},
    {{"U64", 1, 8, false}, -1, true},      {{"U32", 1, 4, false}, -1, true},
    {{"U16", 1, 2, false}, -1, true},      {{"U8", 1, 1, false}, -1, true},
    {{"BOOL", 1, 1, false}, -1, true},     {{"Q4_0", 32, 18, true}, 2, false},
    {{"Q4_1", 32, 20, true}, 3, false},    {{"Q5_0", 32, 22, true}, 6, false},
    {{"Q5_1", 32, 24, true}, 7, false},    {{"Q8_0", 32, 34, true}, 8, false},
    {{"Q2_K", 256, 84, true}, 10, false},  {{"Q3_K", 256, 110, true}, 11, false},
    {{"Q4_K", 256, 144, true}, 12, false}, {{"Q5_K", 256, 176, true}, 13, false},
    {{"Q6_K", 256, 210, true}, 14, false}, {{"Q8_K", 256, 292, true}, 15, false},
    {{"IQ4_NL", 32, 18, true}, 20, false}, {{"IQ4_XS", 256, 136, true}, 23, false},
}};

}  // namespace

const DTypeInfo& dtype_info(DType t) {
  return kTable[static_cast<int>(t)].info;
}

std::optional<uint64_t> dtype_bytes(DType t, uint64_t elems) {
  const DTypeInfo& info = dtype_info(t);
  if (elems % info.block_elems != 0) return std::nullopt;
  return checked_mul(elems / info.block_elems, info.block_bytes);
}

std::optional<DType> dtype_from_safetensors(std::string_view name) {
  for (int i = 0; i < kDTypeCount; ++i)
    if (kTable[i].safetensors && kTable[i].info.name == name) return static_cast<DType>(i);
  return std::nullopt;
}

std::optional<DType> dtype_from_ggml(uint32_t ggml_type) {
  for (int i = 0; i < kDTypeCount; ++i)
    if (kTable[i].ggml >= 0 && static_cast<uint32_t>(kTable[i].ggml) == ggml_type)
      return static_cast<DType>(i);
  return std::nullopt;
}

std::optional<uint32_t> dtype_to_ggml(DType t) {
  int id = kTable[static_cast<int>(t)].ggml;
  if (id < 0) return std::nullopt;
  return static_cast<uint32_t>(id);
}

bool dtype_in_safetensors(DType t) {
  return kTable[static_cast<int>(t)].safetensors;
}

}  // namespace ebb
