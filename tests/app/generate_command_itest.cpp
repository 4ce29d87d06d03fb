// `ebb generate` as a user runs it: the real binary on the tiny SD1 checkpoint writes a PNG
// with A1111 parameters, refuses to replace it without --overwrite, and rejects bad flags with
// a message on stderr.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "io/png_image.h"
#include "support/run_command.h"
#include "support/temp_dir.h"

namespace ebb {
namespace {

using test::run_command;
using ::testing::HasSubstr;

const std::string kEbb = std::string(EBB_BINARY_DIR) + "/ebb";
const std::string kModel = std::string(EBB_TEST_DATA_DIR) + "/sd/sd1-tiny.safetensors";

std::vector<uint8_t> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string generate(const std::string& output, const std::string& extra = "",
                     const std::string& size = "-W 64 -H 64") {
  return kEbb + " generate -m " + kModel + " -p 'a red cube' -n blurry " + size +
         " --steps 2 -s 7 -o " + output + " " + extra + " 2>&1";
}

TEST(GenerateCommand, WritesAPngWithParametersAndNeverOverwritesUnasked) {
  test::TempDir dir;
  const std::string png = dir / "cube.png";
  const test::CommandResult first = run_command(generate(png));
  ASSERT_EQ(first.status, 0) << first.out;
  EXPECT_THAT(first.out, HasSubstr("step 2/2"));

  const std::vector<uint8_t> written = file_bytes(png);
  const Image image = decode_png(written, png);
  EXPECT_EQ(image.width, 64);
  EXPECT_EQ(image.height, 64);
  const std::string text(written.begin(), written.end());
  EXPECT_THAT(text, HasSubstr("tEXtparameters"));
  EXPECT_THAT(text, HasSubstr("a red cube\nNegative prompt: blurry\nSteps: 2"));
  EXPECT_THAT(text, HasSubstr("Seed: 7, Size: 64x64"));

  const test::CommandResult again = run_command(generate(png, "--sampling-method euler"));
  EXPECT_EQ(again.status, 1);
  EXPECT_THAT(again.out, HasSubstr("--overwrite"));
  EXPECT_EQ(file_bytes(png), written);

  const test::CommandResult replaced =
      run_command(generate(png, "--overwrite --sampling-method euler"));
  EXPECT_EQ(replaced.status, 0) << replaced.out;
  EXPECT_NE(file_bytes(png), written);
}

TEST(GenerateCommand, BadFlagsAreClearErrors) {
  test::TempDir dir;
  const std::string png = dir / "never.png";
  const test::CommandResult width = run_command(generate(png, "", "-W 60 -H 64"));
  EXPECT_EQ(width.status, 1);
  EXPECT_THAT(width.out, HasSubstr("multiples of 8"));
  const test::CommandResult sampler = run_command(generate(png, "--sampling-method fast"));
  EXPECT_EQ(sampler.status, 1);
  EXPECT_THAT(sampler.out, HasSubstr("dpm++2m"));
  // Device plans need the diffusion model on a device.
  const test::CommandResult offload = run_command(generate(png, "--backend cpu --offload-to-cpu"));
  EXPECT_EQ(offload.status, 1);
  EXPECT_THAT(offload.out, HasSubstr("--offload-to-cpu needs a GPU"));
  const test::CommandResult stream =
      run_command(generate(png, "--backend cpu --stream-layers --max-vram 2"));
  EXPECT_EQ(stream.status, 1);
  EXPECT_THAT(stream.out, HasSubstr("--stream-layers needs a GPU"));
  EXPECT_FALSE(std::filesystem::exists(png));
}

TEST(GenerateCommand, ImageToImageTakesTheImageSizeAndRecordsTheStrength) {
  test::TempDir dir;
  const std::string init = std::string(EBB_TEST_DATA_DIR) + "/sd/sd1-tiny-img2img-input.png";
  const std::string png = dir / "edited.png";
  const test::CommandResult edited =
      run_command(ebb::generate(png, "-i " + init + " --strength 0.5", ""));
  ASSERT_EQ(edited.status, 0) << edited.out;
  EXPECT_THAT(edited.out, HasSubstr("step 1/1"));  // floor(2 * 0.5) of 2 steps
  const std::vector<uint8_t> written = file_bytes(png);
  const Image image = decode_png(written, png);
  EXPECT_EQ(image.width, 16);
  EXPECT_EQ(image.height, 16);
  const std::string text(written.begin(), written.end());
  EXPECT_THAT(text, HasSubstr("Steps: 2"));
  EXPECT_THAT(text, HasSubstr("Size: 16x16"));
  EXPECT_THAT(text, HasSubstr("Denoising strength: 0.5"));

  const std::string from_text = dir / "from_text.png";
  ASSERT_EQ(run_command(ebb::generate(from_text, "", "-W 16 -H 16")).status, 0);
  const std::vector<uint8_t> text_png = file_bytes(from_text);
  EXPECT_THAT(std::string(text_png.begin(), text_png.end()),
              ::testing::Not(HasSubstr("Denoising strength")));
  EXPECT_NE(decode_png(text_png, from_text).pixels, image.pixels);

  const test::CommandResult size =
      run_command(ebb::generate(dir / "never.png", "-i " + init, "-W 32"));
  EXPECT_EQ(size.status, 1);
  EXPECT_THAT(size.out, HasSubstr("is 16x16 but -W/-H ask for 32x16"));
  const test::CommandResult weak =
      run_command(ebb::generate(dir / "never.png", "-i " + init + " --strength 0.1", ""));
  EXPECT_EQ(weak.status, 1);
  EXPECT_THAT(weak.out, HasSubstr("raise --strength or --steps"));
  EXPECT_FALSE(std::filesystem::exists(dir / "never.png"));
}

}  // namespace
}  // namespace ebb
