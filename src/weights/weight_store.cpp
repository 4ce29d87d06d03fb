#include "weights/weight_store.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <tuple>
#include <unordered_map>

#include "core/error.h"
#include "io/page_cache.h"
#include "tensor/dequantize.h"
#include "weights/block_key.h"
#include "weights/footprint.h"
#include "weights/process_memory.h"
#include "weights/residency_choice.h"
#include "weights/upload_ring.h"

namespace ebb {
namespace {

constexpr std::string_view kUnusedComponent = "other";

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

uint64_t align_up(uint64_t n) {
  return (n + kDeviceTensorAlignment - 1) / kDeviceTensorAlignment * kDeviceTensorAlignment;
}

class Stopwatch {
 public:
  explicit Stopwatch(double& total) : total_(total), start_(Clock::now()) {}
  ~Stopwatch() { total_ += std::chrono::duration<double>(Clock::now() - start_).count(); }
  Stopwatch(const Stopwatch&) = delete;
  Stopwatch& operator=(const Stopwatch&) = delete;

 private:
  using Clock = std::chrono::steady_clock;
  double& total_;
  Clock::time_point start_;
};

// SD_MMAP_FLAGS=populate: fault the range in now, as MAP_POPULATE would have at open.
void prefault(std::span<const std::byte> bytes) {
  constexpr size_t kPage = 4096;
  volatile std::byte sink{};
  for (size_t i = 0; i < bytes.size(); i += kPage) sink = bytes[i];
  (void)sink;
}

// Of the budget, the least that measured residency leaves unused.
constexpr uint64_t kResidencyMarginDivisor = 32;

// Reads in flight on the weight store's reader thread (DirectReadOptions::queue_depth).
constexpr uint32_t kReaderQueueDepth = 16;

// The stage's step (from 0) whose acquisitions reports get: the measuring step (the second) may
// still take fresh device memory and wait on the host where later steps do not, so a steady one
// after it, when the stage runs that long.
constexpr int kReportedStep = 3;

}  // namespace

struct WeightStore::Block {
  std::string key;
  uint32_t component = 0;
  std::vector<uint32_t> tensors;
  bool host_ready = false;
  uint64_t host_owned = 0;
  // Owned reads of a whole block: one aligned buffer its tensors view (host_ points into it).
  std::unique_ptr<std::byte, decltype(&std::free)> read_buffer{nullptr, &std::free};
  uint64_t device_size = 0;
  std::shared_ptr<Storage> device_storage;
  std::shared_ptr<TransferEvent> upload;  // reset once seen landed when it holds a read buffer
  std::optional<uint64_t> ring_offset;    // streamed, not resident: its upload-ring region
  std::shared_future<BlockReader::Buffer> read;  // streamed from owned reads: its bytes
  std::vector<uint64_t> read_at;                 // parallel to tensors: where in the buffer
  uint64_t read_bytes = 0;
  bool resident = false;  // streamed: stays across steps
  bool placed = false;    // streamed: resident or not was decided
  int pins = 0;
};

struct WeightStore::ComponentState {
  const Component* component = nullptr;
  std::string name;
  WeightFormat format = WeightFormat::AsStored;
  Release release = Release::Never;
  WeightPlacement placement = WeightPlacement::Host;
  std::vector<uint32_t> blocks;
  bool loaded = false;
  std::unique_ptr<UploadRing> ring;  // streamed: made at its first streamed upload
  uint64_t placed_bytes = 0;         // streamed: blocks placed so far, as the arena holds them
  // Streamed: blocks in the order they were placed, whether each was resident as placed (kept
  // while measured residency replaces it), the stage's sampler steps so far, and the measuring
  // step's marks around each acquisition's upload wait.
  std::vector<uint32_t> placed_order;
  std::vector<bool> planned_resident;
  int steps = 0;
  bool replanned = false;
  struct Acquisition {
    uint32_t block;
    std::shared_ptr<ComputeMark> before_wait, after_wait;  // none on the simulated device
    uint64_t others;  // device bytes all but weights held as it was acquired
  };
  std::vector<Acquisition> timeline;
  bool measuring() const { return steps == 1 && !replanned; }
  // The measuring step and kReportedStep have their acquisitions recorded for reports.
  bool recording() const { return measuring() || steps == kReportedStep; }
};

// ---- leases ----

WeightLease::WeightLease(WeightStore* store, std::string component, std::string block)
    : store_(store), component_(std::move(component)), block_(std::move(block)) {}

WeightLease::WeightLease(WeightLease&& other) noexcept
    : store_(other.store_),
      component_(std::move(other.component_)),
      block_(std::move(other.block_)),
      pinned_(std::move(other.pinned_)) {
  other.store_ = nullptr;
}

WeightLease::~WeightLease() {
  if (!store_) return;
  for (uint32_t b : pinned_) store_->unpin(b);
  --store_->active_leases_;
}

const Weight* WeightLease::find(std::string_view name) const {
  if (!starts_with(name, block_))
    fail("model asked for weight {} of {} through a lease on block \"{}\"", name, component_,
         block_);
  return store_->acquire(*this, name);
}

const Weight& WeightLease::get(std::string_view name) const {
  const Weight* w = find(name);
  if (!w) fail("the model files have no tensor {} in component {}", name, component_);
  return *w;
}

// ---- the store ----

WeightStore::WeightStore(const ModelSource& source, Ledger& ledger, Options options,
                         DeviceTransfer* device)
    : source_(source), ledger_(ledger), plan_(std::move(options)), device_(device) {
  const auto& tensors = source.tensors();
  block_of_tensor_.resize(tensors.size());
  host_.resize(tensors.size());
  device_weights_.resize(tensors.size());
  owned_.resize(tensors.size());
  readers_.resize(source.files().size());
  for (const Component& c : source.components()) {
    if (c.name == kUnusedComponent) continue;
    ComponentState state;
    state.component = &c;
    state.name = c.name;
    state.format = plan_.format_of(c.name);
    state.release = plan_.release_of(c.name);
    state.placement = plan_.placement_of(c.name);
    if (state.placement != WeightPlacement::Host && !device_)
      fail("the memory plan puts {} on a device, but no device was given", c.name);
    const auto component_index = static_cast<uint32_t>(components_.size());
    std::unordered_map<std::string_view, uint32_t> by_key;
    for (uint32_t ti : c.tensors) {
      const IndexedTensor& t = tensors[ti];
      host_[ti].tensor = device_weights_[ti].tensor = &t;
      const std::string_view key = block_key(t.info.name);
      auto [it, added] = by_key.try_emplace(key, static_cast<uint32_t>(blocks_.size()));
      if (added) {
        blocks_.push_back({});
        blocks_.back().key = std::string(key);
        blocks_.back().component = component_index;
        state.blocks.push_back(it->second);
      }
      Block& b = blocks_[it->second];
      b.tensors.push_back(ti);
      b.device_size += device_tensor_bytes(t, state.format);
      block_of_tensor_[ti] = it->second;
    }
    components_.push_back(std::move(state));
  }
  for (const ComponentState& c : components_)
    if (c.placement == WeightPlacement::Streamed)
      for (uint32_t b : c.blocks)
        stats_.largest_streamed_block =
            std::max(stats_.largest_streamed_block, blocks_[b].device_size);
  if (device_ && plan_.use_mmap)
    for (const ComponentState& c : components_)
      if (uploads_repeatedly(c)) pin_ranges(c);
  if (device_ && !plan_.use_mmap &&
      std::any_of(components_.begin(), components_.end(),
                  [](const ComponentState& c) { return c.placement != WeightPlacement::Host; })) {
    std::vector<std::string> paths;
    for (const SourceFile& f : source_.files()) paths.push_back(f.path);
    DirectReadOptions options;
    options.use_o_direct = plan_.direct_io;
    // Reads of whole blocks and groups land in place (no bounce buffer), so a deeper queue
    // costs no memory; with the larger groups above it kept the device machines' disks busy.
    options.queue_depth = kReaderQueueDepth;
    reader_ = std::make_unique<BlockReader>(
        std::move(paths), options,
        [device = device_](uint64_t n) { return device->host_buffer(n); });
  }
  if (plan_.load == LoadWhen::AtStart) {
    for (ComponentState& c : components_) load_component(c);
    release_load_buffers();
  }
}

// A streamed component uploads its blocks from the mapping every step, an offloaded one every
// stage: the device may pin that range of each file once, so the uploads need neither a copy
// through staging memory nor registering the pages again each time. An offloaded component is
// not pinned where the plan drops its pages from the page cache after use: pinned pages cannot
// be dropped.
bool WeightStore::uploads_repeatedly(const ComponentState& c) const {
  if (c.placement == WeightPlacement::Streamed) return true;
  return c.placement == WeightPlacement::Device && plan_.device_release == Release::AfterStage &&
         !plan_.evict_page_cache && !plan_.page_cache.dontneed;
}

void WeightStore::pin_ranges(const ComponentState& c) {
  std::map<uint32_t, std::pair<const std::byte*, const std::byte*>> by_file;
  for (uint32_t b : c.blocks)
    for (uint32_t ti : blocks_[b].tensors) {
      const IndexedTensor& t = source_.tensors()[ti];
      const std::span<const std::byte> bytes = source_.bytes(t);
      auto [it, added] = by_file.try_emplace(t.file, bytes.data(), bytes.data() + bytes.size());
      it->second.first = std::min(it->second.first, bytes.data());
      it->second.second = std::max(it->second.second, bytes.data() + bytes.size());
    }
  for (const auto& [file, range] : by_file)
    device_->pin_host({range.first, static_cast<size_t>(range.second - range.first)});
}

WeightStore::~WeightStore() {
  reader_.reset();  // no read lands in a buffer while the blocks go
  for (ComponentState& c : components_)
    for (uint32_t b : c.blocks) {
      drop_device(blocks_[b]);
      drop_host(blocks_[b]);
    }
}

std::string WeightStore::device_name() const {
  return device_ ? device_->name() : "cpu";
}

WeightStore::ComponentState& WeightStore::state_of(std::string_view component) {
  for (ComponentState& c : components_)
    if (c.name == component) return c;
  fail("the model files have no {} component", component);
}

WeightLease WeightStore::lease(std::string_view component, std::string_view block_prefix) {
  ComponentState& c = state_of(component);
  bool any = false;
  for (uint32_t ti : c.component->tensors)
    if (starts_with(source_.tensors()[ti].info.name, block_prefix)) {
      any = true;
      break;
    }
  if (!any)
    fail("the model files have no tensors under {} in component {}", block_prefix, component);
  if (!c.loaded && c.release != Release::AfterUse) load_component(c);
  ++active_leases_;
  return WeightLease(this, std::string(component), std::string(block_prefix));
}

const Weight* WeightStore::acquire(const WeightLease& lease, std::string_view name) {
  const IndexedTensor* t = source_.find(lease.component(), name);
  if (!t) return nullptr;
  const auto ti = static_cast<uint32_t>(t - source_.tensors().data());
  const uint32_t b = block_of_tensor_[ti];
  if (std::find(lease.pinned_.begin(), lease.pinned_.end(), b) == lease.pinned_.end()) {
    pin(blocks_[b]);
    lease.pinned_.push_back(b);
  }
  return components_[blocks_[b].component].placement == WeightPlacement::Host
             ? &host_[ti]
             : &device_weights_[ti];
}

void WeightStore::pin(Block& b) {
  switch (components_[b.component].placement) {
    case WeightPlacement::Host:
      load_host(b);
      break;
    case WeightPlacement::Device:
      if (!b.device_storage) upload(b);
      device_->compute_after(*b.upload);
      break;
    case WeightPlacement::Streamed:
      acquire_streamed(b);
      break;
  }
  ++b.pins;  // only once resident: a failed load leaves nothing pinned
}

void WeightStore::unpin(uint32_t index) {
  Block& b = blocks_[index];
  if (--b.pins > 0) return;
  ComponentState& c = components_[b.component];
  if (c.release != Release::AfterUse) return;
  drop_device(b);
  drop_host(b);
}

// ---- loading and releasing ----

void WeightStore::load_component(ComponentState& c) {
  c.loaded = true;
  // Streamed from owned reads (--no-mmap, --direct-io): the reader thread reads a block ahead
  // of its upload and its buffer goes once it landed, so host memory holds only the blocks in
  // flight.
  if (c.placement == WeightPlacement::Streamed && !plan_.use_mmap) return;
  // Offloaded components go up when their stage begins, never all at once.
  const bool resident =
      c.placement == WeightPlacement::Device && plan_.device_release == Release::Never;
  if (resident && !plan_.use_mmap && reader_ && c.format == WeightFormat::AsStored) {
    load_resident_from_reads(c);
    return;
  }
  // A resident component's owned host copy is never read again once it landed (a later reload
  // reads the file anew), so each block's copy goes after its upload, one block behind the
  // reads: host memory holds two blocks, not the component.
  Block* landing = nullptr;
  const auto drop_landed = [&] {
    if (!landing) return;
    landing->upload->wait();
    drop_host(*landing);
    landing = nullptr;
  };
  for (uint32_t b : c.blocks) {
    load_host(blocks_[b]);
    if (!resident || blocks_[b].device_storage) continue;
    upload(blocks_[b]);
    if (plan_.use_mmap) continue;
    drop_landed();
    landing = &blocks_[b];
  }
  drop_landed();
}

// Reading and uploading overlap: the reader thread reads the next group of blocks into one of
// two pinned buffers while the group before uploads by DMA from the other, so the load runs at
// the disk's rate. Consecutive blocks are read as one group of up to plan_.load_group_bytes (a
// larger block alone), so the reader's queue drains once per group, not once per small block.
// A buffer is read into again only once the uploads from it landed.
void WeightStore::load_resident_from_reads(ComponentState& c) {
  Stopwatch watch(stats_.load_seconds);
  std::vector<std::vector<uint32_t>> groups;
  uint64_t group_bytes = 0;
  for (uint32_t b : c.blocks) {
    if (blocks_[b].device_storage) continue;
    uint64_t bytes = 0;
    for (uint32_t ti : blocks_[b].tensors) bytes += source_.tensors()[ti].info.nbytes;
    if (groups.empty() || group_bytes + bytes > plan_.load_group_bytes) {
      groups.emplace_back();
      group_bytes = 0;
    }
    groups.back().push_back(b);
    group_bytes += bytes;
  }
  if (groups.empty()) return;
  std::vector<ReadLayout> layouts;
  uint64_t largest = 0;
  for (const std::vector<uint32_t>& g : groups) {
    layouts.push_back(read_layout(g));
    largest = std::max(largest, layouts.back().bytes);
  }
  if (!load_buffers_[0] || load_buffers_[0]->bytes() < largest) {
    release_load_buffers();
    for (BlockReader::Buffer& buffer : load_buffers_) buffer = device_->host_buffer(largest);
  }
  const auto landed = [&](const std::vector<uint32_t>& group) {
    for (uint32_t b : group) {
      if (blocks_[b].upload) blocks_[b].upload->wait();  // then it holds no buffer
      drop_read(blocks_[b]);
    }
  };
  try {
    read_ahead(groups[0], std::move(layouts[0]), load_buffers_[0]);
    for (size_t g = 0; g < groups.size(); ++g) {
      for (uint32_t b : groups[g]) upload(blocks_[b]);  // the first waits for the group's read
      if (g > 0) landed(groups[g - 1]);
      if (g + 1 < groups.size())
        read_ahead(groups[g + 1], std::move(layouts[g + 1]), load_buffers_[(g + 1) % 2]);
    }
    landed(groups.back());
  } catch (...) {
    // A read still queued lands in a buffer nobody waits for.
    for (const std::vector<uint32_t>& g : groups) landed(g);
    throw;
  }
}

void WeightStore::release_load_buffers() {
  if (!load_buffers_[0]) return;
  load_buffers_ = {};
  reader_->wait_idle();  // its last job lets go of a buffer
  device_->release_host_buffers();
}

void WeightStore::release_component(ComponentState& c) {
  for (uint32_t b : c.blocks) {
    if (blocks_[b].pins > 0)
      fail("the memory plan releases {} at the end of its stage while block {} is leased", c.name,
           blocks_[b].key);
    drop_device(blocks_[b]);
    drop_host(blocks_[b]);
  }
  restore_planned_residency(c);
  c.ring.reset();
  c.loaded = false;
  if (plan_.evict_page_cache || plan_.page_cache.dontneed) evict_page_cache(c);
}

DirectReader& WeightStore::reader_for(uint32_t file) {
  std::optional<DirectReader>& reader = readers_[file];
  if (!reader) {
    DirectReadOptions options;
    options.use_o_direct = plan_.direct_io;
    reader.emplace(DirectReader::open(source_.files()[file].path, options));
  }
  return *reader;
}

void WeightStore::read_owned(const IndexedTensor& t, std::span<std::byte> dst) {
  reader_for(t.file).read(t.info.offset, dst);
}

// A block whose tensors need no conversion is read as a whole: its tensors lie back to back in
// the file, so a few large reads (pipelined by the reader) replace one small read per tensor.
// The buffer is packed, holding exactly the tensors' bytes, so host memory is what the plan
// counted.
uint64_t WeightStore::read_block(Block& b) {
  std::vector<ReadRange> pieces;
  for (uint32_t ti : b.tensors) {
    const IndexedTensor& t = source_.tensors()[ti];
    pieces.push_back({t.file, t.info.offset, t.info.nbytes, 0});
  }
  const ReadLayout layout = layout_block_read(pieces, /*packed=*/true);
  constexpr uint64_t kAlign = 4096;
  const uint64_t bytes = std::max<uint64_t>((layout.bytes + kAlign - 1) / kAlign * kAlign, kAlign);
  b.read_buffer.reset(static_cast<std::byte*>(std::aligned_alloc(kAlign, bytes)));
  if (!b.read_buffer) fail("out of host memory reading {} ({} bytes)", b.key, bytes);
  for (const ReadRange& r : layout.ranges)
    reader_for(r.file).read(r.offset, {b.read_buffer.get() + r.at, r.bytes});
  for (size_t k = 0; k < b.tensors.size(); ++k) {
    const IndexedTensor& t = source_.tensors()[b.tensors[k]];
    Weight& w = host_[b.tensors[k]];
    w.dtype = t.info.dtype;
    w.bytes = {b.read_buffer.get() + layout.piece_at[k], t.info.nbytes};
    w.zero_copy = false;
  }
  return layout.bytes;
}

void WeightStore::load_host(Block& b) {
  if (b.host_ready) return;
  Stopwatch watch(stats_.load_seconds);
  const ComponentState& c = components_[b.component];
  std::vector<uint32_t> checked;
  uint64_t mapped = 0, owned = 0;
  const auto converts = [&](uint32_t ti) {
    return c.format == WeightFormat::F32 && source_.tensors()[ti].info.dtype != DType::F32;
  };
  const bool whole_block =
      !plan_.use_mmap && std::none_of(b.tensors.begin(), b.tensors.end(), converts);
  for (uint32_t ti : b.tensors) {
    const IndexedTensor& t = source_.tensors()[ti];
    const MappedFile& file = source_.files()[t.file].mapping;
    if (std::find(checked.begin(), checked.end(), t.file) == checked.end()) {
      file.check_unchanged();
      checked.push_back(t.file);
    }
    if (whole_block) continue;
    if (plan_.page_cache.sequential) advise(file, t.info.offset, t.info.nbytes, Hint::Sequential);
    // Loading a mapped tensor eagerly is asking the kernel to read it in now. Owned reads
    // (--no-mmap, --direct-io) read it themselves: readahead would read it a second time.
    if (plan_.page_cache.willneed || (plan_.load == LoadWhen::AtStart && plan_.use_mmap))
      advise(file, t.info.offset, t.info.nbytes, Hint::WillNeed);
    Weight& w = host_[ti];
    const bool convert = converts(ti);
    if (!convert && plan_.use_mmap) {
      w.dtype = t.info.dtype;
      w.bytes = source_.bytes(t);
      w.zero_copy = true;
      if (plan_.page_cache.populate) prefault(w.bytes);
      mapped += w.bytes.size();
      continue;
    }
    const uint64_t elems = t.info.elements();
    const uint64_t bytes = convert ? elems * sizeof(float) : t.info.nbytes;
    auto buffer = std::make_unique<std::byte[]>(bytes);
    if (!convert) {
      read_owned(t, {buffer.get(), bytes});
    } else if (plan_.use_mmap) {
      dequantize_to_f32(t.info.dtype, source_.bytes(t).data(),
                        reinterpret_cast<float*>(buffer.get()), elems);
    } else {
      std::vector<std::byte> raw(t.info.nbytes);
      read_owned(t, raw);
      dequantize_to_f32(t.info.dtype, raw.data(), reinterpret_cast<float*>(buffer.get()), elems);
    }
    w.dtype = convert ? DType::F32 : t.info.dtype;
    w.bytes = {buffer.get(), bytes};
    w.zero_copy = false;
    owned_[ti] = std::move(buffer);
    owned += bytes;
  }
  if (whole_block) owned = read_block(b);
  if (mapped) ledger_.record(LedgerEvent::Map, MemoryTag::Weights, "file", c.name, b.key, mapped);
  if (owned) ledger_.record(LedgerEvent::Load, MemoryTag::Weights, "cpu", c.name, b.key, owned);
  b.host_owned = owned;
  b.host_ready = true;
}

void WeightStore::drop_host(Block& b) {
  if (!b.host_ready) return;
  for (uint32_t ti : b.tensors) {
    // A weight served from the mapping is released by unmapping its pages: the process's RSS
    // drops, the page cache keeps them (evicting those is --lazy-load's business).
    if (host_[ti].zero_copy && !host_[ti].bytes.empty()) {
      const IndexedTensor& t = source_.tensors()[ti];
      advise(source_.files()[t.file].mapping, t.info.offset, t.info.nbytes, Hint::Unmap);
    }
    owned_[ti].reset();
    host_[ti].bytes = {};
  }
  b.read_buffer.reset();
  if (b.host_owned)
    ledger_.record(LedgerEvent::Free, MemoryTag::Weights, "cpu", components_[b.component].name,
                   b.key, b.host_owned);
  b.host_owned = 0;
  b.host_ready = false;
}

BlockReader::Buffer WeightStore::host_bytes(Block& b) {
  if (!b.read.valid()) {
    load_host(b);
    return nullptr;
  }
  Stopwatch wait(stats_.upload_wait_seconds);
  return b.read.get();
}

void WeightStore::upload(Block& b) {
  BlockReader::Buffer buffer = host_bytes(b);
  const ComponentState& c = components_[b.component];
  upload_into(b, std::move(buffer), device_->allocate(b.device_size, c.name + "." + b.key),
              nullptr);
}

void WeightStore::upload_into(Block& b, BlockReader::Buffer buffer,
                              std::shared_ptr<Storage> storage,
                              std::shared_ptr<TransferEvent> after) {
  const ComponentState& c = components_[b.component];
  std::vector<UploadPiece> pieces;
  uint64_t offset = 0;
  const Device device = device_->backend().device();
  for (size_t k = 0; k < b.tensors.size(); ++k) {
    const uint32_t ti = b.tensors[k];
    const IndexedTensor& t = source_.tensors()[ti];
    std::byte* dst = storage->data() + offset;
    if (buffer) {
      pieces.push_back({{buffer->data() + b.read_at[k], t.info.nbytes}, dst, buffer});
      device_weights_[ti] = {&t, t.info.dtype, {dst, t.info.nbytes}, false, device};
    } else {
      const Weight& h = host_[ti];
      pieces.push_back({h.bytes, dst});
      device_weights_[ti] = {h.tensor, h.dtype, {dst, h.bytes.size()}, false, device};
    }
    offset += align_up(device_weights_[ti].bytes.size());
  }
  b.upload = device_->upload(std::move(pieces), std::move(after));
  b.device_storage = std::move(storage);
  ledger_.record(LedgerEvent::Upload, MemoryTag::Weights, device_name(), c.name, b.key,
                 b.device_size);
  ++stats_.uploads;
  stats_.uploaded_bytes += b.device_size;
}

void WeightStore::drop_device(Block& b) {
  drop_read(b);  // a block read ahead that will not upload now
  if (!b.device_storage) return;
  ComponentState& c = components_[b.component];
  if (b.ring_offset) {
    // The ring keeps the memory: the next upload into it waits for the compute that read this
    // block, and the copy queue's order puts it after any copy still writing this one.
    c.ring->release(*b.ring_offset);
    b.ring_offset.reset();
  } else if (b.upload) {
    b.upload->wait();  // the copy queue may still be writing into memory the arena takes back
  }
  b.upload.reset();
  b.device_storage.reset();
  if (b.resident) {
    stats_.resident_block_bytes -= b.device_size;
    resident_reserved_ -= Arena::block_size(b.device_size);
  }
  ledger_.record(LedgerEvent::Free, MemoryTag::Weights, device_name(), c.name, b.key,
                 b.device_size);
}

// ---- streaming ----

uint64_t WeightStore::largest_block(const ComponentState& c) const {
  uint64_t largest = 0;
  for (uint32_t s : c.blocks) largest = std::max(largest, blocks_[s].device_size);
  return largest;
}

// Once a streamed component's blocks left the device: the next stage starts from the planner's
// placement and measures again (its images may be of another size).
void WeightStore::restore_planned_residency(ComponentState& c) {
  for (size_t i = 0; i < c.planned_resident.size(); ++i)
    blocks_[c.placed_order[i]].resident = c.planned_resident[i];
  c.planned_resident.clear();
  c.timeline.clear();
  c.steps = 0;
  c.replanned = false;
}

void WeightStore::acquire_streamed(Block& b) {
  const auto index = static_cast<uint32_t>(&b - blocks_.data());
  stream_order_.acquired(index);
  ComponentState& c = components_[b.component];
  if (!c.ring) {
    c.ring = std::make_unique<UploadRing>(
        *device_, upload_ring_bytes(plan_.prefetch_depth, align_up(largest_block(c))), c.name);
  }
  // The prefetch window: this block and the ones predicted to follow it while the streamed ones
  // fit in the upload ring together, so after a large block several small ones upload ahead.
  // Resident blocks in between are walked over, so the copy queue keeps working while they
  // compute instead of idling until the streamed block before the next upload is reached. A
  // block that comes twice within the window is in it once.
  std::vector<uint32_t> window{index};
  uint64_t streamed = b.resident ? 0 : align_up(b.device_size);
  size_t k = 1;
  for (; k <= stream_order_.pass_length(); ++k) {
    const std::optional<uint32_t> n = stream_order_.ahead(k);
    if (!n) break;
    if (std::find(window.begin(), window.end(), *n) != window.end()) continue;
    const Block& next = blocks_[*n];
    if (!next.resident) {  // or not placed yet
      if (streamed + align_up(next.device_size) > c.ring->bytes()) break;
      streamed += align_up(next.device_size);
    }
    window.push_back(*n);
  }
  // Streamed blocks outside the window go first, so the uploads below find room in the ring.
  for (uint32_t s : c.blocks) {
    Block& other = blocks_[s];
    if (other.device_storage && !other.resident && other.pins == 0 &&
        std::find(window.begin(), window.end(), s) == window.end())
      drop_device(other);
  }
  // Reads run one block ahead of the uploads, so an upload seldom waits for its read.
  if (reader_) {
    for (uint32_t w : window) request_read(blocks_[w]);
    if (const std::optional<uint32_t> after = stream_order_.ahead(k)) request_read(blocks_[*after]);
  }
  // Streamed blocks claim the ring in the order they compute: once one finds no room, the ones
  // after it wait until the window reaches them again.
  bool ring_full = false;
  for (uint32_t w : window) {
    Block& next = blocks_[w];
    if (next.device_storage) continue;
    if (!next.placed) place(next);
    if (next.resident) {
      upload(next);
      stats_.resident_block_bytes += next.device_size;
      resident_reserved_ += Arena::block_size(next.device_size);
    } else if (!ring_full) {
      ring_full = !upload_streamed(next, w == index);
    }
  }
  std::shared_ptr<ComputeMark> before;
  uint64_t others = 0;
  if (c.recording()) {
    before = device_->compute_mark();
    const ArenaStats s = device_->backend().arena().stats();
    others = s.in_use_total - s.in_use[static_cast<int>(MemoryTag::Weights)];
  }
  if (b.upload) {
    Stopwatch wait(stats_.upload_wait_seconds);
    device_->compute_after(*b.upload);
  }
  if (c.recording()) {
    std::shared_ptr<ComputeMark> after = before ? device_->compute_mark() : nullptr;
    c.timeline.push_back({index, std::move(before), std::move(after), others});
  }
  drop_uploaded_host_bytes(c, false);
}

// Owned host bytes go once their upload was seen landed (the upload's event holds a read buffer
// too, so it goes with them).
void WeightStore::drop_uploaded_host_bytes(const ComponentState& c, bool wait) {
  if (plan_.use_mmap) return;
  for (uint32_t s : c.blocks) {
    Block& other = blocks_[s];
    if (!other.upload) continue;
    if (wait) other.upload->wait();
    if (!other.upload->done()) continue;
    other.upload.reset();
    drop_read(other);
    drop_host(other);
  }
}

// Resident blocks are spread over the pass: a block (placed in the order of the first pass) is
// resident when that brings the resident bytes nearer to the plan's share of the bytes placed so
// far. A resident prefix left the copy queue idle while it computed, once it had filled the
// upload ring; spread out, each resident block computes while the next streamed one uploads.
// Counted as the arena holds them (its size classes round up), so the plan's bytes hold.
void WeightStore::place(Block& b) {
  ComponentState& c = components_[b.component];
  uint64_t total = 0;
  for (uint32_t s : c.blocks) total += Arena::block_size(blocks_[s].device_size);
  const uint64_t size = Arena::block_size(b.device_size);
  c.placed_bytes += size;
  c.placed_order.push_back(static_cast<uint32_t>(&b - blocks_.data()));
  const double share =
      std::min(1.0, static_cast<double>(plan_.resident_block_bytes) / static_cast<double>(total));
  b.resident = resident_reserved_ + size <= plan_.resident_block_bytes &&
               spread_keeps(resident_reserved_, size, c.placed_bytes, share);
  b.placed = true;
}

// Measured in the stage's second step (the first uploads everything and builds kernels): the
// device time from each acquisition's upload wait to the next acquisition's, which is the
// block's compute, and the step's peak device memory. The planner sized the resident blocks
// with an activation estimate that must hold before anything ran, for every model and dtype, so
// it is generous (SDXL at 1024² in f16 reserves 1.1 GiB for about 0.45 GiB); what the budget
// has free beyond the measured peak and a margin holds more resident blocks, and residency goes
// to the blocks with the least compute per byte (weights/residency_choice.h). Only where
// weights live changes, never what is computed; the upload ring stays as it was.
void WeightStore::replan_residency(ComponentState& c, std::shared_ptr<ComputeMark> end) {
  c.replanned = true;
  uint64_t limit = plan_.resident_block_bytes;
  Arena& arena = device_->backend().arena();
  if (const uint64_t budget = arena.budget(); budget != Arena::kUnlimited) {
    // The measured step's peak of everything together (weights as they were placed, the ring,
    // activations, scratch, uploads that found the ring full) and a margin free beside it: a
    // 32nd of the budget, and at least one streamed block, for an upload that finds the ring
    // full (its free bytes split at its end) where the measured step's did not. Where the plan
    // left less than that, residency shrinks to make room.
    const uint64_t peak = arena.stats().window_peak_total;
    const uint64_t margin =
        std::max(budget / kResidencyMarginDivisor, Arena::block_size(largest_block(c)));
    const auto room = static_cast<int64_t>(budget) - static_cast<int64_t>(peak + margin);
    limit = static_cast<uint64_t>(
        std::max<int64_t>(0, static_cast<int64_t>(resident_reserved_) + room));
  }
  record_pass(c, end);
  // Each block's compute, and the times the step needed it (repeats in a row count once).
  std::vector<std::optional<double>> compute(blocks_.size());
  std::vector<int> needed(blocks_.size(), 0);
  for (size_t k = 0; k < measured_pass_.size(); ++k) {
    const uint32_t index = measured_blocks_[k];
    if (k == 0 || measured_blocks_[k - 1] != index) ++needed[index];
    if (const std::optional<double> t = measured_pass_[k].compute_s)
      compute[index] = compute[index].value_or(0) + *t;
  }
  std::vector<BlockCost> pass;
  for (uint32_t index : c.placed_order)
    pass.push_back({Arena::block_size(blocks_[index].device_size), compute[index],
                    std::max(needed[index], 1)});
  const std::vector<bool> keep = choose_resident(pass, limit);
  c.planned_resident.clear();
  for (uint32_t index : c.placed_order) c.planned_resident.push_back(blocks_[index].resident);
  // Blocks leave residency first, so their memory is free before the new ones upload.
  for (bool joining : {false, true})
    for (size_t i = 0; i < keep.size(); ++i) {
      Block& b = blocks_[c.placed_order[i]];
      if (b.pins > 0 || b.resident == keep[i] || keep[i] != joining) continue;
      drop_device(b);  // it uploads as resident or streamed when next acquired
      b.resident = keep[i];
    }
  uint64_t planned = 0, resident = 0;
  for (size_t i = 0; i < keep.size(); ++i) {
    const uint64_t bytes = blocks_[c.placed_order[i]].device_size;
    planned += c.planned_resident[i] ? bytes : 0;
    resident += blocks_[c.placed_order[i]].resident ? bytes : 0;
  }
  for (size_t k = 0; k < measured_pass_.size(); ++k)
    measured_pass_[k].resident = blocks_[measured_blocks_[k]].resident;
  stats_.replanned_resident_bytes = resident;
  stats_.planned_resident_bytes = planned;
  ledger_.sample("resident_after_measuring", c.name, resident);
}

void WeightStore::record_pass(ComponentState& c, const std::shared_ptr<ComputeMark>& end) {
  measured_pass_.clear();
  measured_blocks_.clear();
  for (size_t k = 0; k < c.timeline.size(); ++k) {
    const ComponentState::Acquisition& a = c.timeline[k];
    const Block& b = blocks_[a.block];
    measured_blocks_.push_back(a.block);
    measured_pass_.push_back({b.key, b.device_size, std::nullopt, a.others, b.resident});
    const ComputeMark* next =
        k + 1 < c.timeline.size() ? c.timeline[k + 1].before_wait.get() : end.get();
    if (a.after_wait && next)
      measured_pass_.back().compute_s = std::max(0.0, next->seconds_since(*a.after_wait));
  }
  c.timeline.clear();
}

bool WeightStore::upload_streamed(Block& b, bool needed_now) {
  ComponentState& c = components_[b.component];
  std::optional<UploadRing::Claim> claim = c.ring->claim(b.device_size);
  if (!claim && needed_now) {
    // Blocks uploaded ahead make room for the one needed now (they upload again when reached),
    // so that fresh memory beyond the budget's plan is taken only past leased blocks.
    for (uint32_t s : c.blocks) {
      Block& other = blocks_[s];
      if (&other != &b && other.ring_offset && other.pins == 0) drop_device(other);
    }
    claim = c.ring->claim(b.device_size);
  }
  if (!claim) {
    if (!needed_now) return false;
    // The ring is full of leased blocks: fresh memory from the arena.
    ++stats_.ring_misses;
    upload(b);
    return true;
  }
  BlockReader::Buffer buffer;
  try {
    buffer = host_bytes(b);
  } catch (...) {
    c.ring->release(claim->offset);  // a failed read leaves the ring as it was
    throw;
  }
  b.ring_offset = claim->offset;
  upload_into(b, std::move(buffer), std::move(claim->storage), std::move(claim->after));
  return true;
}

// Streamed from owned reads, a block's tensors are read by the reader thread, unless the
// component converts them on the host (then load_host reads them when they upload).
bool WeightStore::reads_ahead(const Block& b) const {
  return reader_ && components_[b.component].placement == WeightPlacement::Streamed &&
         components_[b.component].format == WeightFormat::AsStored;
}

void WeightStore::request_read(Block& b) {
  if (!reads_ahead(b) || b.device_storage || b.read.valid()) return;
  const std::vector<uint32_t> one{static_cast<uint32_t>(&b - blocks_.data())};
  read_ahead(one, read_layout(one), nullptr);
}

void WeightStore::read_ahead(const std::vector<uint32_t>& blocks, ReadLayout layout,
                             BlockReader::Buffer into) {
  const std::shared_future<BlockReader::Buffer> read = reader_->read(layout, std::move(into));
  // Each block's share of the buffer is its tensors' bytes; the first also holds the padding
  // that keeps ranges at their file offset's alignment, so the shares add up to the buffer.
  uint64_t padding = layout.bytes;
  size_t at = 0;
  for (uint32_t index : blocks) {
    Block& b = blocks_[index];
    b.read_at.assign(layout.piece_at.begin() + static_cast<ptrdiff_t>(at),
                     layout.piece_at.begin() + static_cast<ptrdiff_t>(at + b.tensors.size()));
    at += b.tensors.size();
    b.read_bytes = 0;
    for (uint32_t ti : b.tensors) b.read_bytes += source_.tensors()[ti].info.nbytes;
    padding -= b.read_bytes;
    b.read = read;
  }
  blocks_[blocks.front()].read_bytes += padding;
  for (uint32_t index : blocks) {
    const Block& b = blocks_[index];
    ledger_.record(LedgerEvent::Load, MemoryTag::Weights, "cpu", components_[b.component].name,
                   b.key, b.read_bytes);
  }
}

ReadLayout WeightStore::read_layout(const std::vector<uint32_t>& blocks) const {
  std::vector<ReadRange> pieces;
  std::vector<uint32_t> checked;
  for (uint32_t index : blocks)
    for (uint32_t ti : blocks_[index].tensors) {
      const IndexedTensor& t = source_.tensors()[ti];
      if (std::find(checked.begin(), checked.end(), t.file) == checked.end()) {
        source_.files()[t.file].mapping.check_unchanged();
        checked.push_back(t.file);
      }
      pieces.push_back({t.file, t.info.offset, t.info.nbytes, 0});
    }
  return layout_block_read(pieces);
}

void WeightStore::drop_read(Block& b) {
  if (!b.read.valid()) return;
  b.read = {};
  ledger_.record(LedgerEvent::Free, MemoryTag::Weights, "cpu", components_[b.component].name, b.key,
                 b.read_bytes);
  b.read_bytes = 0;
}

// ---- stage boundaries ----

void WeightStore::begin_stage(Stage stage) {
  ledger_.mark(fmt::format("begin {}", stage_name(stage)));
  for (ComponentState& c : components_) {
    Stage s;
    if (!stage_of(c.name, s) || s != stage || c.release == Release::AfterUse) continue;
    if (plan_.load == LoadWhen::StageBegin && !c.loaded) load_component(c);
    // Offloaded components go back up as the stage begins; the copy queue runs ahead of the
    // compute, which waits per block only for what has not landed yet.
    if (c.placement == WeightPlacement::Device)
      for (uint32_t b : c.blocks)
        if (!blocks_[b].device_storage) upload(blocks_[b]);
  }
}

void WeightStore::end_stage(Stage stage) {
  release_load_buffers();
  sample_residency();  // before releasing: what the stage had resident at its end
  for (ComponentState& c : components_) {
    Stage s;
    if (!stage_of(c.name, s) || s != stage) continue;
    if (c.release == Release::AfterStage) {
      release_component(c);
    } else if (plan_.device_release == Release::AfterStage) {
      for (uint32_t b : c.blocks) drop_device(blocks_[b]);
      restore_planned_residency(c);
      c.ring.reset();
    }
    if (c.placement != WeightPlacement::Streamed) continue;
    stream_order_.end_stage();
    // Host bytes of the blocks still on the device go, and the reads ahead for a pass this stage
    // will not run.
    drop_uploaded_host_bytes(c, true);
    for (uint32_t b : c.blocks)
      if (!blocks_[b].device_storage) drop_read(blocks_[b]);
  }
  ledger_.mark(fmt::format("end {}", stage_name(stage)));
}

// ---- page cache ----

// A component's tensors as few file ranges as possible: they mostly lie back to back, and one
// mincore/madvise per range instead of per tensor keeps a stage end's residency sample (SDXL:
// 2515 tensors) off the device's critical path.
std::vector<WeightStore::FileRange> WeightStore::file_ranges(const ComponentState& c) const {
  std::vector<FileRange> ranges;
  for (uint32_t ti : c.component->tensors) {
    const IndexedTensor& t = source_.tensors()[ti];
    ranges.push_back({t.file, t.info.offset, t.info.offset + t.info.nbytes});
  }
  std::sort(ranges.begin(), ranges.end(), [](const FileRange& a, const FileRange& b) {
    return std::tie(a.file, a.begin) < std::tie(b.file, b.begin);
  });
  std::vector<FileRange> merged;
  for (const FileRange& r : ranges) {
    if (!merged.empty() && merged.back().file == r.file && r.begin <= merged.back().end)
      merged.back().end = std::max(merged.back().end, r.end);
    else
      merged.push_back(r);
  }
  return merged;
}

uint64_t WeightStore::page_cache_bytes(std::string_view component) const {
  uint64_t resident = 0;
  for (const ComponentState& c : components_)
    if (c.name == component)
      for (const FileRange& r : file_ranges(c))
        resident += resident_bytes(source_.files()[r.file].mapping, r.begin, r.end - r.begin);
  return resident;
}

void WeightStore::evict_page_cache(ComponentState& c) {
  uint64_t kept = 0;
  for (const FileRange& r : file_ranges(c))
    kept += evict_range(source_.files()[r.file].mapping, r.begin, r.end - r.begin);
  stats_.page_cache_kept += kept;
  ledger_.sample("page_cache_kept", c.name, kept);
  ledger_.sample("page_cache", c.name, kept);  // its residency from now on
}

void WeightStore::step_done() {
  ledger_.mark("step");
  sample_rss();
  if (!device_) return;
  for (ComponentState& c : components_) {
    if (c.placement != WeightPlacement::Streamed || !c.loaded || c.steps > kReportedStep) continue;
    if (++c.steps == 1) device_->backend().arena().restart_window();  // the measured step
    if (c.steps == 2 && !c.replanned) replan_residency(c, device_->compute_mark());
    if (c.steps == kReportedStep + 1) record_pass(c, device_->compute_mark());
  }
  ledger_.sample("device_allocations", device_name(),
                 device_->backend().arena().stats().device_allocations);
}

void WeightStore::sample_rss() {
  const ResidentMemory rss = resident_memory();
  ledger_.sample("rss_anon", "", rss.anon);
  ledger_.sample("rss_file", "", rss.file);
}

void WeightStore::sample_residency() {
  sample_rss();
  for (const ComponentState& c : components_)
    ledger_.sample("page_cache", c.name, page_cache_bytes(c.name));
}

}  // namespace ebb
