// e4m3 -> bf16 dequantization by bit placement (spec section 3:
// bf16(fp8) * bf16(scale), one rounding).
//
// An e4m3 byte s.eeee.mmm placed as bf16 bits s.0000eeee.mmm0000 is the same
// value times 2^-120 (exponent bias 7 vs 127), subnormals included: e4m3
// subnormals m/8 * 2^-6 land on bf16 subnormals m/8 * 2^-126. Multiplying
// that by the factor bf16(scale) * 2^120 (exact while |bf16(scale)| < 2^8)
// gives the exact product fp8 * bf16(scale), rounded once, as the reference
// does: one bf16x2 multiply per two codes. Larger scales (no real cache has
// them: a scale is amax / 448) take two multiplies, by 2^120 then by the
// scale. Codes 0x7F/0xFF (e4m3 NaN) become 480: the quantizer never writes
// them (its maximum code is 448).
#pragma once

#include <cstdint>

#include <cuda_bf16.h>

namespace flashmla::device {

// 2^120 as a pair of bf16: exponent field 127 + 120 = 247.
inline constexpr uint32_t kBf16x2Pow120 = 0x7B807B80u;

// Two e4m3 codes of `x` as a pair of bf16 bit patterns times 2^-120:
// kSelector's prmt sign-extends each code to 16 bits (0x9180: bytes 0, 1;
// 0xB3A2: bytes 2, 3); shifted left by 4, each half holds the sign at bit
// 15 and exponent and mantissa at bits 4..10, and the mask clears the
// copies of the sign in between. Three instructions per pair.
template <uint32_t kSelector>
__device__ __forceinline__ uint32_t e4m3x2_to_bf16x2_biased(uint32_t x) {
  uint32_t t;
  asm("prmt.b32 %0, %1, 0, %2;" : "=r"(t) : "r"(x), "n"(kSelector));
  return (t << 4) & 0x87F087F0u;
}

__device__ __forceinline__ __nv_bfloat162 as_bf162(uint32_t bits) {
  return *reinterpret_cast<__nv_bfloat162*>(&bits);
}
__device__ __forceinline__ uint32_t as_u32(__nv_bfloat162 v) { return *reinterpret_cast<uint32_t*>(&v); }

// Four e4m3 codes (little-endian bytes of `x`) times the scale, given as
// `factor` = bf16(scale) * 2^120 (a bf16 pair): out[0] holds dims 0, 1 and
// out[1] dims 2, 3.
__device__ __forceinline__ void dequant_e4m3x4(uint32_t x, __nv_bfloat162 factor, uint32_t out[2]) {
  out[0] = as_u32(__hmul2(as_bf162(e4m3x2_to_bf16x2_biased<0x9180u>(x)), factor));
  out[1] = as_u32(__hmul2(as_bf162(e4m3x2_to_bf16x2_biased<0xB3A2u>(x)), factor));
}

// The same for any scale (given as bf16(scale), a pair): exact by 2^120
// first, then rounded once by the scale.
__device__ __forceinline__ void dequant_e4m3x4_wide(uint32_t x, __nv_bfloat162 scale, uint32_t out[2]) {
  const __nv_bfloat162 pow120 = as_bf162(kBf16x2Pow120);
  out[0] = as_u32(__hmul2(__hmul2(as_bf162(e4m3x2_to_bf16x2_biased<0x9180u>(x)), pow120), scale));
  out[1] = as_u32(__hmul2(__hmul2(as_bf162(e4m3x2_to_bf16x2_biased<0xB3A2u>(x)), pow120), scale));
}

// A UE8M0 scale byte (2^(byte - 127)) as a bf16 pair: the byte is the bf16
// exponent field. Byte 0 is 2^-127, a bf16 subnormal; 0xFF is NaN.
__device__ __forceinline__ __nv_bfloat162 ue8m0_to_bf16x2(uint32_t byte) {
  uint32_t bits = byte == 0 ? 0x0040u : (byte == 0xFFu ? 0x7FC0u : byte << 7);
  return as_bf162(bits | (bits << 16));
}

// The largest UE8M0 byte whose scale (2^7) is narrow: below 2^8.
inline constexpr uint32_t kUe8m0MaxNarrowByte = 134;

// An fp32 scale rounded to bf16 (the reference's bf16(scale)) as a pair.
__device__ __forceinline__ __nv_bfloat162 fp32_scale_to_bf16x2(float scale) {
  return __float2bfloat162_rn(scale);
}

// Whether bf16(scale) has a factor: |bf16(scale)| < 2^8 (false for NaN, inf).
__device__ __forceinline__ bool scale_is_narrow(__nv_bfloat162 scale) {
  return __low2float(scale) > -256.f && __low2float(scale) < 256.f;
}

// bf16(scale) * 2^120, exact for a narrow scale.
__device__ __forceinline__ __nv_bfloat162 scale_factor_bf16x2(__nv_bfloat162 scale) {
  return __hmul2(scale, as_bf162(kBf16x2Pow120));
}

}  // namespace flashmla::device
