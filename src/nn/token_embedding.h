#pragma once
// Embedding lookup: rows of a table gathered on the host, so it works for every backend and
// every weight dtype (the table is read where the weight store keeps it; only the rows asked
// for are decoded).
#include <cstdint>
#include <span>

#include "backend/backend.h"
#include "tensor/tensor.h"

namespace ebb {

// table [vocab, D] (any dtype, dense, host memory) -> F32 [ids.size(), D] on `backend`.
// An id outside [0, vocab) is an ebb::Error naming it and its position.
Tensor gather_embedding_rows(Backend& backend, const Tensor& table, std::span<const int32_t> ids);

}  // namespace ebb
