// Scalar conversions on known values: RNE ties, limits, subnormals, NaN.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include <gtest/gtest.h>

#include "flashmla_ref/numeric.h"

namespace flashmla::ref {
namespace {

float from_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

TEST(Numeric, Bf16RoundsTiesToEven) {
  EXPECT_EQ(float_to_bf16(1.0f + 0x1p-8f), 0x3F80);         // tie, 1.0 is even
  EXPECT_EQ(float_to_bf16(1.0f + 3 * 0x1p-8f), 0x3F82);     // tie, rounds up to even
  EXPECT_EQ(float_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3F81);  // just above the tie
  EXPECT_EQ(float_to_bf16(-1.0f - 0x1p-8f), 0xBF80);
  EXPECT_EQ(float_to_bf16(0x1.fep127f * 1.0f), 0x7F7F);
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::max()), 0x7F80);  // rounds up to inf
}

TEST(Numeric, Bf16KnownValuesAndNaN) {
  EXPECT_EQ(bf16_to_float(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_float(0xC000), -2.0f);
  EXPECT_EQ(bf16_to_float(0x0001), 0x1p-133f);  // smallest subnormal
  EXPECT_TRUE(std::isnan(bf16_to_float(0x7FC0)));
  EXPECT_TRUE(std::isnan(bf16_to_float(0xFFFF)));
  // A NaN whose payload sits only in the dropped bits must stay NaN, not inf.
  const uint16_t nan_bits = float_to_bf16(from_bits(0x7F800001u));
  EXPECT_TRUE(std::isnan(bf16_to_float(nan_bits)));
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(float_to_bf16(-std::numeric_limits<float>::infinity()), 0xFF80);
}

TEST(Numeric, Bf16RoundTripsEveryFiniteCode) {
  for (uint32_t bits = 0; bits < 0x10000u; ++bits) {
    const float f = bf16_to_float(uint16_t(bits));
    if (std::isnan(f)) continue;
    ASSERT_EQ(float_to_bf16(f), bits) << std::hex << bits;
  }
}

TEST(Numeric, Fp16KnownValues) {
  EXPECT_EQ(float_to_fp16(1.0f), 0x3C00);
  EXPECT_EQ(float_to_fp16(65504.0f), 0x7BFF);                 // max finite
  EXPECT_EQ(float_to_fp16(65519.0f), 0x7BFF);                 // below the tie
  EXPECT_EQ(float_to_fp16(65520.0f), 0x7C00);                 // tie rounds to even: inf
  EXPECT_EQ(float_to_fp16(1.0f + 0x1p-11f), 0x3C00);          // tie to even
  EXPECT_EQ(float_to_fp16(1.0f + 3 * 0x1p-11f), 0x3C02);
  EXPECT_EQ(float_to_fp16(0x1p-14f), 0x0400);                 // min normal
  EXPECT_EQ(float_to_fp16(0x1p-24f), 0x0001);                 // min subnormal
  EXPECT_EQ(float_to_fp16(0x1p-25f), 0x0000);                 // tie with 0: even
  EXPECT_EQ(float_to_fp16(3 * 0x1p-26f), 0x0001);
  EXPECT_EQ(float_to_fp16(3 * 0x1p-25f), 0x0002);             // 1.5 units: tie to even 2
  EXPECT_EQ(float_to_fp16(0x1.ffcp-15f), 0x0400);             // subnormal carrying into normal
  EXPECT_EQ(float_to_fp16(-2.0f), 0xC000);
  EXPECT_EQ(fp16_to_float(0x0001), 0x1p-24f);
  EXPECT_EQ(fp16_to_float(0xFBFF), -65504.0f);
  EXPECT_TRUE(std::isnan(fp16_to_float(0x7E00)));
  EXPECT_TRUE(std::isnan(fp16_to_float(float_to_fp16(std::nanf("")))));
  EXPECT_EQ(float_to_fp16(std::numeric_limits<float>::infinity()), 0x7C00);
}

TEST(Numeric, Fp16RoundTripsEveryFiniteCode) {
  for (uint32_t bits = 0; bits < 0x10000u; ++bits) {
    const float f = fp16_to_float(uint16_t(bits));
    if (std::isnan(f)) continue;
    ASSERT_EQ(float_to_fp16(f), bits) << std::hex << bits;
  }
}

TEST(Numeric, E4m3MaxIs448AndOverflowIsNaN) {
  EXPECT_EQ(e4m3_to_float(0x7E), 448.0f);
  EXPECT_EQ(e4m3_to_float(0xFE), -448.0f);
  EXPECT_EQ(float_to_e4m3(448.0f), 0x7E);
  EXPECT_EQ(float_to_e4m3(-448.0f), 0xFE);
  EXPECT_EQ(float_to_e4m3(464.0f), 0x7E);  // tie between 448 and 480: even code 0x7E
  EXPECT_EQ(float_to_e4m3(465.0f), 0x7F);  // rounds to the NaN code
  EXPECT_EQ(float_to_e4m3(1e6f), 0x7F);
  EXPECT_EQ(float_to_e4m3(-1e6f), 0xFF);
  EXPECT_EQ(float_to_e4m3(std::numeric_limits<float>::infinity()), 0x7F);
  EXPECT_EQ(e4m3_to_float(0x77), 240.0f);
}

TEST(Numeric, E4m3NaNCodes) {
  EXPECT_TRUE(std::isnan(e4m3_to_float(0x7F)));
  EXPECT_TRUE(std::isnan(e4m3_to_float(0xFF)));
  EXPECT_EQ(float_to_e4m3(std::nanf("")) & 0x7F, 0x7F);
  int nan_codes = 0;
  for (int code = 0; code < 256; ++code) nan_codes += std::isnan(e4m3_to_float(uint8_t(code)));
  EXPECT_EQ(nan_codes, 2);
}

TEST(Numeric, E4m3Subnormals) {
  EXPECT_EQ(e4m3_to_float(0x01), 0x1p-9f);
  EXPECT_EQ(e4m3_to_float(0x07), 7 * 0x1p-9f);
  EXPECT_EQ(e4m3_to_float(0x08), 0x1p-6f);  // min normal
  EXPECT_EQ(float_to_e4m3(0x1p-10f), 0x00);       // tie with 0: even
  EXPECT_EQ(float_to_e4m3(3 * 0x1p-11f), 0x01);   // 0.75 units
  EXPECT_EQ(float_to_e4m3(3 * 0x1p-10f), 0x02);   // 1.5 units: tie to even 2
  EXPECT_EQ(float_to_e4m3(5 * 0x1p-10f), 0x02);   // 2.5 units: tie to even 2
  EXPECT_EQ(float_to_e4m3(15 * 0x1p-10f), 0x08);  // 7.5 units: carries into the min normal
  EXPECT_EQ(float_to_e4m3(-0x1p-9f), 0x81);
  EXPECT_EQ(float_to_e4m3(1e-30f), 0x00);
}

TEST(Numeric, E4m3NormalTiesToEven) {
  EXPECT_EQ(float_to_e4m3(1.0f), 0x38);
  EXPECT_EQ(float_to_e4m3(1.0f + 0x1p-4f), 0x38);      // tie between 1 and 1.125
  EXPECT_EQ(float_to_e4m3(1.0f + 3 * 0x1p-4f), 0x3A);  // tie between 1.125 and 1.25
  EXPECT_EQ(float_to_e4m3(1.0f + 0x1p-4f + 0x1p-10f), 0x39);
}

TEST(Numeric, E4m3RoundTripsEveryCode) {
  for (int code = 0; code < 256; ++code) {
    const float f = e4m3_to_float(uint8_t(code));
    if (std::isnan(f)) continue;
    ASSERT_EQ(float_to_e4m3(f), code) << code;
  }
}

TEST(Numeric, Ue8m0Scales) {
  EXPECT_EQ(ue8m0_to_float(127), 1.0f);
  EXPECT_EQ(ue8m0_to_float(119), 0x1p-8f);
  EXPECT_EQ(ue8m0_to_float(254), 0x1p127f);
  EXPECT_EQ(ue8m0_to_float(0), 0x1p-127f);
  EXPECT_TRUE(std::isnan(ue8m0_to_float(0xFF)));
}

TEST(Numeric, DoubleToNarrowRoundsOnce) {
  // float(d) lands exactly on the bf16 tie; the correct result rounds up.
  EXPECT_EQ(double_to_bf16(1.0 + 0x1p-8 + 0x1p-40), 0x3F81);
  EXPECT_EQ(double_to_bf16(1.0 + 0x1p-8), 0x3F80);
  EXPECT_EQ(double_to_fp16(1.0 + 0x1p-11 + 0x1p-45), 0x3C01);
  EXPECT_EQ(double_to_fp16(1.0 + 0x1p-11), 0x3C00);
  EXPECT_EQ(double_to_bf16(-0.0), 0x8000);
  EXPECT_EQ(double_to_fp16(1e10), 0x7C00);
  EXPECT_TRUE(std::isnan(bf16_to_float(double_to_bf16(std::nan("")))));
}

}  // namespace
}  // namespace flashmla::ref
