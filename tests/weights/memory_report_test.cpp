// The summary of a ledger: weight peaks replayed from the first entry of the image, compute
// arena peaks by tag, RSS and page-cache peaks from samples, and times from the stage and step
// marks of a recorded run.
#include "weights/memory_report.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "weights/process_memory.h"

namespace ebb {
namespace {

LedgerEntry at(double t, LedgerEvent e, std::string device, std::string component, uint64_t bytes) {
  return {t, e, MemoryTag::Weights, std::move(device), std::move(component), "", bytes};
}

TEST(MemoryReport, SummarisesPeaksAndTimesFromTheEntries) {
  const std::vector<LedgerEntry> entries{
      at(0.0, LedgerEvent::Load, "cpu", "clip_l", 100),  // before this image: held, not new
      at(1.0, LedgerEvent::Mark, "", "begin text_encoders", 0),
      at(1.5, LedgerEvent::Load, "cpu", "diffusion_model", 400),
      at(1.6, LedgerEvent::Sample, "page_cache", "clip_l", 30),
      at(1.7, LedgerEvent::Sample, "page_cache", "diffusion_model", 50),
      at(1.8, LedgerEvent::Sample, "page_cache", "clip_l", 0),
      at(2.0, LedgerEvent::Mark, "", "begin diffusion", 0),
      at(2.5, LedgerEvent::Mark, "", "step", 0),
      at(2.6, LedgerEvent::Sample, "rss_anon", "", 7000),
      at(2.6, LedgerEvent::Sample, "rss_file", "", 9000),
      at(3.5, LedgerEvent::Mark, "", "step", 0),
      at(3.6, LedgerEvent::Free, "cpu", "diffusion_model", 400),
      at(4.0, LedgerEvent::Mark, "", "end vae", 0),
  };
  ArenaStats arena;
  arena.peak[static_cast<size_t>(MemoryTag::Activations)] = 64;
  const MemorySummary s = summarize(entries, 1, 0.25, "cpu", arena);
  EXPECT_EQ(s.peak_device.at("cpu").at("weights"), 500u);
  EXPECT_EQ(s.peak_device.at("cpu").at("activations"), 64u);
  EXPECT_EQ(s.peak_page_cache, 80u);
  EXPECT_EQ(s.peak_rss_anon, 7000u);
  EXPECT_EQ(s.peak_rss_file, 9000u);
  EXPECT_EQ(s.steps, 2);
  EXPECT_DOUBLE_EQ(s.first_step_s, 1.5);
  EXPECT_DOUBLE_EQ(s.mean_step_s, 0.75);
  EXPECT_DOUBLE_EQ(s.total_s, 3.0);
  EXPECT_DOUBLE_EQ(s.load_s, 0.25);
  const nlohmann::json j = summary_json(s);
  EXPECT_EQ(j.at("peak_device_bytes").at("cpu").at("weights"), 500u);
  EXPECT_NE(summary_line(s).find("first step 1.50 s"), std::string::npos);
}

TEST(MemoryReport, ResidentMemoryIsReadFromProcStatus) {
  const ResidentMemory m = resident_memory();
  EXPECT_GT(m.anon + m.file, 0u);
  const ResidentMemory none = resident_memory("/nonexistent/status");
  EXPECT_EQ(none.anon + none.file, 0u);
}

}  // namespace
}  // namespace ebb
