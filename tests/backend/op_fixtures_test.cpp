// The CPU ops against PyTorch (tests/data/ops, written by
// tools/reference/make_dense_op_fixtures.py). Operands are used where they lie in the mapped
// file, read-only and zero-copy, as weights in a mapped checkpoint are.
#include <gtest/gtest.h>

#include <filesystem>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "op_test_util.h"
#include "safetensors_fixture.h"

namespace ebb {
namespace {

// References are computed in float64 from the stored values, f16/bf16 weights included (upcast
// exactly), so F32 accumulation error is all that separates the op from them: 1e-5 holds for
// every weight dtype here. Elementwise ops are one rounding away; layout ops exact.
constexpr double kTolerance = 1e-5;
constexpr double kElementwiseTolerance = 1e-7;

std::vector<double> as_doubles(Backend& be, const Tensor& t) {
  const std::vector<float> f = test::download(be, be.contiguous(t));
  return {f.begin(), f.end()};
}

Tensor optional(const test::OpFixture& f, const std::string& key) {
  auto it = f.tensors.find(key);
  return it == f.tensors.end() ? Tensor{} : it->second;
}

std::vector<std::string> fixture_paths() {
  std::vector<std::string> paths;
  for (const auto& e : std::filesystem::directory_iterator(EBB_TEST_DATA_DIR "/ops"))
    if (e.path().extension() == ".safetensors") paths.push_back(e.path().string());
  std::sort(paths.begin(), paths.end());
  return paths;
}

class OpFixtures : public ::testing::TestWithParam<std::string> {};

TEST_P(OpFixtures, MatchesPyTorch) {
  const test::OpFixture f = test::load_op_fixture(GetParam());
  CpuBackend be(2);
  const auto& p = f.params;
  const std::string op = p.at("op");
  const auto& t = f.tensors;
  auto in = [&](const std::string& key) { return t.at(key); };
  std::vector<Tensor> outs;
  double tolerance = kTolerance;
  if (op == "linear") {
    outs = {be.linear(in("x"), in("w"), optional(f, "b"))};
  } else if (op == "conv2d") {
    const auto pad = p.at("pad").get<std::vector<int>>();
    outs = {be.conv2d(in("x"), in("w"), optional(f, "b"),
                      Conv2dGeometry{p.at("stride"), pad[0], pad[1], pad[2], pad[3]})};
  } else if (op == "group_norm") {
    outs = {be.group_norm(in("x"), p.at("groups"), optional(f, "gamma"), optional(f, "beta"),
                          p.at("eps"))};
  } else if (op == "layer_norm") {
    outs = {be.layer_norm(in("x"), optional(f, "gamma"), optional(f, "beta"), p.at("eps"))};
  } else if (op == "rms_norm") {
    outs = {be.rms_norm(in("x"), in("gamma"), p.at("eps"))};
  } else if (op == "add" || op == "mul") {
    outs = {op == "add" ? be.add(in("a"), in("b")) : be.mul(in("a"), in("b"))};
    tolerance = kElementwiseTolerance;
  } else if (op == "concat") {
    outs = {be.concat({in("a"), in("b")}, p.at("dim"))};
    tolerance = 0;
  } else if (op == "upsample_nearest2x") {
    outs = {be.upsample_nearest2x(in("x"))};
    tolerance = 0;
  } else if (op == "permute") {
    outs = {be.permute(in("x"), p.at("dims").get<std::vector<int>>())};
    tolerance = 0;
  } else if (op == "split") {
    outs = be.split(in("x"), p.at("sizes").get<std::vector<int64_t>>(), p.at("dim"));
    tolerance = 0;
  } else {
    FAIL() << "unknown op " << op;
  }
  for (size_t i = 0; i < outs.size(); ++i) {
    const Tensor& expected = outs.size() == 1 ? t.at("out") : t.at(fmt::format("out{}", i));
    ASSERT_EQ(outs[i].shape(), expected.shape()) << f.name;
    const double err = test::relative_error(test::download(be, outs[i]), as_doubles(be, expected));
    EXPECT_LE(err, tolerance) << f.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, OpFixtures, ::testing::ValuesIn(fixture_paths()),
                         [](const auto& info) {
                           return std::filesystem::path(info.param).stem().string();
                         });

}  // namespace
}  // namespace ebb
