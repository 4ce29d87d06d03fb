// The placement, precision and conv2d (--cudnn) flags of generate resolved into devices and backend
// options.
#include "app/device_flags.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"

namespace ebb {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

TEST(DeviceFlags, CpuPlacementAndPrecision) {
  DeviceFlags flags;
  flags.placement.backend = "cpu";
  flags.gpu_dtype = "bf16";
  flags.tf32 = true;
  flags.threads = 3;
  const Devices d = resolve_devices(flags, "");
  EXPECT_EQ(d.placement.of(PlacedComponent::diffusion), "cpu");
  EXPECT_EQ(text_encoder_device(d.placement), "cpu");
  EXPECT_EQ(d.options.gpu_activations, DType::BF16);
  EXPECT_TRUE(d.options.allow_tf32);
  EXPECT_EQ(d.options.cpu_threads, 3);
}

TEST(DeviceFlags, CudnnOnlyWhenAsked) {
  DeviceFlags flags;
  flags.placement.backend = "cpu";
  EXPECT_FALSE(resolve_devices(flags, "").options.use_cudnn);
  flags.cudnn = true;
  EXPECT_TRUE(resolve_devices(flags, "").options.use_cudnn);
}

TEST(DeviceFlags, BadPrecisionNamesTheFlag) {
  DeviceFlags flags;
  flags.placement.backend = "cpu";
  flags.gpu_dtype = "f8";
  EXPECT_THAT([&] { resolve_devices(flags, ""); },
              ThrowsMessage<Error>(HasSubstr("--gpu-dtype: 'f8'")));
}

TEST(DeviceFlags, MaxVramIsParsed) {
  DeviceFlags flags;
  flags.placement.backend = "cpu";
  EXPECT_EQ(resolve_devices(flags, "6.5").options.vram.all_devices_gib, 6.5);
  EXPECT_THROW(resolve_devices(flags, "lots"), Error);
}

TEST(DeviceFlags, TextEncodersRunOnOneDevice) {
  Placement placement;
  placement.device.fill("cpu");
  placement.device[static_cast<size_t>(PlacedComponent::clip_g)] = "cuda0";
  EXPECT_THAT([&] { text_encoder_device(placement); },
              ThrowsMessage<Error>(HasSubstr("clip_g=cuda0")));
}

}  // namespace
}  // namespace ebb
