#include "attention_row.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "flashmla_ref/numeric.h"

namespace flashmla::ref {

double load_element(const void* base, int64_t index, DType dtype) {
  switch (dtype) {
    case DType::kBFloat16: return bf16_to_float(static_cast<const uint16_t*>(base)[index]);
    case DType::kFloat16: return fp16_to_float(static_cast<const uint16_t*>(base)[index]);
    case DType::kFloat32: return static_cast<const float*>(base)[index];
  }
  return std::numeric_limits<double>::quiet_NaN();
}

void store_element(void* base, int64_t index, DType dtype, double value) {
  switch (dtype) {
    case DType::kBFloat16: static_cast<uint16_t*>(base)[index] = double_to_bf16(value); return;
    case DType::kFloat16: static_cast<uint16_t*>(base)[index] = double_to_fp16(value); return;
    case DType::kFloat32: static_cast<float*>(base)[index] = float(value); return;
  }
}

double round_to_dtype(double value, DType dtype) {
  switch (dtype) {
    case DType::kBFloat16: return bf16_to_float(double_to_bf16(value));
    case DType::kFloat16: return fp16_to_float(double_to_fp16(value));
    case DType::kFloat32: return value;
  }
  return value;
}

RowResult attend_row(const double* q, const std::vector<const float*>& keys, int64_t d_qk,
                     int64_t d_v, double softmax_scale, DType p_dtype, const float* sink,
                     double* out) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  for (int64_t d = 0; d < d_v; ++d) out[d] = 0.0;
  if (keys.empty()) return RowResult{-kInf, -kInf};

  std::vector<double> logits(keys.size());
  double max_logit = -kInf;
  for (size_t t = 0; t < keys.size(); ++t) {
    double dot = 0.0;
    for (int64_t d = 0; d < d_qk; ++d) dot += q[d] * double(keys[t][d]);
    logits[t] = softmax_scale * dot;
    max_logit = std::fmax(max_logit, logits[t]);
  }
  double sum = 0.0;
  for (size_t t = 0; t < keys.size(); ++t) {
    // P is rounded to the input dtype for P·V; the row sum uses the exact
    // P, as the kernels accumulate it in fp32 before rounding.
    const double p = std::exp(logits[t] - max_logit);
    sum += p;
    const double p_rounded = round_to_dtype(p, p_dtype);
    for (int64_t d = 0; d < d_v; ++d) out[d] += p_rounded * double(keys[t][d]);
  }
  // exp(sink - M) joins the denominator only: +inf makes out exactly 0,
  // -inf adds nothing.
  const double denominator = sum + (sink != nullptr ? std::exp(double(*sink) - max_logit) : 0.0);
  for (int64_t d = 0; d < d_v; ++d) out[d] /= denominator;
  return RowResult{max_logit, max_logit + std::log(sum)};
}

float lse_to_store(double lse, const Options& options) {
  if (lse == -std::numeric_limits<double>::infinity() && options.empty_lse == EmptyLse::kPosInf) {
    return std::numeric_limits<float>::infinity();
  }
  return float(lse);
}

}  // namespace flashmla::ref
