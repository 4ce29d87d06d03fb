#if __has_include(<cudnn.h>)

#include "backend/cuda/cudnn_library.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include "core/error.h"

namespace ebb::cuda {
namespace {

constexpr const char* kSoname = "libcudnn.so.9";

struct Loaded {
  CudnnLibrary library;
  bool ok = false;
  std::string why_not;
};

Loaded load() {
  Loaded l;
  void* handle = dlopen(kSoname, RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* error = dlerror();
    l.why_not = error ? error : fmt::format("{} not found", kSoname);
    return l;
  }
  CudnnLibrary& lib = l.library;
#define EBB_CUDNN_LOAD(name)                                                       \
  lib.name = reinterpret_cast<decltype(lib.name)>(dlsym(handle, #name));           \
  if (!lib.name) {                                                                 \
    l.why_not = fmt::format("{} has no {} (a cuDNN 9 is needed)", kSoname, #name); \
    return l;                                                                      \
  }
  EBB_CUDNN_FUNCTIONS(EBB_CUDNN_LOAD)
#undef EBB_CUDNN_LOAD
  // CUDNN_VERSION is major·10000 + minor·100 + patch from cuDNN 9 on.
  const size_t v = lib.cudnnGetVersion();
  lib.version = fmt::format("{}.{}.{}", v / 10000, v / 100 % 100, v % 100);
  if (v / 10000 != 9) {
    l.why_not = fmt::format("{} reports version {}, not 9.x", kSoname, lib.version);
    return l;
  }
  l.ok = true;
  return l;
}

}  // namespace

const CudnnLibrary* cudnn_library(std::string& why_not) {
  static const Loaded loaded = load();
  why_not = loaded.why_not;
  return loaded.ok ? &loaded.library : nullptr;
}

void check(const CudnnLibrary& lib, cudnnStatus_t status, const char* what) {
  if (status != CUDNN_STATUS_SUCCESS)
    fail("cuDNN: {} failed: {} (without --cudnn conv2d does not use cuDNN)", what,
         lib.cudnnGetErrorString(status));
}

}  // namespace ebb::cuda

#endif
