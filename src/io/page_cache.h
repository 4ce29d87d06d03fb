#pragma once
// Page-cache hints and residency for mapped model files: read ahead what comes next, drop what
// is done, and measure what is actually in RAM.
//
// Ranges are `[offset, offset + len)` in file bytes, at any alignment: they are widened to
// whole pages internally and `len` is clipped at the end of the file (so UINT64_MAX means "to
// the end"); an offset past the end is an ebb::Error.
#include <cstdint>
#include <string>
#include <string_view>

#include "io/mapped_file.h"

namespace ebb {

// Random turns read-ahead off (used while headers are parsed, so that opening a model does not
// pull megabytes of tensor data in around the header); Normal restores the kernel's default.
// Unmap: MADV_DONTNEED alone — the process stops mapping the pages (its RSS drops) while the
// page cache keeps them, so touching them again is a minor fault, not a read.
enum class Hint { Sequential, WillNeed, DontNeed, Random, Normal, Unmap };

// madvise on the mapping and posix_fadvise on the file (Unmap: madvise only). DontNeed on a
// CopyOnWrite mapping only calls posix_fadvise, and Unmap does nothing there: MADV_DONTNEED on a
// MAP_PRIVATE mapping throws away the private (patched) pages, so the next read would see the
// file's original bytes again.
void advise(const MappedFile& file, uint64_t offset, uint64_t len, Hint hint);

// Bytes of the range whose pages are resident, via mincore. Linux reports page-cache residency
// only for files the process owns or may write; for other files it counts only the pages this
// process has mapped in.
uint64_t resident_bytes(const MappedFile& file, uint64_t offset, uint64_t len);

// DontNeed both ways, then returns the bytes still resident, for the caller to report: the
// kernel keeps pages that another process maps, that are dirty, or (CopyOnWrite) that this
// mapping still maps.
uint64_t evict_range(const MappedFile& file, uint64_t offset, uint64_t len);

// posix_fadvise(DONTNEED) on the whole file without mapping it: makes a clean, unmapped file
// cold. Dirty pages stay until written back (fsync first).
void evict_file(const std::string& path);
uint64_t file_resident_bytes(const std::string& path);

// SD_MMAP_FLAGS, stable-diffusion.cpp's environment variable: a comma-separated list of
// sequential, populate, willneed, dontneed.
struct MmapFlags {
  bool sequential = false;
  bool populate = false;  // MappedFile::open(path, mode, /*populate=*/true)
  bool willneed = false;
  bool dontneed = false;
};
MmapFlags parse_mmap_flags(std::string_view comma_list);

}  // namespace ebb
