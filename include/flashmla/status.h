// Status: the result of every public call. Plain data, no allocation, safe to
// return across any boundary (no exceptions leave the library).
#pragma once

#include <cstdint>

namespace flashmla {

enum class StatusCode : int32_t {
  kOk = 0,
  // The inputs break the contract of ../spec (wrong shape, dtype, stride,
  // alignment, null pointer, ...). The message names the argument, what was
  // expected and what was given.
  kInvalidArgument = 1,
  // The inputs are valid but this build or this GPU has no kernel for them
  // (a head count, dtype or format not compiled in, a non-sm_90 device, an
  // operation whose kernel does not exist yet). Callers may fall back to
  // another backend.
  kNotSupported = 2,
  // A CUDA runtime call failed (launch failure, no device, ...).
  kCudaError = 3,
};

struct Status {
  static constexpr int kMaxMessage = 480;

  StatusCode code = StatusCode::kOk;
  char message[kMaxMessage] = {};

  bool ok() const { return code == StatusCode::kOk; }
  const char* what() const { return message; }
};

// Human-readable name of a code ("ok", "invalid argument", ...).
const char* to_string(StatusCode code);

}  // namespace flashmla
