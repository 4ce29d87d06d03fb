#include "weights/budget_flags.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "support/temp_dir.h"

namespace ebb {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kGiB = uint64_t{1} << 30;

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// ---- --max-vram ----

TEST(MaxVram, BareNumberAppliesToEveryDevice) {
  VramBudget b = parse_max_vram("6", 2);
  EXPECT_EQ(resolve_budget(b, "cuda0", 80 * kGiB), 6 * kGiB);
  EXPECT_EQ(resolve_budget(b, "cuda1", 80 * kGiB), 6 * kGiB);
}

TEST(MaxVram, PerDeviceValuesAndSpellings) {
  VramBudget b = parse_max_vram("cuda0=6, cuda:1=8.5", 2);
  EXPECT_EQ(b.device_gib.at("cuda0"), 6.0);
  EXPECT_EQ(b.device_gib.at("cuda1"), 8.5);
  EXPECT_FALSE(b.all_devices_gib);
  EXPECT_EQ(resolve_budget(b, "cuda1", 80 * kGiB), 8 * kGiB + kGiB / 2);
  EXPECT_EQ(parse_max_vram("cuda=3", 1).device_gib.at("cuda0"), 3.0);
}

TEST(MaxVram, DeviceEntryBeatsTheBareNumber) {
  VramBudget b = parse_max_vram("4,cuda1=-2", 2);
  EXPECT_EQ(resolve_budget(b, "cuda0", 10 * kGiB), 4 * kGiB);
  EXPECT_EQ(resolve_budget(b, "cuda1", 10 * kGiB), 8 * kGiB);
}

TEST(MaxVram, ZeroOrNothingMeansNoBudget) {
  EXPECT_EQ(resolve_budget(parse_max_vram("0", 1), "cuda0", 10 * kGiB), 0u);
  EXPECT_EQ(resolve_budget(parse_max_vram("cuda1=5", 2), "cuda0", 10 * kGiB), 0u);
  EXPECT_EQ(resolve_budget(VramBudget{}, "cuda0", 10 * kGiB), 0u);
}

TEST(MaxVram, NegativeIsFreeMemoryMinusThat) {
  VramBudget b = parse_max_vram("-1.5", 1);
  EXPECT_EQ(resolve_budget(b, "cuda0", 10 * kGiB), 10 * kGiB - kGiB - kGiB / 2);
  EXPECT_THAT(
      error_of([&] { resolve_budget(b, "cuda0", kGiB); }),
      HasSubstr("--max-vram: cuda0 has 1.00 GiB free, not more than the 1.5 GiB to leave free"));
}

TEST(MaxVram, TinyPositiveBudgetIsNotNoBudget) {
  EXPECT_EQ(resolve_budget(parse_max_vram("0.0000000001", 1), "cuda0", kGiB), 1u);
}

TEST(MaxVram, BadValuesNameTheFlagAndThePart) {
  struct Case {
    const char* value;
    const char* message;
  };
  Case cases[] = {
      {"cuda0=abc", R"(--max-vram: "cuda0=abc": "abc" is not a number of GiB)"},
      {"cuda0=", R"(--max-vram: "cuda0=": "" is not a number of GiB)"},
      {"six", R"(--max-vram: "six": "six" is not a number of GiB)"},
      {"1e3", R"("1e3" is not a number of GiB)"},
      {"0x10", R"("0x10" is not a number of GiB)"},
      {"nan", R"("nan" is not a number of GiB)"},
      {"inf", R"("inf" is not a number of GiB)"},
      {"6 GiB", R"("6 GiB" is not a number of GiB)"},
      {"2000000", R"(--max-vram: "2000000": 2000000 GiB is out of range)"},
      {"", "--max-vram: the value is empty"},
      {"6,,cuda1=2", R"(--max-vram: "6,,cuda1=2": an entry between commas is empty)"},
      {"6,", R"(an entry between commas is empty)"},
      {"6,7", R"(--max-vram: "7": a budget for every device is given twice)"},
      {"cuda1=1,cuda:1=2", R"(--max-vram: "cuda:1=2": cuda1 is given twice)"},
      {"gpu0=1", R"(--max-vram: "gpu0=1": "gpu0" is not a device (cpu, cudaN or cuda:N))"},
      {"cuda-1=1", R"("cuda-1" is not a device)"},
      {"cuda2=1",
       R"(--max-vram: "cuda2=1": there is no cuda2: the CUDA devices are cuda0 to cuda1)"},
      {"cpu=4", R"(--max-vram: "cpu=4": cpu is not a GPU (--max-ram limits host memory))"},
  };
  for (const Case& c : cases)
    EXPECT_THAT(error_of([&] { parse_max_vram(c.value, 2); }), HasSubstr(c.message)) << c.value;
  EXPECT_THAT(error_of([] { parse_max_vram("cuda0=4", 0); }),
              HasSubstr("there is no CUDA device, so no cuda0"));
}

// ---- --max-ram and the system memory limit ----

class SystemMemory : public ::testing::Test {
 protected:
  void SetUp() override {
    files_.cgroup_v2_max = dir_ / "memory.max";
    files_.cgroup_v1_limit = dir_ / "memory.limit_in_bytes";
    files_.meminfo = dir_ / "meminfo";
    write(files_.meminfo,
          "MemTotal:       67108864 kB\nMemFree:         1234 kB\nMemAvailable:   5678 kB\n");
  }
  static void write(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
  }

  test::TempDir dir_;
  MemoryLimitFiles files_;
};

TEST_F(SystemMemory, MemTotalWithoutCgroup) {
  EXPECT_EQ(system_memory_limit(files_), 64 * kGiB);
}

TEST_F(SystemMemory, CgroupV2LimitWhenSmaller) {
  write(files_.cgroup_v2_max, "8589934592\n");
  EXPECT_EQ(system_memory_limit(files_), 8 * kGiB);
  write(files_.cgroup_v2_max, "max\n");
  EXPECT_EQ(system_memory_limit(files_), 64 * kGiB);
}

TEST_F(SystemMemory, CgroupV1UnlimitedIsMemTotal) {
  write(files_.cgroup_v1_limit, "9223372036854771712\n");
  EXPECT_EQ(system_memory_limit(files_), 64 * kGiB);
  write(files_.cgroup_v1_limit, "4294967296\n");
  EXPECT_EQ(system_memory_limit(files_), 4 * kGiB);
}

TEST_F(SystemMemory, CgroupV2WinsOverV1) {
  write(files_.cgroup_v2_max, "max\n");
  write(files_.cgroup_v1_limit, "4294967296\n");
  EXPECT_EQ(system_memory_limit(files_), 64 * kGiB);
}

TEST_F(SystemMemory, MalformedFilesAreNamed) {
  write(files_.cgroup_v2_max, "lots\n");
  EXPECT_THAT(error_of([&] { system_memory_limit(files_); }),
              HasSubstr(files_.cgroup_v2_max + ": \"lots\" is not a byte count"));
  std::filesystem::remove(files_.cgroup_v2_max);
  write(files_.meminfo, "MemFree: 1 kB\n");
  EXPECT_THAT(error_of([&] { system_memory_limit(files_); }),
              HasSubstr(files_.meminfo + ": no MemTotal line"));
  std::filesystem::remove(files_.meminfo);
  EXPECT_THAT(error_of([&] { system_memory_limit(files_); }), HasSubstr(files_.meminfo));
}

TEST_F(SystemMemory, DefaultLeavesTenPercentOrOneGiB) {
  EXPECT_EQ(default_max_ram(files_), 64 * kGiB - 64 * kGiB / 10);
  write(files_.cgroup_v2_max, std::to_string(8 * kGiB));
  EXPECT_EQ(default_max_ram(files_), 7 * kGiB);
  write(files_.cgroup_v2_max, std::to_string(kGiB + kGiB / 2));
  EXPECT_EQ(default_max_ram(files_), kGiB / 2 + kGiB / 4);  // margin capped at half
}

TEST_F(SystemMemory, ResolveMaxRam) {
  write(files_.cgroup_v2_max, std::to_string(16 * kGiB));
  EXPECT_EQ(resolve_max_ram(std::nullopt, files_), default_max_ram(files_));
  EXPECT_EQ(resolve_max_ram(parse_max_ram("0"), files_), 0u);
  EXPECT_EQ(resolve_max_ram(parse_max_ram("12"), files_), 12 * kGiB);
  EXPECT_EQ(resolve_max_ram(parse_max_ram(" -4 "), files_), 12 * kGiB);
  EXPECT_THAT(error_of([&] { resolve_max_ram(-16.0, files_); }),
              HasSubstr("--max-ram: the system memory limit is 16.00 GiB"));
}

TEST(MaxRam, BadValues) {
  EXPECT_THAT(error_of([] { parse_max_ram("lots"); }),
              HasSubstr(R"(--max-ram: "lots": "lots" is not a number of GiB)"));
  EXPECT_THAT(error_of([] { parse_max_ram(""); }), HasSubstr("--max-ram: the value is empty"));
  EXPECT_THAT(error_of([] { parse_max_ram("4,8"); }), HasSubstr("is not a number of GiB"));
}

// ---- placement ----

std::string devices_of(const Placement& p) {
  std::string s;
  for (int i = 0; i < kPlacedComponentCount; ++i) {
    auto c = static_cast<PlacedComponent>(i);
    s += fmt::format("{}{}={}", i ? "," : "", placed_component_name(c), p.of(c));
  }
  return s;
}

std::string place(PlacementFlags flags, int cuda_devices = 2) {
  return devices_of(parse_placement(flags, cuda_devices));
}

TEST(Placement, DefaultIsTheFirstGpuElseCpu) {
  EXPECT_EQ(place({}, 1),
            "clip_l=cuda0,clip_h=cuda0,clip_g=cuda0,t5xxl=cuda0,diffusion=cuda0,vae=cuda0");
  EXPECT_EQ(place({}, 0), "clip_l=cpu,clip_h=cpu,clip_g=cpu,t5xxl=cpu,diffusion=cpu,vae=cpu");
}

TEST(Placement, OneDeviceForEverything) {
  EXPECT_EQ(place({.backend = "cpu"}),
            "clip_l=cpu,clip_h=cpu,clip_g=cpu,t5xxl=cpu,diffusion=cpu,vae=cpu");
  EXPECT_EQ(place({.device = "cuda:1"}),
            "clip_l=cuda1,clip_h=cuda1,clip_g=cuda1,t5xxl=cuda1,diffusion=cuda1,vae=cuda1");
}

TEST(Placement, PerComponentAndMostSpecificWins) {
  EXPECT_EQ(place({.backend = "clip=cpu,vae=cuda1,diffusion=cuda0"}),
            "clip_l=cpu,clip_h=cpu,clip_g=cpu,t5xxl=cpu,diffusion=cuda0,vae=cuda1");
  EXPECT_EQ(place({.backend = "t5xxl=cuda1, clip=cpu, cuda0"}),
            "clip_l=cpu,clip_h=cpu,clip_g=cpu,t5xxl=cuda1,diffusion=cuda0,vae=cuda0");
  EXPECT_EQ(place({.backend = "vae=cpu", .device = "cuda1"}),
            "clip_l=cuda1,clip_h=cuda1,clip_g=cuda1,t5xxl=cuda1,diffusion=cuda1,vae=cpu");
}

TEST(Placement, CpuShorthands) {
  EXPECT_EQ(place({.clip_on_cpu = true}),
            "clip_l=cpu,clip_h=cpu,clip_g=cpu,t5xxl=cpu,diffusion=cuda0,vae=cuda0");
  EXPECT_EQ(place({.vae_on_cpu = true}),
            "clip_l=cuda0,clip_h=cuda0,clip_g=cuda0,t5xxl=cuda0,diffusion=cuda0,vae=cpu");
  EXPECT_EQ(place({.backend = "clip_g=cuda1", .clip_on_cpu = true}),
            "clip_l=cpu,clip_h=cpu,clip_g=cuda1,t5xxl=cpu,diffusion=cuda0,vae=cuda0");
  EXPECT_EQ(place({.backend = "clip=cpu,vae=cpu", .clip_on_cpu = true, .vae_on_cpu = true}),
            "clip_l=cpu,clip_h=cpu,clip_g=cpu,t5xxl=cpu,diffusion=cuda0,vae=cpu");
}

TEST(Placement, BadValuesNameTheFlagAndThePart) {
  struct Case {
    PlacementFlags flags;
    const char* message;
  };
  Case cases[] = {
      {{.backend = "unet=cpu"},
       R"(--backend: "unet=cpu": "unet" is not a component (clip, clip_l, clip_h, clip_g, t5xxl, diffusion, vae))"},
      {{.backend = "vae=tpu0"}, R"(--backend: "vae=tpu0": "tpu0" is not a device)"},
      {{.backend = "vae=cpu,vae=cuda0"}, R"(--backend: "vae=cuda0": vae is given twice)"},
      {{.backend = "cpu,cuda0"},
       R"(--backend: "cuda0": a device for every component is given twice)"},
      {{.backend = "vae=cuda2"}, R"(--backend: "vae=cuda2": there is no cuda2)"},
      {{.backend = "vae=cpu,"}, R"(--backend: "vae=cpu,": an entry between commas is empty)"},
      {{.device = "cuda:7"}, R"(--device: "cuda:7": there is no cuda7)"},
      {{.device = "gpu"}, R"(--device: "gpu": "gpu" is not a device)"},
      {{.backend = "cpu", .device = "cuda0"},
       "--device: cuda0 given, but --backend already names cpu"},
      {{.backend = "clip=cuda0", .clip_on_cpu = true},
       R"(--clip-on-cpu: contradicts --backend "clip=cuda0")"},
      {{.backend = "vae=cuda1", .vae_on_cpu = true},
       R"(--vae-on-cpu: contradicts --backend "vae=cuda1")"},
  };
  for (const Case& c : cases)
    EXPECT_THAT(error_of([&] { parse_placement(c.flags, 2); }), HasSubstr(c.message)) << c.message;
}

}  // namespace
}  // namespace ebb
