#pragma once
// Shapes are outermost-first (PyTorch order); strides count elements, not bytes.
#include <cstdint>
#include <string>
#include <vector>

namespace ebb {

using Shape = std::vector<int64_t>;
using Strides = std::vector<int64_t>;

// Product of the dimensions; 1 for a scalar (empty shape).
int64_t shape_numel(const Shape& shape);
// Product of dimensions [begin, end).
int64_t shape_numel(const Shape& shape, int begin, int end);
// Row-major strides of a dense tensor of this shape.
Strides contiguous_strides(const Shape& shape);
// "[2, 320, 64, 64]"
std::string shape_str(const Shape& shape);
// Maps a possibly negative dimension index onto [0, rank); fails naming `op` when out of range.
int normalize_dim(int dim, int rank, const char* op);

}  // namespace ebb
