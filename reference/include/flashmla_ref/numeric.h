// Scalar number formats, bit-exact: bf16, fp16, float8_e4m3fn, UE8M0.
// All float -> narrow conversions round to nearest even, like the CUDA and
// PyTorch casts the kernels and FlashMLA use.
#pragma once

#include <cstdint>

namespace flashmla::ref {

float bf16_to_float(uint16_t bits);
uint16_t float_to_bf16(float value);

float fp16_to_float(uint16_t bits);
uint16_t float_to_fp16(float value);

// fp64 -> bf16 / fp16 with a single rounding (RNE on the exact double, not
// double -> float -> narrow, which could round twice).
uint16_t double_to_bf16(double value);
uint16_t double_to_fp16(double value);

// float8_e4m3fn: no infinities, 0x7F / 0xFF are NaN, max finite 448.
// Finite values beyond the largest finite magnitude round to NaN, as the
// PyTorch cast does (the quantizer never produces them).
float e4m3_to_float(uint8_t bits);
uint8_t float_to_e4m3(float value);

// UE8M0 scale byte: 2^(byte - 127). 0xFF is NaN.
float ue8m0_to_float(uint8_t bits);

}  // namespace flashmla::ref
