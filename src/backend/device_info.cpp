#include "backend/device_info.h"

#include <unistd.h>

#include <fstream>

#include "backend/backend_factory.h"

#ifdef EBB_HAVE_CUDA
#include "backend/cuda/cuda_devices.h"
#endif

namespace ebb {
namespace {

DeviceInfo cpu_device() {
  DeviceInfo cpu{"cpu", "CPU", 0, 0};
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) cpu.name = line.substr(colon + 2);
      break;
    }
  }
  long pages = sysconf(_SC_PHYS_PAGES), avail = sysconf(_SC_AVPHYS_PAGES);
  long page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) cpu.total_memory = uint64_t(pages) * uint64_t(page);
  if (avail > 0 && page > 0) cpu.free_memory = uint64_t(avail) * uint64_t(page);
  return cpu;
}

}  // namespace

std::vector<DeviceInfo> list_devices(std::vector<std::string>& notes) {
  std::vector<DeviceInfo> out{cpu_device()};
#ifdef EBB_HAVE_CUDA
  std::string why;
  for (auto& d : cuda_devices(why)) out.push_back(std::move(d));
  if (!why.empty())
    notes.push_back(why);
  else
    notes.push_back("conv2d on CUDA devices: " + cuda_conv2d_path({}) +
                    "; with --cudnn: " + cuda_conv2d_path({.use_cudnn = true}) +
                    "; attention: " + cuda_attention_path({}));
#else
  notes.push_back("this build of Ebb has no CUDA backend (configure with -DEBB_CUDA=ON)");
#endif
  return out;
}

}  // namespace ebb
