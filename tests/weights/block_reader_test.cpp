// The block reader: pieces close together in a file are read as one range placed at the file
// offset's alignment, the bytes land where the layout says, reads run on the reader's thread
// in order, and a failed read reaches the caller through the future.
#include "weights/block_reader.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include "backend/arena.h"
#include "core/error.h"
#include "support/temp_dir.h"

namespace ebb {
namespace {

std::vector<std::byte> pattern(size_t n) {
  std::vector<std::byte> bytes(n);
  for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<std::byte>((i * 131 + 7) % 251);
  return bytes;
}

TEST(ReadLayout, CoalescesNearbyPiecesAndKeepsTheirAlignment) {
  // Two neighbours, one far away in the same file, one in another file; given out of order.
  const std::vector<ReadRange> pieces{
      {0, 10'000, 100, 0}, {0, 5'000, 4'000, 0}, {0, 50'000'000, 64, 0}, {1, 123, 8, 0}};
  const ReadLayout layout = layout_block_read(pieces);
  ASSERT_EQ(layout.ranges.size(), 3u);
  EXPECT_EQ(layout.ranges[0].offset, 5'000u);
  EXPECT_EQ(layout.ranges[0].bytes, 10'100u - 5'000u);
  for (const ReadRange& r : layout.ranges) EXPECT_EQ(r.at % 4096, r.offset % 4096);
  EXPECT_EQ(layout.piece_at[1], layout.ranges[0].at);
  EXPECT_EQ(layout.piece_at[0], layout.ranges[0].at + 5'000);
  for (size_t i = 0; i < pieces.size(); ++i)
    EXPECT_LE(layout.piece_at[i] + pieces[i].bytes, layout.bytes);
}

TEST(ReadLayout, PackedJoinsOnlyTouchingPiecesAndHoldsExactlyTheirBytes) {
  // Two touching pieces given out of order, one a little apart, one in another file.
  const std::vector<ReadRange> pieces{
      {0, 9'000, 100, 0}, {0, 5'000, 4'000, 0}, {0, 9'200, 64, 0}, {1, 123, 8, 0}};
  const ReadLayout layout = layout_block_read(pieces, /*packed=*/true);
  ASSERT_EQ(layout.ranges.size(), 3u);
  EXPECT_EQ(layout.ranges[0].offset, 5'000u);
  EXPECT_EQ(layout.ranges[0].bytes, 4'100u);
  EXPECT_EQ(layout.bytes, 4'000u + 100u + 64u + 8u);
  EXPECT_EQ(layout.piece_at[1], 0u);
  EXPECT_EQ(layout.piece_at[0], 4'000u);
  EXPECT_EQ(layout.piece_at[2], 4'100u);
  EXPECT_EQ(layout.piece_at[3], 4'164u);
}

TEST(BlockReader, ReadsPiecesWhereTheLayoutSaysAndReportsFailures) {
  test::TempDir dir;
  const std::string path = dir / "weights.bin";
  const std::vector<std::byte> file = pattern(3 << 20);
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(file.data()), static_cast<std::streamsize>(file.size()));
  Arena host(make_host_memory());
  BlockReader reader({path}, {},
                     [&](uint64_t n) { return host.allocate(n, MemoryTag::Staging, "test read"); });
  const std::vector<ReadRange> pieces{{0, 777, 70'000, 0}, {0, 2'000'001, 1'000'000, 0}};
  const ReadLayout layout = layout_block_read(pieces);
  const auto first = reader.read(layout);
  const auto past_end = reader.read(layout_block_read({{0, file.size() - 10, 100, 0}}));
  const BlockReader::Buffer buffer = first.get();
  for (size_t i = 0; i < pieces.size(); ++i)
    EXPECT_EQ(std::memcmp(buffer->data() + layout.piece_at[i], file.data() + pieces[i].offset,
                          pieces[i].bytes),
              0)
        << "piece " << i;
  EXPECT_THROW((void)past_end.get(), Error);
}

TEST(BlockReader, ReadsIntoAGivenBufferWhenAsked) {
  test::TempDir dir;
  const std::string path = dir / "weights.bin";
  const std::vector<std::byte> file = pattern(1 << 20);
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(file.data()), static_cast<std::streamsize>(file.size()));
  Arena host(make_host_memory());
  BlockReader reader({path}, {}, [](uint64_t) -> BlockReader::Buffer {
    ADD_FAILURE() << "allocated although a buffer was given";
    return nullptr;
  });
  const ReadLayout layout = layout_block_read({{0, 5'000, 300'000, 0}});
  const BlockReader::Buffer given = host.allocate(layout.bytes, MemoryTag::Staging, "given");
  const BlockReader::Buffer read = reader.read(layout, given).get();
  EXPECT_EQ(read, given);
  EXPECT_EQ(std::memcmp(read->data() + layout.piece_at[0], file.data() + 5'000, 300'000), 0);
  const BlockReader::Buffer small = host.allocate(64, MemoryTag::Staging, "small");
  EXPECT_THROW((void)reader.read(layout, small), Error);
}

}  // namespace
}  // namespace ebb
