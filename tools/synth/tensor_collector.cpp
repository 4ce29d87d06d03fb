#include "synth/tensor_collector.h"

#include <utility>

namespace ebb::synth {
namespace {

std::string join(const std::string& base, std::string_view part) {
  if (base.empty()) return std::string(part);
  std::string path = base;
  path += '.';
  path += part;
  return path;
}

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// Every 1-D weight in these models belongs to a GroupNorm or LayerNorm.
Init init_for(std::string_view name, size_t rank) {
  if (ends_with(name, ".bias") || ends_with(name, "_bias")) return Init::Bias;
  return rank <= 1 ? Init::NormWeight : Init::Weight;
}

}  // namespace

ModulePath ModulePath::child(std::string_view original_part,
                             std::string_view diffusers_part) const {
  return {join(original, original_part), join(diffusers, diffusers_part)};
}

void TensorCollector::add(const ModulePath& module, std::string_view leaf,
                          std::vector<int64_t> shape) {
  std::vector<int64_t> diffusers_shape = shape;
  add(module, leaf, std::move(shape), std::move(diffusers_shape));
}

void TensorCollector::add(const ModulePath& module, std::string_view leaf,
                          std::vector<int64_t> shape, std::vector<int64_t> diffusers_shape) {
  add_pair(join(module.original, leaf), join(module.diffusers, leaf), std::move(shape),
           std::move(diffusers_shape));
}

void TensorCollector::add_as(const std::string& original_name, const std::string& diffusers_name,
                             std::vector<int64_t> shape) {
  std::vector<int64_t> diffusers_shape = shape;
  add_pair(original_name, diffusers_name, std::move(shape), std::move(diffusers_shape));
}

void TensorCollector::add_pair(const std::string& original_name, const std::string& diffusers_name,
                               std::vector<int64_t> shape, std::vector<int64_t> diffusers_shape) {
  const Init init = init_for(original_name, shape.size());
  diffusers_.push_back({diffusers_name, std::move(diffusers_shape), init, prefix_ + original_name});
  original_.push_back({original_name, std::move(shape), init, prefix_ + original_name});
}

void TensorCollector::linear(const ModulePath& module, int64_t out, int64_t in, bool bias) {
  add(module, "weight", {out, in});
  if (bias) add(module, "bias", {out});
}

void TensorCollector::conv(const ModulePath& module, int64_t out, int64_t in, int64_t kernel) {
  add(module, "weight", {out, in, kernel, kernel});
  add(module, "bias", {out});
}

void TensorCollector::norm(const ModulePath& module, int64_t channels) {
  add(module, "weight", {channels});
  add(module, "bias", {channels});
}

void TensorCollector::original_only(const std::string& name, std::vector<int64_t> shape,
                                    std::optional<Init> init) {
  const Init resolved = init.value_or(init_for(name, shape.size()));
  original_.push_back({name, std::move(shape), resolved, prefix_ + name});
}

void TensorCollector::diffusers_only(const std::string& name, std::vector<int64_t> shape,
                                     Init init) {
  diffusers_.push_back({name, std::move(shape), init, ""});
}

void TensorCollector::diffusers_slice(const std::string& name, std::vector<int64_t> shape,
                                      const std::string& original_name, uint64_t element_offset) {
  const Init init = init_for(original_name, shape.size());
  diffusers_.push_back({name, std::move(shape), init, prefix_ + original_name, element_offset});
}

void TensorCollector::diffusers_transposed(const std::string& name, std::vector<int64_t> shape,
                                           const std::string& original_name) {
  const Init init = init_for(original_name, shape.size());
  diffusers_.push_back({name, std::move(shape), init, prefix_ + original_name, 0, true});
}

}  // namespace ebb::synth
