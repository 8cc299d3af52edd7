// FP8 KV-cache formats of spec section 3, byte-exact with FlashMLA's.
//
// Quantization, per token and per tile of 128 (V32) or 64 (MODEL1) dims:
//   amax = max|x|; scale = 2^ceil(log2(max(amax / 448, 1e-4)));
//   store e4m3(x / scale) and the scale. RoPE dims stay bf16.
// Dequantization: bf16(fp8) * bf16(scale), exact for power-of-two scales.
#pragma once

#include <cstdint>

namespace flashmla::ref {

constexpr int64_t kV32TokenBytes = 656;
constexpr int64_t kV32DimQK = 576;
constexpr int64_t kModel1TokenBytes = 584;
constexpr int64_t kModel1DimQK = 512;

// The exponent e of the quantization scale 2^e of a tile whose largest
// magnitude is amax: e = ceil(log2(max(amax / 448, 1e-4))), so e >= -13 and
// every |x| / 2^e <= 448 fits e4m3.
int fp8_scale_exponent(float amax);

// V32: one token is 656 contiguous bytes at `token`.
void encode_v32_token(const uint16_t* bf16_values /* [576] */, uint8_t* token /* [656] */);
void decode_v32_token(const uint8_t* token /* [656] */, uint16_t* bf16_values /* [576] */);

// MODEL1: token `row` of a page of `page_block_size` tokens starting at `page`
// (576 bytes of NoPE+RoPE at 576*row, 8 scale bytes at 576*P + 8*row).
void encode_model1_token(const uint16_t* bf16_values /* [512] */, uint8_t* page,
                         int64_t page_block_size, int64_t row);
void decode_model1_token(const uint8_t* page, int64_t page_block_size, int64_t row,
                         uint16_t* bf16_values /* [512] */);

// Bytes a MODEL1 page of P tokens occupies: P * 584.
constexpr int64_t model1_page_bytes(int64_t page_block_size) {
  return page_block_size * kModel1TokenBytes;
}

}  // namespace flashmla::ref
