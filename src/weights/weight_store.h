#pragma once
// The weight store: the only way model code reaches weights. A module asks for a block (the
// tensors of a component under one name prefix) and holds an RAII lease; while the lease lives
// the weights it reads are resident where its compute runs. Where weights live, when they load
// and when they leave is the store's memory plan (weights/memory_plan.h), never the model's
// business; the pipeline tells the store where its stages begin and end.
//
// Residency is kept per block (weights/block_key.h: a UNet input block, a transformer layer):
// on the host, a tensor whose file dtype is what the consumer reads is served zero-copy from the
// mapping; otherwise (conversion to f32, or --no-mmap) it has an owned host buffer. Device
// placements upload blocks through a DeviceTransfer; streamed components keep as many blocks
// resident as the plan allows and upload the rest ahead of use into an upload ring
// (weights/upload_ring.h), predicting the order from the previous pass. Streamed from owned
// reads, their blocks are read ahead on a reader thread (weights/block_reader.h). Compute is
// ordered after an upload on the device, so the thread enqueuing block i never waits for block
// i+1's copy.
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backend/device_transfer.h"
#include "io/direct_reader.h"
#include "io/model_source.h"
#include "tensor/device.h"
#include "weights/block_reader.h"
#include "weights/ledger.h"
#include "weights/memory_plan.h"
#include "weights/residency_choice.h"
#include "weights/stream_order.h"

namespace ebb {

struct Weight {
  const IndexedTensor* tensor = nullptr;
  DType dtype = DType::F32;
  std::span<const std::byte> bytes;
  bool zero_copy = false;  // bytes point into the file mapping
  Device device = Device::cpu();
  std::span<const int64_t> shape() const { return tensor->info.shape; }
  const std::string& name() const { return tensor->info.name; }
};

class WeightStore;

class WeightLease {
 public:
  WeightLease(WeightLease&& other) noexcept;
  WeightLease& operator=(WeightLease&&) = delete;
  WeightLease(const WeightLease&) = delete;
  ~WeightLease();

  // A weight of the leased block by its full name within the component; made resident on
  // first access and kept so until the lease ends.
  const Weight& get(std::string_view name) const;
  // nullptr when the block has no such tensor (optional weights such as biases).
  const Weight* find(std::string_view name) const;
  const std::string& component() const { return component_; }
  const std::string& block() const { return block_; }

 private:
  friend class WeightStore;
  WeightLease(WeightStore* store, std::string component, std::string block);
  WeightStore* store_;
  std::string component_, block_;
  mutable std::vector<uint32_t> pinned_;  // residency blocks this lease holds
};

// What the store did, for reports and tests.
struct WeightStoreStats {
  double load_seconds = 0;  // reading, converting and (synchronously) uploading
  // The host blocked ordering compute after a streamed block's upload (a GPU orders it on the
  // device: ~0) or waiting for its read.
  double upload_wait_seconds = 0;
  uint64_t uploads = 0;
  uint64_t uploaded_bytes = 0;
  uint64_t resident_block_bytes = 0;  // streamed components: blocks kept across steps
  // Streamed components, the last stage that measured its second step: the bytes of blocks the
  // planner placed resident, and of those resident after measuring.
  uint64_t planned_resident_bytes = 0;
  uint64_t replanned_resident_bytes = 0;
  uint64_t largest_streamed_block = 0;  // bytes on the device
  // Streamed blocks needed now that found no room in the upload ring and took fresh memory.
  uint64_t ring_misses = 0;
  uint64_t page_cache_kept = 0;  // bytes the kernel did not drop on eviction
};

class WeightStore {
 public:
  using Options = MemoryPlan;

  // `device` (may be null) receives components placed on it; it must outlive the store.
  WeightStore(const ModelSource& source, Ledger& ledger, Options options,
              DeviceTransfer* device = nullptr);
  ~WeightStore();
  WeightStore(const WeightStore&) = delete;
  WeightStore& operator=(const WeightStore&) = delete;

  // Fails when the component or the block does not exist (a model asking for weights the file
  // lacks: the message names the file set and what is missing), or when a model file changed
  // on disk since it was opened (before anything is read from it).
  WeightLease lease(std::string_view component, std::string_view block_prefix);

  // Stage boundaries, called by the pipeline: the plan loads (sequential), releases
  // (free-after-stage, offload) and evicts page-cache pages (lazy-load) here, and the ledger
  // gets a mark and residency samples.
  void begin_stage(Stage stage);
  void end_stage(Stage stage);
  // A sampler step finished: a ledger mark, a resident-memory sample and the device arena's
  // allocation count (steps that repeat the previous one's allocations take nothing new unless
  // a budget full to the last byte makes the arena trade size classes).
  void step_done();

  const ModelSource& source() const { return source_; }
  const MemoryPlan& plan() const { return plan_; }
  Ledger& ledger() { return ledger_; }
  int active_leases() const { return active_leases_; }
  WeightStoreStats stats() const { return stats_; }
  // A streamed stage's fourth step (its second, the measuring one, in stages of fewer steps),
  // the last stage's that ran one; empty before.
  const std::vector<MeasuredAcquisition>& measured_pass() const { return measured_pass_; }
  // Page-cache residency (mincore) of a component's byte ranges in its files.
  uint64_t page_cache_bytes(std::string_view component) const;

 private:
  struct Block;
  struct ComponentState;
  friend class WeightLease;

  const Weight* acquire(const WeightLease& lease, std::string_view name);
  void unpin(uint32_t block);
  ComponentState& state_of(std::string_view component);
  void load_component(ComponentState& c);
  void load_resident_from_reads(ComponentState& c);
  // Hands the two buffers resident loads read into back to the system.
  void release_load_buffers();
  void release_component(ComponentState& c);
  void pin(Block& b);
  void load_host(Block& b);
  void drop_host(Block& b);
  void upload(Block& b);
  // The bytes a block uploads from: its read buffer (waiting for the read) or, when it has
  // none, its host weights (loaded now; the result is null).
  BlockReader::Buffer host_bytes(Block& b);
  void upload_into(Block& b, BlockReader::Buffer buffer, std::shared_ptr<Storage> storage,
                   std::shared_ptr<TransferEvent> after);
  // Into the component's upload ring; false when the ring has no room for it now, unless
  // `needed_now` (then it goes to fresh arena memory).
  bool upload_streamed(Block& b, bool needed_now);
  bool reads_ahead(const Block& b) const;
  void request_read(Block& b);
  // Queues one read of `blocks` (their tensors as `layout` places them) on the reader thread,
  // into `into` or a fresh host buffer; each block uploads from its part of the buffer.
  void read_ahead(const std::vector<uint32_t>& blocks, ReadLayout layout, BlockReader::Buffer into);
  // Where the blocks' tensors land in one read buffer (checking first that their files are
  // unchanged).
  ReadLayout read_layout(const std::vector<uint32_t>& blocks) const;
  void drop_read(Block& b);
  bool uploads_repeatedly(const ComponentState& c) const;
  // Pins the component's byte ranges of the mapped files for the device's uploads.
  void pin_ranges(const ComponentState& c);
  void drop_device(Block& b);
  void acquire_streamed(Block& b);
  // Decides whether a streamed block stays resident across steps.
  void place(Block& b);
  // After the stage's second step, whose compute the component's timeline measured up to `end`:
  // residency by measured compute per byte, in what the budget has left beside the activations.
  void replan_residency(ComponentState& c, std::shared_ptr<ComputeMark> end);
  // A recorded step's acquisitions, whose compute the component's timeline measured up to
  // `end`, become measured_pass().
  void record_pass(ComponentState& c, const std::shared_ptr<ComputeMark>& end);
  void restore_planned_residency(ComponentState& c);
  // The device bytes of the component's largest block.
  uint64_t largest_block(const ComponentState& c) const;
  // Owned host bytes of the component's blocks whose uploads landed (waiting for them if `wait`).
  void drop_uploaded_host_bytes(const ComponentState& c, bool wait);
  DirectReader& reader_for(uint32_t file);
  void read_owned(const IndexedTensor& t, std::span<std::byte> dst);
  // Reads an unconverted block's tensors into one buffer; returns its bytes.
  uint64_t read_block(Block& b);
  void evict_page_cache(ComponentState& c);
  struct FileRange {
    uint32_t file;
    uint64_t begin, end;
  };
  std::vector<FileRange> file_ranges(const ComponentState& c) const;
  void sample_residency();
  void sample_rss();
  std::string device_name() const;

  const ModelSource& source_;
  Ledger& ledger_;
  MemoryPlan plan_;
  DeviceTransfer* device_;
  std::vector<ComponentState> components_;
  std::vector<Block> blocks_;
  std::vector<uint32_t> block_of_tensor_;  // parallel to source_.tensors()
  std::vector<Weight> host_, device_weights_;
  std::vector<std::unique_ptr<std::byte[]>> owned_;   // parallel to source_.tensors()
  std::vector<std::optional<DirectReader>> readers_;  // per file, --no-mmap
  StreamOrder stream_order_;
  WeightStoreStats stats_;
  std::vector<MeasuredAcquisition> measured_pass_;
  std::vector<uint32_t> measured_blocks_;  // parallel to measured_pass_
  int active_leases_ = 0;
  uint64_t resident_reserved_ = 0;  // resident streamed blocks in the arena's size classes
  // Resident components from owned reads: one buffer reading while the other uploads.
  std::array<BlockReader::Buffer, 2> load_buffers_;
  // Device components without the mapping; declared last so its thread stops first.
  std::unique_ptr<BlockReader> reader_;
};

}  // namespace ebb
