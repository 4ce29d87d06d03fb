// A CUDA injection library that records every memcpy and kernel of a process, and the runtime
// and driver calls that enqueued them, with CUPTI's activity API and writes them as CSV at exit,
// for machines without Nsight Systems:
//
//   CUDA_INJECTION64_PATH=libcupti_copy_trace.so EBB_COPY_TRACE=trace.csv ebb generate ...
//   bench/copy_queue_trace.py trace.csv
//
// Rows: kind (memcpy|kernel|api), start ns, end ns, bytes, stream (api: host thread), copy kind
// (api: the function's name), source memory kind (api: runtime or driver), correlation id (a
// memcpy or kernel has the id of the call that enqueued it, so its enqueue time is known).
#include <cupti.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace {

constexpr size_t kBufferBytes = size_t(8) << 20;
std::FILE* out = nullptr;
std::mutex out_mutex;

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = kBufferBytes;
  *max_records = 0;
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  std::lock_guard lock(out_mutex);
  CUpti_Activity* record = nullptr;
  while (cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
    if (record->kind == CUPTI_ACTIVITY_KIND_MEMCPY) {
      const auto* m = reinterpret_cast<const CUpti_ActivityMemcpy6*>(record);
      std::fprintf(
          out, "memcpy,%llu,%llu,%llu,%u,%u,%u,%u\n", static_cast<unsigned long long>(m->start),
          static_cast<unsigned long long>(m->end), static_cast<unsigned long long>(m->bytes),
          m->streamId, m->copyKind, m->srcKind, m->correlationId);
    } else if (record->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) {
      const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
      std::fprintf(out, "kernel,%llu,%llu,0,%u,0,0,%u\n", static_cast<unsigned long long>(k->start),
                   static_cast<unsigned long long>(k->end), k->streamId, k->correlationId);
    } else if (record->kind == CUPTI_ACTIVITY_KIND_RUNTIME ||
               record->kind == CUPTI_ACTIVITY_KIND_DRIVER) {
      const auto* a = reinterpret_cast<const CUpti_ActivityAPI*>(record);
      const bool driver = record->kind == CUPTI_ACTIVITY_KIND_DRIVER;
      const char* name = nullptr;
      if (cuptiGetCallbackName(driver ? CUPTI_CB_DOMAIN_DRIVER_API : CUPTI_CB_DOMAIN_RUNTIME_API,
                               a->cbid, &name) != CUPTI_SUCCESS)
        name = "?";
      std::fprintf(out, "api,%llu,%llu,0,%u,%s,%s,%u\n", static_cast<unsigned long long>(a->start),
                   static_cast<unsigned long long>(a->end), a->threadId, name,
                   driver ? "driver" : "runtime", a->correlationId);
    }
  }
  std::free(buffer);
}

void flush() {
  cuptiActivityFlushAll(1);
  std::lock_guard lock(out_mutex);
  std::fclose(out);
}

}  // namespace

extern "C" int InitializeInjection() {
  const char* path = std::getenv("EBB_COPY_TRACE");
  out = std::fopen(path ? path : "copy_trace.csv", "w");
  if (!out) return 0;
  cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed);
  cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMCPY);
  cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
  cuptiActivityEnable(CUPTI_ACTIVITY_KIND_RUNTIME);
  cuptiActivityEnable(CUPTI_ACTIVITY_KIND_DRIVER);
  std::atexit(flush);
  return 1;
}
