// Exponentials for the online softmax.
#pragma once

#include <cstdint>

namespace flashmla::device {

// 2^x by one MUFU.EX2, subnormal results flushed to zero. exp2f() wraps the
// same instruction in a range fix-up for subnormal results (a compare and two
// predicated multiplies), which the softmax does not need: a probability
// below 2^-126 of the row maximum rounds to nothing in an fp32 row sum. -inf
// gives +0, NaN stays NaN.
__device__ __forceinline__ float exp2_ftz(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// 2^x for x <= 0 on the FMA pipe: 2^floor(x) times a degree-5 polynomial
// of the fraction (relative error 1.8e-7, ex2.approx's order), 12
// instructions and no MUFU. A softmax spends its 32 exponentials per thread
// and block at the MUFU's rate (one warp instruction per 8 cycles per SM
// sub-partition); taking a quarter of them here fills those cycles with
// FMA-pipe work. x below -126 gives +0, as ex2.approx.ftz flushes those
// subnormal results (x is clamped at -127 keeping NaN, by max.NaN, and
// 2^floor(x) = 2^-127 is built as +0); -inf gives +0; NaN stays NaN
// (through the polynomial). Positive x is not expected: the softmax's
// exponents are at most 0.
__device__ __forceinline__ float exp2_fma(float x) {
  float xc;
  asm("max.NaN.f32 %0, %1, 0fC2FE0000;" : "=f"(xc) : "f"(x));  // max(x, -127), NaN kept
  // Adding 1.5 * 2^23 rounding down leaves floor(x) in the low mantissa bits.
  constexpr float kShift = 12582912.f;
  const float shifted = __fadd_rd(xc, kShift);
  const float whole = shifted - kShift;
  const float frac = xc - whole;  // [0, 1)
  float p = 1.8791633192449808e-3f;
  p = fmaf(p, frac, 8.98535642772913e-3f);
  p = fmaf(p, frac, 5.5829815566539764e-2f);
  p = fmaf(p, frac, 2.4015235900878906e-1f);
  p = fmaf(p, frac, 6.931532621383667e-1f);
  p = fmaf(p, frac, 9.999999403953552e-1f);
  // 2^floor(x) as a float: the low bits of `shifted` are floor(x) (mod 2^9),
  // moved into the exponent field; floor(x) = -127 gives +0.
  const int32_t power_bits = int32_t(uint32_t(__float_as_int(shifted)) << 23) + 0x3f800000;
  return p * __int_as_float(power_bits);
}

}  // namespace flashmla::device
