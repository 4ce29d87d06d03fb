#include "weights/ledger_svg.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "weights/ledger.h"

namespace ebb {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;

nlohmann::json event(double t, const char* kind, const char* device, const std::string& component,
                     uint64_t bytes) {
  return {{"t", t},           {"event", kind},          {"tag", "weights"},
          {"device", device}, {"component", component}, {"block", "b"},
          {"bytes", bytes}};
}

nlohmann::json sd_run() {
  nlohmann::json events = nlohmann::json::array({
      event(0.0, "map", "file", "clip_l", 246 * kMiB),
      event(0.0, "map", "file", "diffusion_model", 1640 * kMiB),
      event(0.1, "load", "cpu", "clip_l", 512 * kMiB),
      event(0.4, "free", "cpu", "clip_l", 512 * kMiB),
      event(0.5, "upload", "cuda0", "diffusion_model", 2 * kGiB),
      event(0.6, "load", "cuda0", "diffusion_model", kGiB + kGiB / 2),
      event(2.5, "evict", "cuda0", "diffusion_model", kGiB + kGiB / 2),
      event(2.6, "upload", "cuda0", "vae", kGiB / 4),
      event(3.1, "free", "cuda0", "vae", kGiB / 4),
  });
  return {{"events", events}, {"peak_bytes", nlohmann::json::object()}};
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Tags balance and nest, and text and attributes hold no raw '<' or stray '&'.
::testing::AssertionResult well_formed(const std::string& xml) {
  std::vector<std::string> open;
  size_t i = 0;
  while (i < xml.size()) {
    if (xml[i] == '&') {
      bool entity = false;
      for (const char* e : {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"})
        entity = entity || xml.compare(i, std::char_traits<char>::length(e), e) == 0;
      if (!entity) return ::testing::AssertionFailure() << "stray & at " << i;
    }
    if (xml[i] != '<') {
      ++i;
      continue;
    }
    size_t end = xml.find('>', i);
    if (end == std::string::npos) return ::testing::AssertionFailure() << "unclosed tag at " << i;
    std::string tag = xml.substr(i + 1, end - i - 1);
    if (tag.find('<') != std::string::npos)
      return ::testing::AssertionFailure() << "'<' inside tag at " << i;
    i = end + 1;
    if (tag.front() == '?') continue;
    if (tag.front() == '/') {
      if (open.empty() || open.back() != tag.substr(1))
        return ::testing::AssertionFailure() << "</" << tag.substr(1) << "> closes nothing open";
      open.pop_back();
      continue;
    }
    if (tag.back() == '/') continue;
    open.push_back(tag.substr(0, tag.find(' ')));
  }
  if (!open.empty()) return ::testing::AssertionFailure() << "<" << open.back() << "> not closed";
  return ::testing::AssertionSuccess();
}

TEST(LedgerSvg, StageMarksPlaceTheMarkersWhenTheLedgerHasThem) {
  // A mapped-only run owns nothing on the host: its stages show through the pipeline's marks.
  nlohmann::json ledger = {{"events", nlohmann::json::array({
                                          event(0.0, "map", "file", "clip_l", 246 * kMiB),
                                          event(0.1, "mark", "", "begin text_encoders", 0),
                                          event(0.2, "mark", "", "end text_encoders", 0),
                                          event(0.3, "mark", "", "begin diffusion", 0),
                                          event(0.4, "upload", "cuda0", "diffusion_model", kGiB),
                                          event(0.9, "mark", "", "begin vae", 0),
                                          event(1.0, "mark", "", "begin diffusion", 0),
                                          event(1.2, "sample", "page_cache", "clip_l", kMiB),
                                      })}};
  const std::string svg = ledger_to_svg(ledger);
  EXPECT_TRUE(well_formed(svg));
  EXPECT_EQ(count(svg, "class=\"stage\""), 3u);  // the second image's diffusion is not repeated
  for (const char* stage : {">text_encoders</text>", ">diffusion</text>", ">vae</text>"})
    EXPECT_THAT(svg, HasSubstr(stage));
  EXPECT_THAT(svg, Not(HasSubstr(">diffusion_model</text>")));
}

TEST(LedgerSvg, OneStepLinePerDeviceWithPeaksAndStages) {
  std::string svg = ledger_to_svg(sd_run());
  EXPECT_TRUE(well_formed(svg));
  EXPECT_EQ(count(svg, "<polyline"), 2u);  // cpu and cuda0; mapped bytes own no memory
  EXPECT_THAT(svg, HasSubstr(">cpu</text>"));
  EXPECT_THAT(svg, HasSubstr(">cuda0</text>"));
  EXPECT_THAT(svg, Not(HasSubstr(">file</text>")));
  EXPECT_THAT(svg, HasSubstr("peak 3.50 GiB"));   // cuda0: 2 + 1.5
  EXPECT_THAT(svg, HasSubstr("peak 512.0 MiB"));  // cpu
  EXPECT_EQ(count(svg, "class=\"stage\""), 3u);
  for (const char* stage : {">clip_l</text>", ">diffusion_model</text>", ">vae</text>"})
    EXPECT_THAT(svg, HasSubstr(stage));
  EXPECT_THAT(svg, HasSubstr(">4.0</text>"));  // the GiB axis reaches above the 3.5 GiB peak
  EXPECT_THAT(svg, HasSubstr(">seconds</text>"));
}

TEST(LedgerSvg, TextIsEscaped) {
  nlohmann::json ledger = {{"events", nlohmann::json::array({
                                          event(0, "load", "cuda0", "<unet&\"vae\">", kGiB),
                                      })}};
  std::string svg = ledger_to_svg(ledger);
  EXPECT_TRUE(well_formed(svg));
  EXPECT_THAT(svg, HasSubstr("&lt;unet&amp;&quot;vae&quot;&gt;"));
  EXPECT_THAT(svg, Not(HasSubstr("<unet")));
}

TEST(LedgerSvg, EmptyLedgerDrawsEmptyAxes) {
  std::string svg = ledger_to_svg({{"events", nlohmann::json::array()}});
  EXPECT_TRUE(well_formed(svg));
  EXPECT_EQ(count(svg, "<polyline"), 0u);
}

TEST(LedgerSvg, PeaksMatchANaiveReplayOfRandomEvents) {
  std::mt19937 rng(11);
  const char* devices[] = {"cpu", "cuda0", "cuda1"};
  std::map<std::string, uint64_t> held, peak;
  nlohmann::json events = nlohmann::json::array();
  double t = 0;
  for (int i = 0; i < 300; ++i) {
    const char* device = devices[rng() % 3];
    t += (rng() % 100) / 1000.0;
    uint64_t bytes = (1 + rng() % 4096) * kMiB;
    bool release = rng() % 2 && held[device] > 0;
    if (release) bytes = std::min(bytes, held[device]);
    events.push_back(
        event(t, release ? (rng() % 2 ? "free" : "evict") : (rng() % 2 ? "load" : "upload"), device,
              fmt::format("c{}", i / 50), bytes));
    held[device] = release ? held[device] - bytes : held[device] + bytes;
    peak[device] = std::max(peak[device], held[device]);
  }
  std::string svg = ledger_to_svg({{"events", events}});
  EXPECT_TRUE(well_formed(svg));
  EXPECT_EQ(count(svg, "<polyline"), 3u);
  for (const auto& [device, bytes] : peak)
    EXPECT_THAT(svg, HasSubstr(fmt::format("peak {:.2f} GiB", bytes / double(kGiB)))) << device;
  EXPECT_EQ(count(svg, "class=\"stage\""), 6u);
}

TEST(LedgerSvg, DrawsWhatTheLedgerWrites) {
  Ledger ledger;
  ledger.record(LedgerEvent::Map, MemoryTag::Weights, "file", "vae", "all", kGiB);
  ledger.record(LedgerEvent::Load, MemoryTag::Weights, "cpu", "vae", "all", 3 * kMiB);
  ledger.record(LedgerEvent::Load, MemoryTag::Activations, "cpu", "vae", "decode", 5 * kMiB);
  ledger.record(LedgerEvent::Free, MemoryTag::Activations, "cpu", "vae", "decode", 5 * kMiB);
  std::string svg = ledger_to_svg(ledger.to_json());
  EXPECT_EQ(count(svg, "<polyline"), 1u);
  EXPECT_THAT(svg, HasSubstr("peak 8.0 MiB"));
}

TEST(LedgerSvg, MalformedLedgersNameTheEvent) {
  auto error_of = [](const nlohmann::json& ledger) {
    try {
      ledger_to_svg(ledger);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_THAT(error_of(nlohmann::json::array()),
              HasSubstr("expected an object with an \"events\" array"));
  nlohmann::json ledger = sd_run();
  ledger["events"][3]["bytes"] = 600 * kMiB;
  EXPECT_THAT(error_of(ledger),
              HasSubstr("event 3: releases 629145600 bytes on cpu but only 536870912 are held"));
  ledger = sd_run();
  ledger["events"][4]["event"] = "steal";
  EXPECT_THAT(error_of(ledger), HasSubstr("event 4: unknown event \"steal\""));
  ledger = sd_run();
  ledger["events"][2].erase("device");
  EXPECT_THAT(error_of(ledger), HasSubstr("event 2 has no \"device\""));
  ledger = sd_run();
  ledger["events"][2]["bytes"] = -5;
  EXPECT_THAT(error_of(ledger), HasSubstr("event 2: \"bytes\" is not a byte count"));
  ledger = sd_run();
  ledger["events"][2]["t"] = "soon";
  EXPECT_THAT(error_of(ledger), HasSubstr("event 2: \"t\" is not a time in seconds"));
}

}  // namespace
}  // namespace ebb
