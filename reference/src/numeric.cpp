// Bit-exact scalar conversions. Every narrowing conversion rounds to nearest
// even on the fp32 bit pattern, which is what the CUDA intrinsics
// (__float2bfloat16_rn, __float2half_rn, __nv_cvt_float_to_fp8 with
// satfinite off) and the PyTorch casts do.
#include "flashmla_ref/numeric.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace flashmla::ref {
namespace {

uint32_t float_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}

float bits_float(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

// Rounds `value` (> 0) right by `shift` bits, to nearest, ties to even.
uint32_t shift_right_rne(uint32_t value, int shift) {
  if (shift <= 0) return value;
  if (shift >= 32) return 0;
  const uint32_t kept = value >> shift;
  const uint32_t rest = value & ((1u << shift) - 1u);
  const uint32_t half = 1u << (shift - 1);
  if (rest > half || (rest == half && (kept & 1u))) return kept + 1;
  return kept;
}

}  // namespace

float bf16_to_float(uint16_t bits) { return bits_float(uint32_t(bits) << 16); }

uint16_t float_to_bf16(float value) {
  const uint32_t bits = float_bits(value);
  // NaN stays NaN: keep sign and payload top bits, force the quiet bit so a
  // payload living only in the dropped low bits cannot turn into infinity.
  if (std::isnan(value)) return uint16_t((bits >> 16) | 0x0040u);
  // bf16 is the top half of fp32, so RNE is one add on the whole pattern;
  // overflow carries into the exponent and yields inf, as it should.
  const uint32_t rounding = 0x7FFFu + ((bits >> 16) & 1u);
  return uint16_t((bits + rounding) >> 16);
}

float fp16_to_float(uint16_t bits) {
  const uint32_t sign = uint32_t(bits & 0x8000u) << 16;
  const int exponent = (bits >> 10) & 0x1F;
  const uint32_t mantissa = bits & 0x3FFu;
  if (exponent == 0x1F) return bits_float(sign | 0x7F800000u | (mantissa << 13));
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in fp32.
    const float magnitude = std::ldexp(float(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  return bits_float(sign | (uint32_t(exponent - 15 + 127) << 23) | (mantissa << 13));
}

uint16_t float_to_fp16(float value) {
  const uint32_t bits = float_bits(value);
  const uint16_t sign = uint16_t((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) return uint16_t(sign | 0x7E00u | ((magnitude >> 13) & 0x1FFu));
  if (magnitude == 0x7F800000u) return uint16_t(sign | 0x7C00u);
  const int exponent = int(magnitude >> 23) - 127;  // unbiased fp32 exponent
  const uint32_t significand = (magnitude & 0x7FFFFFu) | (magnitude >= 0x00800000u ? 0x800000u : 0u);
  if (exponent >= -14) {
    // Normal range of fp16: drop 13 mantissa bits; a carry out of the
    // mantissa bumps the exponent, and past 2^15 * 1.11..1 it becomes inf.
    const uint32_t rounded = shift_right_rne(magnitude, 13) - (uint32_t(127 - 15) << 10);
    return uint16_t(sign | (rounded >= 0x7C00u ? 0x7C00u : rounded));
  }
  // Subnormal fp16: value = m * 2^-24; fp32 subnormals (exponent field 0)
  // are far below half the smallest fp16 subnormal and round to zero.
  if (magnitude < 0x00800000u) return sign;
  const int shift = -exponent - 14 + 13;  // from the 24-bit significand to units of 2^-24
  return uint16_t(sign | shift_right_rne(significand, shift));
}

float e4m3_to_float(uint8_t bits) {
  const bool negative = (bits & 0x80u) != 0;
  const int exponent = (bits >> 3) & 0xF;
  const int mantissa = bits & 0x7;
  float magnitude;
  if (exponent == 0xF && mantissa == 0x7) {
    magnitude = std::numeric_limits<float>::quiet_NaN();
  } else if (exponent == 0) {
    magnitude = std::ldexp(float(mantissa), -9);  // subnormal: m/8 * 2^-6
  } else {
    magnitude = std::ldexp(float(8 + mantissa), exponent - 7 - 3);
  }
  return negative ? -magnitude : magnitude;
}

uint8_t float_to_e4m3(float value) {
  const uint32_t bits = float_bits(value);
  const uint8_t sign = uint8_t((bits >> 24) & 0x80u);
  const uint32_t magnitude = bits & 0x7FFFFFFFu;
  // NaN, inf and everything that rounds past 448 become the NaN code 0x7F
  // (e4m3fn has no infinity); 480 is the first value whose rounding can
  // no longer land on a finite code, and (464, 480) rounds to 0x7F itself.
  if (magnitude >= 0x7F800000u) return uint8_t(sign | 0x7Fu);
  const int exponent = int(magnitude >> 23) - 127;
  uint32_t code;
  if (magnitude < 0x00800000u) {
    code = 0;  // fp32 subnormals are far below 2^-10, half the smallest e4m3 subnormal
  } else if (exponent >= -6) {
    // Normal e4m3: 3 mantissa bits, bias 7. Rebias then round off 20 bits.
    const uint32_t rebased = magnitude - (uint32_t(127 - 7) << 23);
    code = shift_right_rne(rebased, 20);
  } else {
    // Subnormal e4m3: units of 2^-9.
    const uint32_t significand = (magnitude & 0x7FFFFFu) | 0x800000u;
    code = shift_right_rne(significand, 23 - (exponent + 9));
  }
  if (code > 0x7Fu) code = 0x7Fu;
  return uint8_t(sign | code);
}

float ue8m0_to_float(uint8_t bits) {
  if (bits == 0xFFu) return std::numeric_limits<float>::quiet_NaN();
  // 2^(bits - 127); bits 0 is 2^-127, an fp32 subnormal, still exact.
  return std::ldexp(1.0f, int(bits) - 127);
}

}  // namespace flashmla::ref

namespace flashmla::ref {
namespace {

// double -> float rounded to odd: truncate, then set the last bit when
// anything was dropped. A float carries 13+ more bits than bf16 or fp16, so
// a later RNE to those formats gives the correctly rounded result.
float double_to_float_round_odd(double value) {
  if (std::isnan(value) || std::isinf(value)) return float(value);
  float nearest = float(value);
  if (double(nearest) == value) return nearest;
  if (std::fabs(double(nearest)) > std::fabs(value)) {
    nearest = std::nextafter(nearest, 0.0f);  // toward zero: the truncation
  }
  return bits_float(float_bits(nearest) | 1u);
}

}  // namespace

uint16_t double_to_bf16(double value) { return float_to_bf16(double_to_float_round_odd(value)); }

uint16_t double_to_fp16(double value) { return float_to_fp16(double_to_float_round_odd(value)); }

}  // namespace flashmla::ref
