#pragma once
// Broadcasting elementwise arithmetic on the GPU (the CPU's backend/cpu/elementwise.cpp):
// f32, f16 or bf16 storage, f32 arithmetic, one rounding of the result.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace ebb::cuda {

enum class ElementwiseOp { Add, Mul };

// out = a op b over `sizes` (rank <= 6 once contiguous dimensions merge; outermost first).
// a and b are read through element strides (0 repeats an element, as broadcasting does); out
// is dense and must not overlap a or b unless it is one of them with its dense strides.
// ebb::Error for a bad shape or a failed launch.
template <class T>
void elementwise(ElementwiseOp op, const T* a, const int64_t* a_strides, const T* b,
                 const int64_t* b_strides, T* out, const int64_t* sizes, int rank,
                 cudaStream_t stream);

}  // namespace ebb::cuda
