#include "app/memory_flags.h"

#include "core/error.h"

namespace ebb {
namespace {

constexpr std::string_view kSpace = " \t";

std::string_view trim(std::string_view s) {
  const size_t first = s.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(kSpace) - first + 1);
}

Release params_backend_release(std::string_view value, std::string_view entry) {
  if (value == "cpu") return Release::Never;
  if (value == "disk") return Release::AfterUse;
  fail("--params-backend: \"{}\": \"{}\" is not disk or cpu", entry, value);
}

bool known_params_key(std::string_view key) {
  for (std::string_view k :
       {"clip", "diffusion", "vae", "clip_l", "clip_h", "clip_g", "t5xxl", "diffusion_model"})
    if (key == k) return true;
  return false;
}

void check_conflicts(const MemoryFlags& f) {
  const auto conflict = [](const char* a, const char* b, const char* why) {
    fail("{} and {} contradict each other: {}", a, b, why);
  };
  if (f.sequential_load && f.eager_load)
    conflict("--sequential-load", "--eager-load",
             "sequential load loads each stage just before it runs and releases it after, eager "
             "load loads everything at start and keeps it");
  if (f.lazy_load && f.eager_load)
    conflict("--lazy-load", "--eager-load",
             "lazy load releases each component after its stage, eager load keeps every "
             "component loaded");
  if (f.free_params_immediately && f.eager_load)
    conflict("--free-params-immediately", "--eager-load",
             "one releases weights after their stage, the other keeps them warm for the next "
             "image");
  if (f.mmap && f.no_mmap)
    conflict("--mmap", "--no-mmap", "weights come either from the mapping or from owned buffers");
  if (f.direct_io && f.mmap)
    conflict("--direct-io", "--mmap",
             "direct I/O reads weights into owned buffers past the page cache; --mmap serves "
             "them from the mapping");
  if (f.stream_layers && f.offload_to_cpu)
    conflict("--stream-layers", "--offload-to-cpu",
             "streaming already keeps weights on the host and uploads blocks as they run; "
             "choose one");
  if (f.stream_layers && f.max_vram.empty())
    fail(
        "--stream-layers needs a device budget (--max-vram GiB): the budget decides how many "
        "blocks stay resident and how many stream");
  if (f.layer_prefetch_depth && !f.stream_layers)
    fail("--layer-prefetch-depth applies to --stream-layers, which is not given");
  if (f.layer_prefetch_depth && (*f.layer_prefetch_depth < 0 || *f.layer_prefetch_depth > 16))
    fail("--layer-prefetch-depth {} is outside 0 to 16", *f.layer_prefetch_depth);
  if (!f.memory.empty() && f.memory != "auto")
    fail("--memory \"{}\": the only value is auto", f.memory);
}

}  // namespace

std::map<std::string, Release, std::less<>> parse_params_backend(std::string_view value) {
  std::map<std::string, Release, std::less<>> out;
  const std::string_view whole = trim(value);
  if (whole.find('=') == std::string_view::npos) {
    out[""] = params_backend_release(whole, whole);
    return out;
  }
  while (!value.empty()) {
    const size_t comma = value.find(',');
    const std::string_view entry = trim(value.substr(0, comma));
    value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
    if (entry.empty()) continue;
    const size_t eq = entry.find('=');
    if (eq == std::string_view::npos)
      fail("--params-backend: \"{}\": expected COMPONENT=disk|cpu beside other entries", entry);
    const std::string_view key = trim(entry.substr(0, eq));
    if (!known_params_key(key))
      fail(
          "--params-backend: \"{}\": unknown component \"{}\" (clip, diffusion, vae, clip_l, "
          "clip_h, clip_g, t5xxl)",
          entry, key);
    if (!out.emplace(std::string(key), params_backend_release(trim(entry.substr(eq + 1)), entry))
             .second)
      fail("--params-backend: component \"{}\" is given twice", key);
  }
  return out;
}

void add_memory_flags(CLI::App& cmd, MemoryFlags& f) {
  const char* group = "Memory";
  cmd.add_flag("--eager-load,--eager-load-params", f.eager_load,
               "Load every component at start and keep it warm for every image")
      ->group(group);
  cmd.add_flag("--free-params-immediately", f.free_params_immediately,
               "Release each component's weights when its stage ends")
      ->group(group);
  cmd.add_option("--params-backend", f.params_backend,
                 "Where weights wait between uses: cpu (kept) or disk (dropped after each use, "
                 "read again); per component too: clip=disk,diffusion=cpu")
      ->group(group);
  cmd.add_flag("--sequential-load", f.sequential_load,
               "Text encoders, diffusion model, VAE: each loads, runs and is released before "
               "the next")
      ->group(group);
  cmd.add_flag("--lazy-load", f.lazy_load,
               "Free each component after its stage and drop its page-cache pages (implies "
               "SD_MMAP_FLAGS=dontneed)")
      ->group(group);
  cmd.add_flag("--mmap", f.mmap, "Serve weights from the memory-mapped file (the default)")
      ->group(group);
  cmd.add_flag("--no-mmap", f.no_mmap, "Read weights into owned buffers instead of mapping them")
      ->group(group);
  cmd.add_option("--page-cache", f.page_cache,
                 "Page-cache hints, as SD_MMAP_FLAGS: sequential,populate,willneed,dontneed")
      ->group(group);
  cmd.add_flag("--direct-io", f.direct_io,
               "Read weights with O_DIRECT into owned buffers, bypassing the page cache")
      ->group(group);
  cmd.add_flag("--offload-to-cpu", f.offload_to_cpu,
               "Keep weights in host memory; move each component to the device for its stage")
      ->group(group);
  cmd.add_flag("--stream-layers", f.stream_layers,
               "Stream diffusion-model blocks to the device; as many as --max-vram allows stay "
               "resident")
      ->group(group);
  cmd.add_option("--layer-prefetch-depth", f.layer_prefetch_depth,
                 "Blocks uploading ahead of the one computing (default 1)")
      ->group(group);
  cmd.add_option("--max-vram", f.max_vram,
                 "Device memory budget in GiB (negative: free memory minus that); turns the "
                 "planner on")
      ->group(group);
  cmd.add_option("--max-ram", f.max_ram,
                 "Host memory budget in GiB (default: the cgroup or system limit minus a margin)")
      ->group(group);
  cmd.add_flag("--auto-fit", f.auto_fit, "Let the planner pick the fastest plan within budget")
      ->group(group);
  cmd.add_option("--memory", f.memory, "auto: same as --auto-fit")->group(group);
  cmd.add_option("--memory-report", f.memory_report,
                 "Write the memory ledger and its summary as JSON to FILE")
      ->group(group);
  cmd.add_flag("--simulated-device", f.simulated_device,
               "Run on a simulated device (CPU compute, --max-vram budget, a copy thread) to "
               "try device plans without a GPU")
      ->group(group);
}

MemoryPlan memory_plan_from_flags(const MemoryFlags& f, const char* sd_mmap_flags,
                                  std::vector<std::string>& notes) {
  check_conflicts(f);
  MemoryPlan plan;
  if (f.eager_load) plan.load = LoadWhen::AtStart;
  if (f.sequential_load) {
    plan.load = LoadWhen::StageBegin;
    plan.release = Release::AfterStage;
  }
  if (f.free_params_immediately) plan.release = Release::AfterStage;
  if (!f.params_backend.empty()) {
    auto releases = parse_params_backend(f.params_backend);
    if (auto all = releases.find(""); all != releases.end()) {
      if (all->second == Release::AfterUse || plan.release == Release::Never)
        plan.release = all->second;
    } else {
      for (auto& [key, release] : releases)
        if (release == Release::AfterUse || plan.release == Release::Never)
          plan.component_release[key] = release;
    }
  }
  if (!f.page_cache.empty()) {
    try {
      plan.page_cache = parse_mmap_flags(f.page_cache);
    } catch (const Error& e) {
      fail("--page-cache: {}", e.what());
    }
  } else if (sd_mmap_flags) {
    plan.page_cache = parse_mmap_flags(sd_mmap_flags);
  }
  if (f.lazy_load) {
    plan.release = Release::AfterStage;
    plan.evict_page_cache = true;
    if (!plan.page_cache.dontneed)
      notes.push_back(
          "--lazy-load: each component is freed after its stage and its page-cache pages are "
          "dropped (implies SD_MMAP_FLAGS=dontneed)");
    plan.page_cache.dontneed = true;
  }
  plan.use_mmap = !f.no_mmap && !f.direct_io;
  plan.direct_io = f.direct_io;
  if (f.offload_to_cpu) plan.device_release = Release::AfterStage;
  if (f.layer_prefetch_depth) plan.prefetch_depth = *f.layer_prefetch_depth;
  return plan;
}

}  // namespace ebb
