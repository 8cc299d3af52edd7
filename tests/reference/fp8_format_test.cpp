// FP8 cache formats: hand-computed bytes of chosen tokens, and round trips.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "common/random_values.h"
#include "flashmla_ref/fp8_format.h"
#include "flashmla_ref/numeric.h"

namespace flashmla::ref {
namespace {

// A V32 token: tile 0 holds 1.0 and -0.5 (amax 1 -> scale 2^-8), tile 1 is
// all zero (scale clamps to 2^-13), tile 2 holds 0.875 (amax / 448 = 2^-9
// exactly -> scale 2^-9), tile 3 holds 3.0 (scale 2^-7); RoPE dim 512 is
// 1.0 and dim 575 is -2.0.
std::vector<uint16_t> hand_v32_values() {
  std::vector<uint16_t> x(576, 0);
  x[0] = 0x3F80;    // 1.0
  x[1] = 0xBF00;    // -0.5
  x[256] = 0x3F60;  // 0.875
  x[384] = 0x4040;  // 3.0
  x[512] = 0x3F80;  // 1.0
  x[575] = 0xC000;  // -2.0
  return x;
}

TEST(Fp8Format, ScaleExponent) {
  EXPECT_EQ(fp8_scale_exponent(0.0f), -13);  // the 1e-4 floor: ceil(log2(1e-4)) = -13
  EXPECT_EQ(fp8_scale_exponent(448.0f), 0);
  EXPECT_EQ(fp8_scale_exponent(449.0f), 1);
  EXPECT_EQ(fp8_scale_exponent(56.0f), -3);  // 448 * 2^-3 exactly
  EXPECT_EQ(fp8_scale_exponent(1.0f), -8);
  EXPECT_EQ(fp8_scale_exponent(0.0448f), -13);
}

TEST(Fp8Format, V32HandComputedBytes) {
  std::vector<uint8_t> token(656, 0xAA);
  encode_v32_token(hand_v32_values().data(), token.data());
  EXPECT_EQ(token[0], 0x78);    // 1.0 / 2^-8 = 256 = 2^8: exponent 15, mantissa 0
  EXPECT_EQ(token[1], 0xF0);    // -0.5 / 2^-8 = -128 = -2^7
  EXPECT_EQ(token[2], 0x00);
  EXPECT_EQ(token[256], 0x7E);  // 0.875 / 2^-9 = 448
  EXPECT_EQ(token[384], 0x7C);  // 3.0 / 2^-7 = 384 = 1.5 * 2^8
  const uint8_t scales[16] = {0x00, 0x00, 0x80, 0x3B,   // 2^-8
                              0x00, 0x00, 0x00, 0x39,   // 2^-13
                              0x00, 0x00, 0x00, 0x3B,   // 2^-9
                              0x00, 0x00, 0x00, 0x3C};  // 2^-7
  for (int k = 0; k < 16; ++k) EXPECT_EQ(token[size_t(512 + k)], scales[k]) << "scale byte " << k;
  EXPECT_EQ(token[528], 0x80);  // RoPE dim 512 = bf16 0x3F80, little-endian
  EXPECT_EQ(token[529], 0x3F);
  EXPECT_EQ(token[654], 0x00);  // RoPE dim 575 = bf16 0xC000
  EXPECT_EQ(token[655], 0xC0);
  for (int k = 530; k < 654; ++k) EXPECT_EQ(token[size_t(k)], 0x00) << k;
}

TEST(Fp8Format, V32HandTokenDecodesExactly) {
  const std::vector<uint16_t> x = hand_v32_values();
  std::vector<uint8_t> token(656);
  encode_v32_token(x.data(), token.data());
  std::vector<uint16_t> y(576);
  decode_v32_token(token.data(), y.data());
  for (int d = 0; d < 576; ++d) EXPECT_EQ(y[size_t(d)], x[size_t(d)]) << d;
}

TEST(Fp8Format, V32DequantUsesBf16OfScale) {
  // A hand-written scale that is not a power of two: 1 + 2^-8 is a bf16
  // tie and rounds to 1.0, so code 0x38 (1.0) decodes to exactly 1.0.
  std::vector<uint8_t> token(656, 0);
  token[0] = 0x38;
  const float scale = 1.0f + 0x1p-8f;
  std::memcpy(token.data() + 512, &scale, 4);
  std::vector<uint16_t> y(576);
  decode_v32_token(token.data(), y.data());
  EXPECT_EQ(y[0], 0x3F80);
}

TEST(Fp8Format, V32RoundTripError) {
  test::Rng rng(7);
  std::vector<uint16_t> x(576), y(576);
  std::vector<uint8_t> token(656);
  for (int trial = 0; trial < 50; ++trial) {
    for (auto& v : x) v = rng.value_bits(DType::kBFloat16);
    encode_v32_token(x.data(), token.data());
    decode_v32_token(token.data(), y.data());
    for (int d = 0; d < 576; ++d) {
      const float a = bf16_to_float(x[size_t(d)]), b = bf16_to_float(y[size_t(d)]);
      float scale;
      std::memcpy(&scale, token.data() + 512 + 4 * (d / 128 < 4 ? d / 128 : 0), 4);
      if (d >= 512) {
        ASSERT_EQ(x[size_t(d)], y[size_t(d)]) << "RoPE dims are stored exactly";
      } else {
        // e4m3 keeps 3 mantissa bits: relative error <= 2^-4 of normals,
        // absolute <= half a subnormal step (2^-10 * scale).
        ASSERT_LE(std::fabs(a - b), std::fmax(std::fabs(a) * 0x1p-4f, scale * 0x1p-10f)) << d;
      }
    }
  }
}

TEST(Fp8Format, Model1HandComputedBytes) {
  // Page of P = 3 tokens; token r = 2. Region A at 576 * 2, region B at
  // 576 * 3 + 8 * 2 = 1744. Every other byte of the page must stay as it was.
  const int64_t P = 3, r = 2;
  std::vector<uint8_t> page(size_t(model1_page_bytes(P)), 0xAA);
  std::vector<uint16_t> x(512, 0);
  x[0] = 0x3F80;    // 1.0: tile 0 scale 2^-8 -> byte 119, code 0x78
  x[64] = 0x4040;   // 3.0: tile 1 scale 2^-7 -> byte 120, code 0x7C
  x[447] = 0xBF00;  // -0.5: tile 6 scale 2^-9 -> byte 118, code -256 = 0xF8
  x[448] = 0x3F80;  // RoPE dim 448
  x[511] = 0xC000;  // RoPE dim 511
  encode_model1_token(x.data(), page.data(), P, r);
  const int64_t a = 576 * r, s = 576 * P + 8 * r;
  EXPECT_EQ(page[size_t(a + 0)], 0x78);
  EXPECT_EQ(page[size_t(a + 64)], 0x7C);
  EXPECT_EQ(page[size_t(a + 447)], 0xF8);
  EXPECT_EQ(page[size_t(a + 448)], 0x80);
  EXPECT_EQ(page[size_t(a + 449)], 0x3F);
  EXPECT_EQ(page[size_t(a + 574)], 0x00);
  EXPECT_EQ(page[size_t(a + 575)], 0xC0);
  const uint8_t scales[7] = {119, 120, 114, 114, 114, 114, 118};
  for (int k = 0; k < 7; ++k) EXPECT_EQ(page[size_t(s + k)], scales[k]) << "scale " << k;
  for (int64_t k = 0; k < int64_t(page.size()); ++k) {
    const bool mine = (k >= a && k < a + 576) || (k >= s && k < s + 8);
    if (!mine) ASSERT_EQ(page[size_t(k)], 0xAA) << "byte " << k << " is another token's";
  }
  std::vector<uint16_t> y(512);
  decode_model1_token(page.data(), P, r, y.data());
  for (int d = 0; d < 512; ++d) EXPECT_EQ(y[size_t(d)], x[size_t(d)]) << d;
}

TEST(Fp8Format, Model1RoundTripError) {
  test::Rng rng(11);
  const int64_t P = 53;
  std::vector<uint8_t> page(size_t(model1_page_bytes(P)));
  std::vector<uint16_t> x(512), y(512);
  for (int64_t r : {int64_t(0), int64_t(17), P - 1}) {
    for (auto& v : x) v = rng.value_bits(DType::kBFloat16);
    encode_model1_token(x.data(), page.data(), P, r);
    decode_model1_token(page.data(), P, r, y.data());
    for (int d = 0; d < 512; ++d) {
      const float a = bf16_to_float(x[size_t(d)]), b = bf16_to_float(y[size_t(d)]);
      if (d >= 448) {
        ASSERT_EQ(x[size_t(d)], y[size_t(d)]);
      } else {
        const float scale = ue8m0_to_float(page[size_t(576 * P + 8 * r + d / 64)]);
        ASSERT_LE(std::fabs(a - b), std::fmax(std::fabs(a) * 0x1p-4f, scale * 0x1p-10f)) << d;
      }
    }
  }
}

TEST(Fp8Format, NaNScaleByteDecodesToNaN) {
  const int64_t P = 2;
  std::vector<uint8_t> page(size_t(model1_page_bytes(P)), 0);
  page[size_t(576 * P + 8 * 1 + 3)] = 0xFF;  // token 1, tile 3
  std::vector<uint16_t> y(512);
  decode_model1_token(page.data(), P, 1, y.data());
  EXPECT_TRUE(std::isnan(bf16_to_float(y[3 * 64])));
  EXPECT_FALSE(std::isnan(bf16_to_float(y[2 * 64])));
}

TEST(Fp8Format, TileAtPowerOfTwoBoundary) {
  std::vector<uint16_t> x(576, 0);
  x[130] = float_to_bf16(56.0f);  // amax 448 * 2^-3 -> scale 2^-3, code 448
  x[131] = float_to_bf16(-7.0f);  // -56 -> 0xF8 - ... = -(1.75 * 2^5): exponent 12, mantissa 6
  std::vector<uint8_t> token(656);
  encode_v32_token(x.data(), token.data());
  float scale;
  std::memcpy(&scale, token.data() + 516, 4);
  EXPECT_EQ(scale, 0.125f);
  EXPECT_EQ(token[130], 0x7E);
  EXPECT_EQ(token[131], 0xE6);
}

}  // namespace
}  // namespace flashmla::ref
