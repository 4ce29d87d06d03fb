#pragma once
// A span of bytes on one device that tensors view. Whoever made it decides what happens when
// the last view goes away: an arena block returns to its cache, a wrapped memory-mapped file
// drops its keep-alive, and so on.
#include <cstddef>
#include <cstdint>
#include <functional>

#include "tensor/device.h"

namespace ebb {

class Storage {
 public:
  // `writable` is false for memory the process must not write (a read-only file mapping).
  Storage(std::byte* data, uint64_t bytes, Device device, bool writable,
          std::function<void()> release)
      : data_(data),
        bytes_(bytes),
        device_(device),
        writable_(writable),
        release_(std::move(release)) {}
  ~Storage() {
    if (release_) release_();
  }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  std::byte* data() const { return data_; }
  uint64_t bytes() const { return bytes_; }
  Device device() const { return device_; }
  bool writable() const { return writable_; }

 private:
  std::byte* data_;
  uint64_t bytes_;
  Device device_;
  bool writable_;
  std::function<void()> release_;
};

}  // namespace ebb
