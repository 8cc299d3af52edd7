// Status construction for the reference (it cannot use the library's
// private helpers: it links nothing but itself).
#pragma once

#include <cstdarg>
#include <cstdio>

#include "flashmla/status.h"
#include "flashmla/types.h"

namespace flashmla::ref {

inline Status ok_status() { return Status{}; }

// kInvalidArgument with a printf-style message naming the argument.
inline Status invalid_argument(const char* format, ...) {
  Status status;
  status.code = StatusCode::kInvalidArgument;
  va_list args;
  va_start(args, format);
  std::vsnprintf(status.message, Status::kMaxMessage, format, args);
  va_end(args);
  return status;
}

// Names for messages. The reference links nothing of the library, so it
// has its own (the library's to_string lives in src/api).
inline const char* name_of(DType dtype) {
  switch (dtype) {
    case DType::kBFloat16: return "bfloat16";
    case DType::kFloat16: return "float16";
    case DType::kFloat32: return "float32";
  }
  return "unknown dtype";
}

inline const char* name_of(KVFormat format) {
  switch (format) {
    case KVFormat::kNative: return "native";
    case KVFormat::kFp8V32: return "fp8_v32";
    case KVFormat::kFp8Model1: return "fp8_model1";
  }
  return "unknown kv format";
}

}  // namespace flashmla::ref

// Returns an invalid-argument Status naming `name` when `ptr` is null.
#define FLASHMLA_REF_REQUIRE_PTR(ptr, name)                                        \
  do {                                                                             \
    if ((ptr) == nullptr) return ::flashmla::ref::invalid_argument("%s: null pointer", name); \
  } while (0)
