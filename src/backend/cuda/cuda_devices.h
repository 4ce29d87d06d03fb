#pragma once
#include <string>
#include <vector>

#include "backend/device_info.h"

namespace ebb {

// Every CUDA device the driver reports. When there is none (no driver, no GPU), returns an
// empty list and explains why in `why_none`.
std::vector<DeviceInfo> cuda_devices(std::string& why_none);

}  // namespace ebb
