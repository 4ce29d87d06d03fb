#pragma once
// How many bytes each component takes where its compute reads it, block by block, computed from
// the tensor index alone: what the planner sizes plans with before anything is loaded, and what
// the store allocates on a device.
#include <cstdint>
#include <string>
#include <vector>

#include "io/model_source.h"
#include "weights/memory_plan.h"

namespace ebb {

// Device allocations of a block pack its tensors at this alignment.
inline constexpr uint64_t kDeviceTensorAlignment = 256;

// Bytes one tensor takes in the format the compute reads (f32 conversion or as stored),
// aligned for packing into a device block.
uint64_t device_tensor_bytes(const IndexedTensor& tensor, WeightFormat format);

struct ComponentFootprint {
  std::string name;
  uint64_t bytes = 0;
  uint64_t largest_block = 0;
  size_t blocks = 0;
};

// Every component the pipeline runs ("other" left out), in the source's order.
std::vector<ComponentFootprint> component_footprints(const ModelSource& source,
                                                     const MemoryPlan& plan);

}  // namespace ebb
