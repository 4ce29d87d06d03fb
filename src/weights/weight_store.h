#pragma once
// The weight store: the only way model code reaches weights. A module asks for a block (the
// tensors of a component under one name prefix) and holds an RAII lease; while the lease lives
// the block's weights are resident where its compute runs. Where weights live, when they load
// and when they leave is the store's plan, never the model's business.
//
// This first plan loads every component at construction into host memory. A tensor whose file
// dtype is what the consumer reads is served zero-copy from the mapping; otherwise it is
// converted once into an owned host buffer.
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/model_source.h"
#include "weights/ledger.h"

namespace ebb {

// What a component's kernels read: the file's own dtype (zero-copy from the mapping, kernels
// dequantize per block themselves) or f32.
enum class WeightFormat { AsStored, F32 };

struct Weight {
  const IndexedTensor* tensor = nullptr;
  DType dtype = DType::F32;
  std::span<const std::byte> bytes;
  bool zero_copy = false;  // bytes point into the file mapping
  std::span<const int64_t> shape() const { return tensor->info.shape; }
  const std::string& name() const { return tensor->info.name; }
};

class WeightStore;

class WeightLease {
 public:
  WeightLease(WeightLease&& other) noexcept;
  WeightLease& operator=(WeightLease&&) = delete;
  WeightLease(const WeightLease&) = delete;
  ~WeightLease();

  // A weight of the leased block by its full name within the component.
  const Weight& get(std::string_view name) const;
  // nullptr when the block has no such tensor (optional weights such as biases).
  const Weight* find(std::string_view name) const;
  const std::string& component() const { return component_; }
  const std::string& block() const { return block_; }

 private:
  friend class WeightStore;
  WeightLease(WeightStore* store, std::string component, std::string block);
  WeightStore* store_;
  std::string component_, block_;
};

class WeightStore {
 public:
  struct Options {
    WeightFormat default_format = WeightFormat::AsStored;
    std::map<std::string, WeightFormat, std::less<>> component_format;
  };

  WeightStore(const ModelSource& source, Ledger& ledger, Options options);
  ~WeightStore();
  WeightStore(const WeightStore&) = delete;
  WeightStore& operator=(const WeightStore&) = delete;

  // Fails when the component or the block does not exist (a model asking for weights the file
  // lacks: the message names the file set and what is missing).
  WeightLease lease(std::string_view component, std::string_view block_prefix);
  const ModelSource& source() const { return source_; }
  int active_leases() const { return active_leases_; }

 private:
  friend class WeightLease;
  const Weight* lookup(std::string_view component, std::string_view name) const;
  void release() { --active_leases_; }

  const ModelSource& source_;
  Ledger& ledger_;
  std::vector<Weight> weights_;                      // parallel to source_.tensors()
  std::vector<std::unique_ptr<std::byte[]>> owned_;  // converted copies
  int active_leases_ = 0;
};

}  // namespace ebb
