// e4m3 -> bf16 dequantization by bit placement (spec section 3:
// bf16(fp8) * bf16(scale), one rounding).
//
// An e4m3 byte s.eeee.mmm placed as bf16 bits s.0000eeee.mmm0000 is the same
// value times 2^-120 (exponent bias 7 vs 127), subnormals included: e4m3
// subnormals m/8 * 2^-6 land on bf16 subnormals m/8 * 2^-126. Multiplying by
// 2^120 is exact, and the product with the (power-of-two) scale is rounded
// once, as the reference does. Codes 0x7F/0xFF (e4m3 NaN) become 480: the
// quantizer never writes them (its maximum code is 448).
#pragma once

#include <cstdint>

#include <cuda_bf16.h>

namespace flashmla::device {

// 2^120 as a pair of bf16: exponent field 127 + 120 = 247.
inline constexpr uint32_t kBf16x2Pow120 = 0x7B807B80u;

// Two e4m3 bytes of `x` (selected by prmt `selector` into the high byte of
// each 16-bit half) as a pair of bf16 bit patterns times 2^-120.
template <uint32_t kSelector>
__device__ __forceinline__ uint32_t e4m3x2_to_bf16x2_biased(uint32_t x) {
  uint32_t t;
  asm("prmt.b32 %0, %1, 0, %2;" : "=r"(t) : "r"(x), "n"(kSelector));
  // sign stays at bit 15; exponent and mantissa move down 4 bits.
  return (t & 0x80008000u) | ((t >> 4) & 0x07F007F0u);
}

__device__ __forceinline__ __nv_bfloat162 as_bf162(uint32_t bits) {
  return *reinterpret_cast<__nv_bfloat162*>(&bits);
}
__device__ __forceinline__ uint32_t as_u32(__nv_bfloat162 v) { return *reinterpret_cast<uint32_t*>(&v); }

// Four e4m3 codes (little-endian bytes of `x`) times `scale` (a bf16 pair of
// the same value): out[0] holds dims 0, 1 and out[1] dims 2, 3.
__device__ __forceinline__ void dequant_e4m3x4(uint32_t x, __nv_bfloat162 scale, uint32_t out[2]) {
  const __nv_bfloat162 pow120 = as_bf162(kBf16x2Pow120);
  out[0] = as_u32(__hmul2(__hmul2(as_bf162(e4m3x2_to_bf16x2_biased<0x1404u>(x)), pow120), scale));
  out[1] = as_u32(__hmul2(__hmul2(as_bf162(e4m3x2_to_bf16x2_biased<0x3424u>(x)), pow120), scale));
}

// A UE8M0 scale byte (2^(byte - 127)) as a bf16 pair: the byte is the bf16
// exponent field. Byte 0 is 2^-127, a bf16 subnormal; 0xFF is NaN.
__device__ __forceinline__ __nv_bfloat162 ue8m0_to_bf16x2(uint32_t byte) {
  uint32_t bits = byte == 0 ? 0x0040u : (byte == 0xFFu ? 0x7FC0u : byte << 7);
  return as_bf162(bits | (bits << 16));
}

// An fp32 scale rounded to bf16 (the reference's bf16(scale)) as a pair.
__device__ __forceinline__ __nv_bfloat162 fp32_scale_to_bf16x2(float scale) {
  return __float2bfloat162_rn(scale);
}

}  // namespace flashmla::device
