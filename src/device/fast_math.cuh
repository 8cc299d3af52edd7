// Exponentials for the online softmax.
#pragma once

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

}  // namespace flashmla::device
