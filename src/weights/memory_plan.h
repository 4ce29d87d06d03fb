#pragma once
// A memory plan: where each component's weights live, when they load, when they leave and what
// happens to their page-cache pages. Every memory feature (eager load, sequential load,
// free-after-stage, lazy-load eviction, no-mmap, offload, block streaming) is one setting of
// this struct, read by the weight store; model code never sees it.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "io/page_cache.h"

namespace ebb {

// What a component's kernels read: the file's own dtype (zero-copy from the mapping, kernels
// dequantize per block themselves) or f32.
enum class WeightFormat { AsStored, F32 };

// The pipeline's stages, in the order txt2img runs them; the store acts at their boundaries.
enum class Stage { TextEncoders, Diffusion, Vae };
const char* stage_name(Stage stage);
// The stage that runs a component ("clip_l" → TextEncoders); "other" and unknown names have
// none (false).
bool stage_of(std::string_view component, Stage& stage);

enum class LoadWhen {
  FirstUse,    // the whole component at its first lease (default)
  AtStart,     // every component when the store is made (--eager-load)
  StageBegin,  // the stage's components when it begins (--sequential-load)
};

enum class Release {
  Never,       // stays loaded for later generations (default, --params-backend cpu)
  AfterStage,  // dropped when its stage ends (--free-params-immediately, --sequential-load)
  AfterUse,    // a block dropped when its last lease ends, read again next time
               // (--params-backend disk)
};

// Where the compute reads a component's weights.
enum class WeightPlacement {
  Host,      // the mapping or an owned host buffer
  Device,    // uploaded whole to the device
  Streamed,  // uploaded block by block; as many blocks as the budget allows stay resident
};

struct MemoryPlan {
  WeightFormat default_format = WeightFormat::AsStored;
  std::map<std::string, WeightFormat, std::less<>> component_format;

  LoadWhen load = LoadWhen::FirstUse;
  Release release = Release::Never;
  // Per component ("clip_l") or per group ("clip": every text encoder, "diffusion", "vae").
  std::map<std::string, Release, std::less<>> component_release;
  // --lazy-load: page-cache pages of a released component are dropped (MADV_DONTNEED +
  // POSIX_FADV_DONTNEED) and what the kernel kept is recorded.
  bool evict_page_cache = false;

  bool use_mmap = true;    // --no-mmap: owned host buffers read from the file
  bool direct_io = false;  // owned reads bypass the page cache (O_DIRECT)
  // Components resident on a device, from owned reads: consecutive blocks are read as one
  // group of up to this many bytes (a larger block alone), two groups in flight at once, each
  // in a pinned buffer of its size. The reader's queue drains once per group: at 64 MiB a cold
  // SDXL load ran at 88% of dd's rate, at 256 MiB at 107% (docs/benchmarks.md, session 7).
  uint64_t load_group_bytes = uint64_t(256) << 20;
  MmapFlags page_cache;  // SD_MMAP_FLAGS / --page-cache hints (opt-in)

  std::map<std::string, WeightPlacement, std::less<>> placement;  // default Host
  // When device copies go (--offload-to-cpu: AfterStage; the host copy stays).
  Release device_release = Release::Never;
  int prefetch_depth = 1;  // streamed blocks uploading ahead of the one computing
  // Streamed components: bytes of blocks that may stay resident across steps.
  uint64_t resident_block_bytes = UINT64_MAX;

  WeightFormat format_of(std::string_view component) const;
  Release release_of(std::string_view component) const;
  WeightPlacement placement_of(std::string_view component) const;
};

// The group name --params-backend and --backend use for a component: "clip" for text
// encoders, "diffusion" for diffusion_model, the name itself otherwise.
std::string_view component_group(std::string_view component);

}  // namespace ebb
