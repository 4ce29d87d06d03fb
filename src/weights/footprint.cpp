#include "weights/footprint.h"

#include <algorithm>
#include <map>

#include "weights/block_key.h"

namespace ebb {

uint64_t device_tensor_bytes(const IndexedTensor& t, WeightFormat format) {
  const uint64_t bytes =
      format == WeightFormat::F32 ? t.info.elements() * sizeof(float) : t.info.nbytes;
  return (bytes + kDeviceTensorAlignment - 1) / kDeviceTensorAlignment * kDeviceTensorAlignment;
}

std::vector<ComponentFootprint> component_footprints(const ModelSource& source,
                                                     const MemoryPlan& plan) {
  std::vector<ComponentFootprint> out;
  for (const Component& c : source.components()) {
    if (c.name == "other") continue;
    ComponentFootprint f;
    f.name = c.name;
    const WeightFormat format = plan.format_of(c.name);
    std::map<std::string_view, uint64_t> blocks;
    for (uint32_t ti : c.tensors) {
      const IndexedTensor& t = source.tensors()[ti];
      const uint64_t bytes = device_tensor_bytes(t, format);
      blocks[block_key(t.info.name)] += bytes;
      f.bytes += bytes;
    }
    f.blocks = blocks.size();
    for (const auto& [key, bytes] : blocks) f.largest_block = std::max(f.largest_block, bytes);
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace ebb
