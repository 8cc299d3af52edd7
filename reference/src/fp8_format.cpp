// Encode/decode of the FP8 KV-cache formats of spec section 3.
#include "flashmla_ref/fp8_format.h"

#include <cmath>
#include <cstring>

#include "flashmla_ref/numeric.h"

namespace flashmla::ref {
namespace {

constexpr int kV32NopeDims = 512;
constexpr int kV32TileDims = 128;
constexpr int kV32NumTiles = kV32NopeDims / kV32TileDims;  // 4
constexpr int kV32ScaleOffset = 512;
constexpr int kV32RopeOffset = 528;

constexpr int kModel1NopeDims = 448;
constexpr int kModel1TileDims = 64;
constexpr int kModel1NumTiles = kModel1NopeDims / kModel1TileDims;  // 7
constexpr int kRopeDims = 64;
constexpr int64_t kModel1DataBytes = 576;  // region A bytes per token
constexpr int64_t kModel1ScaleBytes = 8;   // region B bytes per token

// Writes the 64 RoPE values as little-endian bf16 (the bytes a CUDA bf16
// array holds on every supported host).
void store_bf16(const uint16_t* values, int count, uint8_t* dst) {
  for (int d = 0; d < count; ++d) {
    dst[2 * d] = uint8_t(values[d] & 0xFF);
    dst[2 * d + 1] = uint8_t(values[d] >> 8);
  }
}

void load_bf16(const uint8_t* src, int count, uint16_t* values) {
  for (int d = 0; d < count; ++d) values[d] = uint16_t(src[2 * d] | (src[2 * d + 1] << 8));
}

// Quantizes `count` bf16 values with the power-of-two scale 2^exponent into
// e4m3 codes. x / 2^e is exact in fp32 (no underflow for |x| >= 2^-133
// and e >= -13), so the only rounding is the e4m3 one.
void quantize_tile(const uint16_t* values, int count, int exponent, uint8_t* codes) {
  for (int d = 0; d < count; ++d) {
    const float x = bf16_to_float(values[d]);
    codes[d] = float_to_e4m3(std::ldexp(x, -exponent));
  }
}

// bf16(fp8) * bf16(scale), rounded to bf16. Exact for power-of-two scales;
// the rounding only matters for a hand-written scale that is not one.
void dequantize_tile(const uint8_t* codes, int count, float scale, uint16_t* values) {
  const float scale_bf16 = bf16_to_float(float_to_bf16(scale));
  for (int d = 0; d < count; ++d) {
    const float x = bf16_to_float(float_to_bf16(e4m3_to_float(codes[d])));
    values[d] = float_to_bf16(x * scale_bf16);
  }
}

float tile_amax(const uint16_t* values, int count) {
  float amax = 0.0f;
  for (int d = 0; d < count; ++d) amax = std::fmax(amax, std::fabs(bf16_to_float(values[d])));
  return amax;
}

}  // namespace

int fp8_scale_exponent(float amax) {
  // ceil(log2(max(amax / 448, 1e-4))) computed exactly with frexp: ratio =
  // m * 2^e with m in [0.5, 1), so log2(ratio) is e - 1 when m == 0.5 and
  // lies strictly inside (e - 1, e) otherwise.
  const double ratio = std::fmax(double(amax) / 448.0, 1e-4);
  int e = 0;
  const double m = std::frexp(ratio, &e);
  return m == 0.5 ? e - 1 : e;
}

void encode_v32_token(const uint16_t* bf16_values, uint8_t* token) {
  for (int tile = 0; tile < kV32NumTiles; ++tile) {
    const uint16_t* x = bf16_values + tile * kV32TileDims;
    const int exponent = fp8_scale_exponent(tile_amax(x, kV32TileDims));
    quantize_tile(x, kV32TileDims, exponent, token + tile * kV32TileDims);
    const float scale = std::ldexp(1.0f, exponent);
    std::memcpy(token + kV32ScaleOffset + 4 * tile, &scale, 4);  // little-endian fp32
  }
  store_bf16(bf16_values + kV32NopeDims, kRopeDims, token + kV32RopeOffset);
}

void decode_v32_token(const uint8_t* token, uint16_t* bf16_values) {
  for (int tile = 0; tile < kV32NumTiles; ++tile) {
    float scale;
    std::memcpy(&scale, token + kV32ScaleOffset + 4 * tile, 4);
    dequantize_tile(token + tile * kV32TileDims, kV32TileDims, scale,
                    bf16_values + tile * kV32TileDims);
  }
  load_bf16(token + kV32RopeOffset, kRopeDims, bf16_values + kV32NopeDims);
}

void encode_model1_token(const uint16_t* bf16_values, uint8_t* page, int64_t page_block_size,
                         int64_t row) {
  uint8_t* data = page + kModel1DataBytes * row;
  uint8_t* scales = page + kModel1DataBytes * page_block_size + kModel1ScaleBytes * row;
  for (int tile = 0; tile < kModel1NumTiles; ++tile) {
    const uint16_t* x = bf16_values + tile * kModel1TileDims;
    const int exponent = fp8_scale_exponent(tile_amax(x, kModel1TileDims));
    quantize_tile(x, kModel1TileDims, exponent, data + tile * kModel1TileDims);
    scales[tile] = uint8_t(exponent + 127);  // UE8M0: 2^(byte - 127)
  }
  scales[kModel1NumTiles] = 0;  // the pad byte
  store_bf16(bf16_values + kModel1NopeDims, kRopeDims, data + kModel1NopeDims);
}

void decode_model1_token(const uint8_t* page, int64_t page_block_size, int64_t row,
                         uint16_t* bf16_values) {
  const uint8_t* data = page + kModel1DataBytes * row;
  const uint8_t* scales = page + kModel1DataBytes * page_block_size + kModel1ScaleBytes * row;
  for (int tile = 0; tile < kModel1NumTiles; ++tile) {
    dequantize_tile(data + tile * kModel1TileDims, kModel1TileDims, ue8m0_to_float(scales[tile]),
                    bf16_values + tile * kModel1TileDims);
  }
  load_bf16(data + kModel1NopeDims, kRopeDims, bf16_values + kModel1NopeDims);
}

}  // namespace flashmla::ref
