// Random inputs of the shapes the tests use, and the poison patterns.
#pragma once

#include <climits>
#include <cstdint>
#include <random>
#include <vector>

#include "flashmla/types.h"
#include "flashmla_ref/numeric.h"

namespace flashmla::test {

// All-ones bytes are NaN in every format the KV caches and outputs use:
// bf16/fp16 0xFFFF, fp32 0xFFFFFFFF, e4m3 0xFF, UE8M0 0xFF.
constexpr uint8_t kNaNByte = 0xFF;
constexpr uint16_t kNaN16 = 0xFFFF;

// The invalid-index zoo of the style guide, relative to a capacity (the
// number of addressable tokens): every entry lies outside [0, capacity).
inline std::vector<int32_t> invalid_index_zoo(int64_t capacity) {
  return {INT32_MIN, -2, -1, int32_t(capacity), int32_t(capacity + 1), INT32_MAX};
}

// Page ids that lie outside [0, num_blocks), for unused block-table slots.
inline std::vector<int32_t> invalid_page_zoo(int64_t num_blocks) {
  return {INT32_MAX, -1, INT32_MIN, int32_t(num_blocks), -2, int32_t(num_blocks + 1)};
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  // N(0, 1) / 10 clamped to [-1, 1]: the value distribution of every
  // q/kv element (small enough that bf16 products stay exact in fp32).
  float value() {
    const float x = float(normal_(engine_)) / 10.0f;
    return x < -1.0f ? -1.0f : (x > 1.0f ? 1.0f : x);
  }
  // The bits of value() rounded to nearest even in `dtype` (bf16 or fp16).
  uint16_t value_bits(DType dtype) {
    const float x = value();
    return dtype == DType::kFloat16 ? ref::float_to_fp16(x) : ref::float_to_bf16(x);
  }
  int64_t uniform(int64_t lo, int64_t hi) {  // inclusive
    return std::uniform_int_distribution<int64_t>(lo, hi)(engine_);
  }
  double unit() { return std::uniform_real_distribution<double>(0.0, 1.0)(engine_); }
  std::mt19937_64& engine() { return engine_; }

 private:
  std::mt19937_64 engine_;
  std::normal_distribution<double> normal_{0.0, 1.0};
};

}  // namespace flashmla::test
