// Element types and KV-cache formats of the public API.
#pragma once

#include <cstdint>

namespace flashmla {

enum class DType : int32_t {
  kBFloat16 = 0,
  kFloat16 = 1,
  kFloat32 = 2,
};

// How one KV token is stored (spec section 3).
enum class KVFormat : int32_t {
  // d_qk elements of the query dtype (bf16 or fp16), one row per token.
  kNative = 0,
  // DeepSeek-V3.2 FP8: 656 bytes per token (512 e4m3 NoPE, 4 fp32 scales,
  // 64 bf16 RoPE), d_qk = 576, tokens back to back in a page.
  kFp8V32 = 1,
  // MODEL1 FP8: 584 bytes per token, d_qk = 512; per page of P tokens,
  // P * 576 bytes of NoPE+RoPE then P * 8 bytes of UE8M0 scales.
  kFp8Model1 = 2,
};

// Bytes of one token of a FP8 format; 0 for kNative.
constexpr int64_t kv_format_token_bytes(KVFormat format) {
  return format == KVFormat::kFp8V32 ? 656 : format == KVFormat::kFp8Model1 ? 584 : 0;
}

// The d_qk a FP8 format stores; 0 for kNative (any d_qk the kernel supports).
constexpr int64_t kv_format_d_qk(KVFormat format) {
  return format == KVFormat::kFp8V32 ? 576 : format == KVFormat::kFp8Model1 ? 512 : 0;
}

const char* to_string(DType dtype);
const char* to_string(KVFormat format);

}  // namespace flashmla
