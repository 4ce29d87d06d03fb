#pragma once
// A typed, shaped view of a Storage: shape, element strides and a byte offset. Copying a
// Tensor copies the view, never the bytes. Views (reshape, narrow, permuted) share storage;
// ops in a Backend produce new tensors.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tensor/device.h"
#include "tensor/dtype.h"
#include "tensor/shape.h"
#include "tensor/storage.h"

namespace ebb {

// Bytes of a dense tensor; fails naming `op` on negative dimensions, overflow or a partial
// quantization block.
uint64_t dense_bytes(DType dtype, const Shape& shape, std::string_view op);

class Tensor {
 public:
  // An undefined tensor: stands for "none" where an operand is optional (a bias, an affine).
  Tensor() = default;
  // A dense tensor covering `storage` from `byte_offset`.
  Tensor(std::shared_ptr<Storage> storage, uint64_t byte_offset, DType dtype, Shape shape);

  // Views `bytes` bytes of memory the tensor does not own (e.g. a weight inside a read-only
  // memory-mapped file), zero-copy. `owner` is kept alive as long as any view exists; it may
  // be null when the caller guarantees the memory outlives every view. Fails when the shape
  // needs more than `bytes` or `data` is not aligned to the element size.
  static Tensor wrap(const void* data, uint64_t bytes, DType dtype, Shape shape, Device device,
                     std::shared_ptr<const void> owner);
  // Like wrap, for memory the tensor's users may write.
  static Tensor wrap_mutable(void* data, uint64_t bytes, DType dtype, Shape shape, Device device,
                             std::shared_ptr<const void> owner);

  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  const Strides& strides() const { return strides_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  // Size of dimension `d`; negative `d` counts from the end.
  int64_t dim(int d) const;
  int64_t numel() const { return shape_numel(shape_); }
  Device device() const { return storage_ ? storage_->device() : Device::cpu(); }
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  uint64_t byte_offset() const { return offset_; }
  bool is_contiguous() const;
  // Bytes of the elements when stored densely.
  uint64_t nbytes() const;

  // First element. Strided tensors are read through strides(); block-quantized tensors are
  // dense rows of blocks.
  const std::byte* bytes() const { return storage_->data() + offset_; }
  // Fails when the storage is read-only.
  std::byte* mutable_bytes() const;
  // Typed access; fails when T's size does not match the element size.
  template <typename T>
  const T* data() const {
    check_element_size(sizeof(T));
    return reinterpret_cast<const T*>(bytes());
  }
  template <typename T>
  T* mutable_data() const {
    check_element_size(sizeof(T));
    return reinterpret_cast<T*>(mutable_bytes());
  }

  // Same elements, new shape; one dimension may be -1. Needs a contiguous tensor.
  Tensor reshape(Shape shape) const;
  // Elements [start, start+length) of dimension `d`.
  Tensor narrow(int d, int64_t start, int64_t length) const;
  // Dimensions reordered (output dim i is input dim dims[i]) by swapping strides; no copy.
  Tensor permuted(const std::vector<int>& dims) const;
  // Broadcast to `shape` (NumPy rules: dimensions of size 1 repeat with stride 0, missing
  // leading dimensions are added); no copy.
  Tensor expand(const Shape& shape) const;

  // "F32[2, 320, 64, 64]", or "none" for an undefined tensor.
  std::string describe() const;

 private:
  Tensor(std::shared_ptr<Storage> storage, uint64_t byte_offset, DType dtype, Shape shape,
         Strides strides);
  void check_element_size(size_t bytes) const;
  // Byte distance of `elems` elements; fails when it splits a quantization block.
  uint64_t elements_to_bytes(int64_t elems, const char* op) const;

  std::shared_ptr<Storage> storage_;
  uint64_t offset_ = 0;
  DType dtype_ = DType::F32;
  Shape shape_;
  Strides strides_;
};

}  // namespace ebb
