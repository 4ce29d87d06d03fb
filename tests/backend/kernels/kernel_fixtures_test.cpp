// The CPU kernels against PyTorch/diffusers outputs stored by
// tools/reference/make_kernel_fixtures.py in tests/data/kernels.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backend/cpu/kernels/activations.h"
#include "backend/cpu/kernels/attention.h"
#include "backend/cpu/kernels/rope.h"
#include "backend/cpu/kernels/softmax.h"
#include "backend/cpu/kernels/timestep_embedding.h"
#include "backend/cpu/thread_pool.h"
#include "kernel_test_util.h"

namespace ebb::cpu {
namespace {

using nlohmann::json;

const std::string kDir = std::string(EBB_TEST_DATA_DIR) + "/kernels/";

struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> f32;
  std::vector<int64_t> i64;
};

struct Fixture {
  std::string name;
  json params;
  std::map<std::string, Tensor> tensors;

  const Tensor& at(const std::string& key) const { return tensors.at(key); }
  bool has(const std::string& key) const { return tensors.count(key) > 0; }
};

template <typename T>
std::vector<T> read_values(const std::string& file, size_t count) {
  std::ifstream in(kDir + file, std::ios::binary);
  std::vector<T> values(count);
  in.read(reinterpret_cast<char*>(values.data()), static_cast<std::streamsize>(count * sizeof(T)));
  EXPECT_TRUE(in && in.peek() == EOF) << file << " does not hold " << count << " values";
  return values;
}

std::vector<Fixture> fixtures_of(const std::string& kind) {
  std::ifstream in(kDir + "manifest.json");
  const json manifest = json::parse(in);
  std::vector<Fixture> out;
  for (const auto& [name, entry] : manifest.at("fixtures").items()) {
    if (entry.at("kind") != kind) continue;
    Fixture f{name, entry.at("params"), {}};
    for (const auto& [key, t] : entry.at("tensors").items()) {
      Tensor tensor{t.at("shape").get<std::vector<int64_t>>()};
      size_t count = 1;
      for (int64_t d : tensor.shape) count *= d;
      if (t.at("dtype") == "i64") {
        tensor.i64 = read_values<int64_t>(t.at("file"), count);
      } else {
        tensor.f32 = read_values<float>(t.at("file"), count);
      }
      f.tensors.emplace(key, std::move(tensor));
    }
    out.push_back(std::move(f));
  }
  EXPECT_FALSE(out.empty()) << "no " << kind << " fixtures in " << kDir;
  return out;
}

double rel_error(const std::vector<float>& got, const std::vector<float>& want) {
  EXPECT_EQ(got.size(), want.size());
  const std::vector<double> w(want.begin(), want.end());
  return test::relative_error(got.data(), w.data(), std::min(got.size(), want.size()));
}

class KernelFixtures : public testing::TestWithParam<Isa> {
 protected:
  ThreadPool pool_{3};
};

TEST_P(KernelFixtures, AttentionMatchesTorchSdpa) {
  for (const Fixture& f : fixtures_of("attention")) {
    SCOPED_TRACE(f.name);
    const json& p = f.params;
    const AttentionShape shape{p.at("batch"), p.at("heads"), p.at("q_len"), p.at("kv_len"),
                               p.at("head_dim")};
    const bool blhd = p.at("layout") == "blhd";
    auto strides = [&](int64_t len) {
      return blhd ? blhd_strides(shape.heads, len, shape.head_dim)
                  : bhld_strides(shape.heads, len, shape.head_dim);
    };
    std::vector<float> out(shape.batch * shape.heads * shape.q_len * shape.head_dim);
    AttentionArgs args;
    args.shape = shape;
    args.q = f.at("q").f32.data();
    args.q_strides = strides(shape.q_len);
    args.k = f.at("k").f32.data();
    args.k_strides = strides(shape.kv_len);
    args.v = f.at("v").f32.data();
    args.v_strides = strides(shape.kv_len);
    args.out = out.data();
    args.out_strides = strides(shape.q_len);
    if (f.has("mask")) {
      // Broadcast the stored mask's leading size-1 dimensions with zero strides.
      std::vector<int64_t> dims = f.at("mask").shape;
      dims.insert(dims.begin(), 4 - dims.size(), 1);
      args.mask = f.at("mask").f32.data();
      args.mask_strides = {dims[0] == 1 ? 0 : dims[1] * dims[2] * dims[3],
                           dims[1] == 1 ? 0 : dims[2] * dims[3], dims[2] == 1 ? 0 : dims[3],
                           dims[3] == 1 ? 0 : 1};
    }
    std::vector<std::byte> scratch(attention_scratch_bytes(shape, pool_.size()));
    attention(args, scratch, pool_, GetParam());

    std::vector<float> got;
    if (f.has("out_rows")) {
      const Strides4 os = args.out_strides;
      for (int64_t b = 0; b < shape.batch; ++b)
        for (int64_t h = 0; h < shape.heads; ++h)
          for (int64_t i : f.at("out_rows").i64)
            for (int64_t d = 0; d < shape.head_dim; ++d)
              got.push_back(out[b * os.batch + h * os.head + i * os.row + d]);
      if (blhd) FAIL() << "sampled rows are stored [B, H, rows, D]";
    } else {
      got = out;
    }
    const double error = rel_error(got, f.at("out").f32);
    EXPECT_LE(error, 1e-5);
    RecordProperty(f.name, fmt::format("{:.3g}", error));
  }
}

TEST_P(KernelFixtures, ActivationsMatchTorch) {
  struct Case {
    const char* kind;
    std::function<void(const Fixture&, std::vector<float>&)> run;
  };
  const Case cases[] = {
      {"silu",
       [&](const Fixture& f, std::vector<float>& y) {
         silu(f.at("x").f32.data(), y.data(), y.size(), pool_, GetParam());
       }},
      {"sigmoid",
       [&](const Fixture& f, std::vector<float>& y) {
         sigmoid(f.at("x").f32.data(), y.data(), y.size(), pool_, GetParam());
       }},
      {"gelu",
       [&](const Fixture& f, std::vector<float>& y) {
         const auto a = f.params.at("approximate") == "tanh" ? GeluApproximation::Tanh
                                                             : GeluApproximation::None;
         gelu(f.at("x").f32.data(), y.data(), y.size(), a, pool_, GetParam());
       }},
      {"geglu",
       [&](const Fixture& f, std::vector<float>& y) {
         const int64_t rows = f.at("x").shape[0], width = f.at("x").shape[1];
         geglu(f.at("x").f32.data(), width, y.data(), width / 2, rows, width / 2,
               GeluApproximation::None, pool_, GetParam());
       }},
      {"softmax",
       [&](const Fixture& f, std::vector<float>& y) {
         const int64_t rows = f.at("x").shape[0], cols = f.at("x").shape[1];
         softmax_rows(f.at("x").f32.data(), cols, y.data(), cols, rows, cols, pool_, GetParam());
       }},
  };
  for (const auto& c : cases) {
    for (const Fixture& f : fixtures_of(c.kind)) {
      SCOPED_TRACE(f.name);
      std::vector<float> y(f.at("out").f32.size());
      c.run(f, y);
      EXPECT_LE(rel_error(y, f.at("out").f32), 1e-6);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isas, KernelFixtures, testing::ValuesIn(test::runnable_isas()),
                         test::isa_param_name);

TEST(KernelFixtures, TimestepEmbeddingMatchesDiffusers) {
  for (const Fixture& f : fixtures_of("timestep_embedding")) {
    SCOPED_TRACE(f.name);
    const json& p = f.params;
    const TimestepEmbeddingParams params{p.at("flip_sin_to_cos"), p.at("downscale_freq_shift"),
                                         p.at("scale"), p.at("max_period"), p.at("time_factor")};
    const auto& t = f.at("t").f32;
    std::vector<float> out(f.at("out").f32.size());
    timestep_embedding(t.data(), static_cast<int64_t>(t.size()), p.at("dim"), params, out.data());
    // An ulp of difference between torch's exp and libm's, times t ≈ 1000, sets the bound.
    EXPECT_LE(rel_error(out, f.at("out").f32), 1e-5);
  }
}

TEST(KernelFixtures, RopeMatchesDiffusers) {
  ThreadPool pool(3);
  for (const Fixture& f : fixtures_of("rope")) {
    SCOPED_TRACE(f.name);
    const bool interleaved = f.params.at("layout") == "interleaved_pairs";
    const auto& x = f.at("x");
    const RopeShape shape{x.shape[0], x.shape[1], x.shape[2], x.shape[3]};
    const int64_t pairs = shape.head_dim / 2;

    // diffusers stores one cos/sin per channel; each pair's angle appears at both its channels.
    std::vector<float> ref_cos, ref_sin;
    for (int64_t t = 0; t < shape.tokens; ++t)
      for (int64_t p = 0; p < pairs; ++p) {
        const int64_t c = t * shape.head_dim + (interleaved ? 2 * p : p);
        ref_cos.push_back(f.at("cos").f32[c]);
        ref_sin.push_back(f.at("sin").f32[c]);
      }
    const auto axes = f.params.at("axes_dim").get<std::vector<int64_t>>();
    std::vector<float> cos(ref_cos.size()), sin(ref_sin.size());
    rope_tables(f.at("ids").f32.data(), shape.tokens, axes, f.params.at("theta"), cos.data(),
                sin.data());
    EXPECT_LE(rel_error(cos, ref_cos), 1e-6);
    EXPECT_LE(rel_error(sin, ref_sin), 1e-6);

    const Strides4 st = bhld_strides(shape.heads, shape.tokens, shape.head_dim);
    std::vector<float> y(x.f32.size());
    apply_rope(x.f32.data(), st, y.data(), st, shape, cos.data(), sin.data(),
               interleaved ? RopeLayout::InterleavedPairs : RopeLayout::SplitHalves, pool);
    EXPECT_LE(rel_error(y, f.at("out").f32), 1e-6);
  }
}

}  // namespace
}  // namespace ebb::cpu
