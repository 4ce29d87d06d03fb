#include "tensor/tensor.h"

#include <utility>

#include "core/checked_math.h"
#include "core/error.h"

namespace ebb {

uint64_t dense_bytes(DType dtype, const Shape& shape, std::string_view op) {
  uint64_t elems = 1;
  for (int64_t d : shape) {
    if (d < 0) fail("{}: negative dimension in shape {}", op, shape_str(shape));
    auto next = checked_mul(elems, static_cast<uint64_t>(d));
    if (!next) fail("{}: shape {} has too many elements", op, shape_str(shape));
    elems = *next;
  }
  // Every row of a quantized tensor is whole blocks, so rows can be addressed on their own.
  const uint32_t block = dtype_info(dtype).block_elems;
  if (block > 1 && !shape.empty() && shape.back() % block != 0)
    fail("{}: rows of {} elements in shape {} are not whole {} blocks of {}", op, shape.back(),
         shape_str(shape), dtype_name(dtype), block);
  auto bytes = dtype_bytes(dtype, elems);
  if (!bytes)
    fail("{}: {} elements of shape {} are not whole {} blocks of {}", op, elems, shape_str(shape),
         dtype_name(dtype), dtype_info(dtype).block_elems);
  return *bytes;
}

namespace {

Tensor wrap_bytes(std::byte* data, uint64_t bytes, DType dtype, Shape shape, Device device,
                  std::shared_ptr<const void> owner, bool writable) {
  const DTypeInfo& info = dtype_info(dtype);
  // Quantized blocks are read bytewise; plain elements need their natural alignment.
  const uint64_t align = info.quantized ? 1 : info.block_bytes;
  if (reinterpret_cast<uintptr_t>(data) % align != 0)
    fail("wrap: {} data at address {} is not aligned to {} bytes", dtype_name(dtype),
         static_cast<const void*>(data), align);
  auto storage = std::make_shared<Storage>(data, bytes, device, writable,
                                           [owner = std::move(owner)]() mutable { owner.reset(); });
  return Tensor(std::move(storage), 0, dtype, std::move(shape));
}

}  // namespace

Tensor::Tensor(std::shared_ptr<Storage> storage, uint64_t byte_offset, DType dtype, Shape shape)
    : storage_(std::move(storage)), offset_(byte_offset), dtype_(dtype), shape_(std::move(shape)) {
  const uint64_t need = dense_bytes(dtype_, shape_, "tensor");
  const uint64_t have = storage_->bytes();
  if (offset_ > have || need > have - offset_)
    fail("tensor: {}{} needs {} bytes at offset {} but its storage holds {}", dtype_name(dtype_),
         shape_str(shape_), need, offset_, have);
  strides_ = contiguous_strides(shape_);
}

Tensor::Tensor(std::shared_ptr<Storage> storage, uint64_t byte_offset, DType dtype, Shape shape,
               Strides strides)
    : storage_(std::move(storage)),
      offset_(byte_offset),
      dtype_(dtype),
      shape_(std::move(shape)),
      strides_(std::move(strides)) {}

Tensor Tensor::wrap(const void* data, uint64_t bytes, DType dtype, Shape shape, Device device,
                    std::shared_ptr<const void> owner) {
  // The const is restored by the storage's writable flag: mutable_bytes() refuses.
  return wrap_bytes(static_cast<std::byte*>(const_cast<void*>(data)), bytes, dtype,
                    std::move(shape), device, std::move(owner), false);
}

Tensor Tensor::wrap_mutable(void* data, uint64_t bytes, DType dtype, Shape shape, Device device,
                            std::shared_ptr<const void> owner) {
  return wrap_bytes(static_cast<std::byte*>(data), bytes, dtype, std::move(shape), device,
                    std::move(owner), true);
}

int64_t Tensor::dim(int d) const {
  return shape_[normalize_dim(d, rank(), "dim")];
}

bool Tensor::is_contiguous() const {
  int64_t step = 1;
  for (size_t i = shape_.size(); i-- > 0;) {
    if (shape_[i] != 1 && strides_[i] != step) return false;
    step *= shape_[i];
  }
  return true;
}

uint64_t Tensor::nbytes() const {
  return dense_bytes(dtype_, shape_, "nbytes");
}

std::byte* Tensor::mutable_bytes() const {
  if (!storage_->writable()) fail("tensor {} lives in read-only memory", describe());
  return storage_->data() + offset_;
}

void Tensor::check_element_size(size_t bytes) const {
  const DTypeInfo& info = dtype_info(dtype_);
  if (info.quantized ? bytes != 1 : bytes != info.block_bytes)
    fail("tensor {}: read as {}-byte elements", describe(), bytes);
}

uint64_t Tensor::elements_to_bytes(int64_t elems, const char* op) const {
  const DTypeInfo& info = dtype_info(dtype_);
  if (elems % info.block_elems != 0)
    fail("{}: element offset {} splits a {} block of {} in {}", op, elems, dtype_name(dtype_),
         info.block_elems, describe());
  return static_cast<uint64_t>(elems / info.block_elems) * info.block_bytes;
}

Tensor Tensor::reshape(Shape shape) const {
  if (!is_contiguous()) fail("reshape: {} is not contiguous", describe());
  int inferred = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1 && inferred < 0) {
      inferred = static_cast<int>(i);
    } else if (shape[i] < 0) {
      fail("reshape: {} to {}: bad dimension", describe(), shape_str(shape));
    } else {
      known *= shape[i];
    }
  }
  if (inferred >= 0 && known > 0 && numel() % known == 0) shape[inferred] = numel() / known;
  if (shape_numel(shape) != numel() || (inferred >= 0 && shape[inferred] < 0))
    fail("reshape: {} cannot hold {} elements as {}", describe(), numel(), shape_str(shape));
  return Tensor(storage_, offset_, dtype_, std::move(shape));
}

Tensor Tensor::narrow(int d, int64_t start, int64_t length) const {
  const int k = normalize_dim(d, rank(), "narrow");
  if (start < 0 || length < 0 || start > shape_[k] || length > shape_[k] - start)
    fail("narrow: [{}, {}) of dimension {} is outside {}", start, start + length, k, describe());
  if (dtype_info(dtype_).quantized && k == rank() - 1 && length != shape_[k])
    fail("narrow: cannot cut the rows of block-quantized {}", describe());
  Shape shape = shape_;
  shape[k] = length;
  const uint64_t offset = offset_ + elements_to_bytes(start * strides_[k], "narrow");
  return Tensor(storage_, offset, dtype_, std::move(shape), strides_);
}

Tensor Tensor::permuted(const std::vector<int>& dims) const {
  if (static_cast<int>(dims.size()) != rank())
    fail("permute: {} dimensions given for {}", dims.size(), describe());
  if (dtype_info(dtype_).quantized) fail("permute: {} is block-quantized", describe());
  std::vector<bool> seen(dims.size(), false);
  Shape shape(dims.size());
  Strides strides(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) {
    const int k = normalize_dim(dims[i], rank(), "permute");
    if (seen[k]) fail("permute: dimension {} repeats in the order for {}", k, describe());
    seen[k] = true;
    shape[i] = shape_[k];
    strides[i] = strides_[k];
  }
  return Tensor(storage_, offset_, dtype_, std::move(shape), std::move(strides));
}

Tensor Tensor::expand(const Shape& shape) const {
  const int lead = static_cast<int>(shape.size()) - rank();
  if (lead < 0) fail("expand: {} has more dimensions than {}", describe(), shape_str(shape));
  if (dtype_info(dtype_).quantized) fail("expand: {} is block-quantized", describe());
  Strides strides(shape.size(), 0);
  for (int i = 0; i < rank(); ++i) {
    if (shape_[i] == shape[lead + i])
      strides[lead + i] = strides_[i];
    else if (shape_[i] != 1)
      fail("expand: {} does not broadcast to {}", describe(), shape_str(shape));
  }
  return Tensor(storage_, offset_, dtype_, shape, std::move(strides));
}

std::string Tensor::describe() const {
  if (!defined()) return "none";
  return fmt::format("{}{}", dtype_name(dtype_), shape_str(shape_));
}

}  // namespace ebb
