#pragma once
// Where generate computes: --backend, --device, --clip-on-cpu, --vae-on-cpu (placement, as
// stable-diffusion.cpp spells them), the CUDA backend's precision (--gpu-dtype, --tf32) and
// whether its conv2d uses cuDNN (--cudnn) and which kernel computes its attention (--attention).
// --max-vram, the device budget, is a memory flag (app/memory_flags.h).
#include <CLI/CLI.hpp>
#include <string>

#include "backend/backend_factory.h"
#include "weights/budget_flags.h"

namespace ebb {

struct DeviceFlags {
  PlacementFlags placement;
  std::string gpu_dtype = "f16";
  bool tf32 = false;
  bool cudnn = false;
  std::string attention = "auto";
  int threads = 0;
};

void add_device_flags(CLI::App& cmd, DeviceFlags& flags);

// The placement of every component and the options of the backends they run on; ebb::Error
// naming the flag for a bad value.
struct Devices {
  Placement placement;
  BackendOptions options;
};
// `max_vram`: --max-vram's value, "" when absent.
Devices resolve_devices(const DeviceFlags& flags, const std::string& max_vram);

// The one device of the text encoders; ebb::Error when --backend splits them.
const std::string& text_encoder_device(const Placement& placement);

}  // namespace ebb
