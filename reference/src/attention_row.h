// The attention of one query row over a gathered key set (spec section 2),
// shared by every operation of the reference.
#pragma once

#include <cstdint>
#include <vector>

#include "flashmla/types.h"
#include "flashmla_ref/reference.h"

namespace flashmla::ref {

// Reads element `index` of a bf16/fp16/fp32 array as a double (exact).
double load_element(const void* base, int64_t index, DType dtype);
// Writes `value` rounded to nearest even into element `index` of `base`.
void store_element(void* base, int64_t index, DType dtype, double value);

// Rounds to the dtype P is held in before P·V (bf16 or fp16), as FlashMLA's
// kernels do; fp32 leaves it unrounded.
double round_to_dtype(double value, DType dtype);

struct RowResult {
  double max_logit;  // M; -inf when there is no key
  double lse;        // M + ln(sum exp(s - M)); -inf when there is no key
};

// Attention of q over `keys` (each a row of d_qk floats holding exact
// bf16/fp16/dequantized-FP8 values; V is its first d_v entries). Writes d_v
// doubles to `out`. `sink` (natural log units, may be +-inf) only enlarges
// the denominator; it never enters the returned lse. An empty key set gives
// out = 0 and lse = max_logit = -inf. Keys are only ever selected, never
// multiplied by 0, so rows of masked tokens are not read at all.
RowResult attend_row(const double* q, const std::vector<const float*>& keys, int64_t d_qk,
                     int64_t d_v, double softmax_scale, DType p_dtype, const float* sink,
                     double* out);

// The lse written for a row: its value, or the empty-row convention.
float lse_to_store(double lse, const Options& options);

}  // namespace flashmla::ref
