#include "flashmla/types.h"

namespace flashmla {

const char* to_string(DType dtype) {
  switch (dtype) {
    case DType::kBFloat16: return "bfloat16";
    case DType::kFloat16: return "float16";
    case DType::kFloat32: return "float32";
  }
  return "unknown dtype";
}

const char* to_string(KVFormat format) {
  switch (format) {
    case KVFormat::kNative: return "native";
    case KVFormat::kFp8V32: return "fp8_v32";
    case KVFormat::kFp8Model1: return "fp8_model1";
  }
  return "unknown kv format";
}

}  // namespace flashmla
