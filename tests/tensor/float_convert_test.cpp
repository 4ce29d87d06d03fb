#include "tensor/float_convert.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "quant_fixtures.h"

namespace ebb {
namespace {

// Decoders written from the format definitions (sign, biased exponent, mantissa) with ldexp,
// independent of the bit tricks under test.
double decode_ieee(uint32_t bits, int exp_bits, int man_bits, bool has_inf) {
  const int bias = (1 << (exp_bits - 1)) - 1;
  const uint32_t man = bits & ((1u << man_bits) - 1);
  const uint32_t exp = (bits >> man_bits) & ((1u << exp_bits) - 1);
  const double sign = (bits >> (exp_bits + man_bits)) & 1 ? -1.0 : 1.0;
  const uint32_t top = (1u << exp_bits) - 1;
  if (has_inf && exp == top)
    return man == 0 ? sign * INFINITY : std::numeric_limits<double>::quiet_NaN();
  if (!has_inf && exp == top && man == (1u << man_bits) - 1)
    return std::numeric_limits<double>::quiet_NaN();
  if (exp == 0) return sign * std::ldexp(man, 1 - bias - man_bits);
  return sign * std::ldexp((1u << man_bits) + man, static_cast<int>(exp) - bias - man_bits);
}

double ref_f16(uint32_t h) {
  return decode_ieee(h, 5, 10, true);
}
double ref_bf16(uint32_t b) {
  return decode_ieee(b, 8, 7, true);
}

void expect_same(float got, double want, uint32_t pattern) {
  if (std::isnan(want)) {
    EXPECT_TRUE(std::isnan(got)) << std::hex << pattern;
  } else {
    EXPECT_EQ(static_cast<double>(got), want) << std::hex << pattern;
    EXPECT_EQ(std::signbit(got), std::signbit(want)) << std::hex << pattern;
  }
}

// Correct rounding by search: positive patterns 0 .. inf_pattern-1 increase with their values,
// and inf_pattern stands for the next power of two beyond the largest finite value for the
// purpose of rounding (IEEE: values at or above the midpoint round to infinity).
uint16_t round_by_search(float x, uint32_t inf_pattern, double overflow_value,
                         double (*decode)(uint32_t)) {
  const uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  const double a = std::fabs(static_cast<double>(x));
  auto value = [&](uint32_t p) { return p == inf_pattern ? overflow_value : decode(p); };
  if (a >= overflow_value) return sign | static_cast<uint16_t>(inf_pattern);
  uint32_t lo = 0, hi = inf_pattern;  // value(lo) <= a < value(hi)
  while (hi - lo > 1) {
    const uint32_t mid = (lo + hi) / 2;
    (value(mid) <= a ? lo : hi) = mid;
  }
  const double below = a - value(lo), above = value(hi) - a;
  const uint32_t pick = below < above ? lo : above < below ? hi : (lo % 2 == 0 ? lo : hi);
  return sign | static_cast<uint16_t>(pick);
}

uint16_t ref_to_f16(float x) {
  return round_by_search(x, 0x7C00, 65536.0, ref_f16);
}
uint16_t ref_to_bf16(float x) {
  return round_by_search(x, 0x7F80, std::ldexp(1.0, 128), ref_bf16);
}

// Random bit patterns, values spread over the f16 range, and exact midpoints between
// neighbouring f16 and bf16 values (and one f32 ulp either side).
std::vector<float> rounding_probes() {
  std::mt19937_64 rng(7);
  std::vector<float> probes;
  for (int i = 0; i < 200000; ++i)
    probes.push_back(std::bit_cast<float>(static_cast<uint32_t>(rng())));
  std::uniform_real_distribution<double> exponent(-27.0, 17.0);
  for (int i = 0; i < 200000; ++i)
    probes.push_back(static_cast<float>((rng() & 1 ? -1 : 1) * std::exp2(exponent(rng))));
  for (uint32_t h = 0; h < 0x7BFF; ++h) {
    const float mid = static_cast<float>((ref_f16(h) + ref_f16(h + 1)) / 2);
    for (float f : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY)}) {
      probes.push_back(f);
      probes.push_back(-f);
    }
  }
  for (int i = 0; i < 100000; ++i) {
    const uint32_t b = static_cast<uint32_t>(rng()) & 0xFFFF0000u;
    probes.push_back(std::bit_cast<float>(b | 0x8000u));
    probes.push_back(std::bit_cast<float>(b | 0x7FFFu));
    probes.push_back(std::bit_cast<float>(b | 0x8001u));
  }
  return probes;
}

TEST(FloatConvert, F16DecodesEveryPattern) {
  for (uint32_t h = 0; h < 0x10000; ++h)
    expect_same(f16_to_f32(static_cast<uint16_t>(h)), ref_f16(h), h);
}

TEST(FloatConvert, Bf16DecodesEveryPattern) {
  for (uint32_t b = 0; b < 0x10000; ++b)
    expect_same(bf16_to_f32(static_cast<uint16_t>(b)), ref_bf16(b), b);
}

TEST(FloatConvert, F8DecodesEveryPattern) {
  for (uint32_t c = 0; c < 256; ++c) {
    expect_same(f8_e4m3_to_f32(static_cast<uint8_t>(c)), decode_ieee(c, 4, 3, false), c);
    expect_same(f8_e5m2_to_f32(static_cast<uint8_t>(c)), decode_ieee(c, 5, 2, true), c);
  }
  EXPECT_EQ(f8_e4m3_to_f32(0x7E), 448.0f);
  EXPECT_TRUE(std::isnan(f8_e4m3_to_f32(0xFF)));
  EXPECT_EQ(f8_e5m2_to_f32(0xFC), -INFINITY);
}

TEST(FloatConvert, F8MatchesMlDtypes) {
  const auto e4m3 = test::read_quant_fixture<float>("f8_e4m3.f32");
  const auto e5m2 = test::read_quant_fixture<float>("f8_e5m2.f32");
  ASSERT_EQ(e4m3.size(), 256u);
  ASSERT_EQ(e5m2.size(), 256u);
  for (uint32_t c = 0; c < 256; ++c) {
    expect_same(f8_e4m3_to_f32(static_cast<uint8_t>(c)), e4m3[c], c);
    expect_same(f8_e5m2_to_f32(static_cast<uint8_t>(c)), e5m2[c], c);
  }
}

TEST(FloatConvert, F16RoundTripsEveryPattern) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const uint16_t back = f32_to_f16(f16_to_f32(static_cast<uint16_t>(h)));
    if ((h & 0x7FFF) > 0x7C00) {
      EXPECT_TRUE((back & 0x7FFF) > 0x7C00) << std::hex << h;
      EXPECT_EQ(back & 0x8000, h & 0x8000) << std::hex << h;
    } else {
      EXPECT_EQ(back, h) << std::hex << h;
    }
  }
}

TEST(FloatConvert, Bf16RoundTripsEveryPattern) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const uint16_t back = f32_to_bf16(bf16_to_f32(static_cast<uint16_t>(b)));
    if ((b & 0x7FFF) > 0x7F80) {
      EXPECT_TRUE((back & 0x7FFF) > 0x7F80) << std::hex << b;
    } else {
      EXPECT_EQ(back, b) << std::hex << b;
    }
  }
}

TEST(FloatConvert, F32ToF16RoundsToNearestEven) {
  for (float x : rounding_probes()) {
    if (std::isnan(x)) {
      const uint16_t h = f32_to_f16(x);
      EXPECT_TRUE((h & 0x7FFF) > 0x7C00) << x;
      continue;
    }
    ASSERT_EQ(f32_to_f16(x), ref_to_f16(x)) << std::hexfloat << x;
  }
  EXPECT_EQ(f32_to_f16(65519.996f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);
  EXPECT_EQ(f32_to_f16(0x1p-25f), 0x0000);
  EXPECT_EQ(f32_to_f16(0x3p-25f), 0x0002);
  EXPECT_EQ(f32_to_f16(-INFINITY), 0xFC00);
}

TEST(FloatConvert, F32ToBf16RoundsToNearestEven) {
  for (float x : rounding_probes()) {
    if (std::isnan(x)) {
      EXPECT_TRUE((f32_to_bf16(x) & 0x7FFF) > 0x7F80) << x;
      continue;
    }
    ASSERT_EQ(f32_to_bf16(x), ref_to_bf16(x)) << std::hexfloat << x;
  }
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7F80);
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x7F800001u)) & 0x7FFF, 0x7FC0);
}

TEST(FloatConvert, RoundingMatchesNumpyAndMlDtypes) {
  const auto inputs = test::read_quant_fixture<float>("rounding_inputs.f32");
  const auto f16 = test::read_quant_fixture<uint16_t>("rounding_f16.u16");
  const auto bf16 = test::read_quant_fixture<uint16_t>("rounding_bf16.u16");
  ASSERT_GT(inputs.size(), 8000u);
  ASSERT_EQ(f16.size(), inputs.size());
  ASSERT_EQ(bf16.size(), inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (std::isnan(inputs[i])) {
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(inputs[i])))) << i;
      EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(inputs[i])))) << i;
      continue;
    }
    EXPECT_EQ(f32_to_f16(inputs[i]), f16[i]) << i << " " << std::hexfloat << inputs[i];
    EXPECT_EQ(f32_to_bf16(inputs[i]), bf16[i]) << i << " " << std::hexfloat << inputs[i];
  }
}

}  // namespace
}  // namespace ebb
