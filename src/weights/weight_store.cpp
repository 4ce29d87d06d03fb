#include "weights/weight_store.h"

#include "core/error.h"
#include "io/page_cache.h"
#include "tensor/dequantize.h"

namespace ebb {
namespace {

constexpr std::string_view kUnusedComponent = "other";

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

}  // namespace

WeightLease::WeightLease(WeightStore* store, std::string component, std::string block)
    : store_(store), component_(std::move(component)), block_(std::move(block)) {}

WeightLease::WeightLease(WeightLease&& other) noexcept
    : store_(other.store_),
      component_(std::move(other.component_)),
      block_(std::move(other.block_)) {
  other.store_ = nullptr;
}

WeightLease::~WeightLease() {
  if (store_) store_->release();
}

const Weight* WeightLease::find(std::string_view name) const {
  if (!starts_with(name, block_))
    fail("model asked for weight {} of {} through a lease on block \"{}\"", name, component_,
         block_);
  return store_->lookup(component_, name);
}

const Weight& WeightLease::get(std::string_view name) const {
  const Weight* w = find(name);
  if (!w) fail("the model files have no tensor {} in component {}", name, component_);
  return *w;
}

WeightStore::WeightStore(const ModelSource& source, Ledger& ledger, Options options)
    : source_(source), ledger_(ledger) {
  const auto& tensors = source.tensors();
  weights_.resize(tensors.size());
  for (const Component& c : source.components()) {
    if (c.name == kUnusedComponent) continue;
    auto fmt_it = options.component_format.find(c.name);
    WeightFormat format =
        fmt_it == options.component_format.end() ? options.default_format : fmt_it->second;
    uint64_t mapped = 0, converted = 0;
    for (uint32_t ti : c.tensors) {
      const IndexedTensor& t = tensors[ti];
      source.files()[t.file].mapping.check_unchanged();
      std::span<const std::byte> file_bytes = source.bytes(t);
      Weight& w = weights_[ti];
      w.tensor = &t;
      if (format == WeightFormat::AsStored || t.info.dtype == DType::F32) {
        w.dtype = t.info.dtype;
        w.bytes = file_bytes;
        w.zero_copy = true;
        // Loading at start, for a mapped tensor, is asking the kernel to read it in now.
        advise(source.files()[t.file].mapping, t.info.offset, t.info.nbytes, Hint::WillNeed);
        mapped += file_bytes.size();
        continue;
      }
      const uint64_t elems = t.info.elements();
      const uint64_t bytes = elems * sizeof(float);
      auto buffer = std::make_unique<std::byte[]>(bytes);
      dequantize_to_f32(t.info.dtype, file_bytes.data(), reinterpret_cast<float*>(buffer.get()),
                        elems);
      w.dtype = DType::F32;
      w.bytes = {buffer.get(), bytes};
      converted += bytes;
      owned_.push_back(std::move(buffer));
    }
    if (mapped) ledger_.record(LedgerEvent::Map, MemoryTag::Weights, "file", c.name, "", mapped);
    if (converted)
      ledger_.record(LedgerEvent::Load, MemoryTag::Weights, "cpu", c.name, "", converted);
  }
}

WeightStore::~WeightStore() {
  for (const Component& c : source_.components()) {
    uint64_t owned = 0;
    for (uint32_t ti : c.tensors)
      if (weights_[ti].tensor && !weights_[ti].zero_copy) owned += weights_[ti].bytes.size();
    if (owned) ledger_.record(LedgerEvent::Free, MemoryTag::Weights, "cpu", c.name, "", owned);
  }
}

const Weight* WeightStore::lookup(std::string_view component, std::string_view name) const {
  const IndexedTensor* t = source_.find(component, name);
  if (!t) return nullptr;
  return &weights_[t - source_.tensors().data()];
}

WeightLease WeightStore::lease(std::string_view component, std::string_view block_prefix) {
  const Component* c = source_.component(component);
  if (!c || component == kUnusedComponent) fail("the model files have no {} component", component);
  bool any = false;
  for (uint32_t ti : c->tensors)
    if (starts_with(source_.tensors()[ti].info.name, block_prefix)) {
      any = true;
      break;
    }
  if (!any)
    fail("the model files have no tensors under {} in component {}", block_prefix, component);
  ++active_leases_;
  return WeightLease(this, std::string(component), std::string(block_prefix));
}

}  // namespace ebb
