#include "common/status_util.h"

#include <cstdio>

namespace flashmla {

Status vmake_status(StatusCode code, const char* format, va_list args) {
  Status status;
  status.code = code;
  std::vsnprintf(status.message, sizeof(status.message), format, args);
  return status;
}

Status make_status(StatusCode code, const char* format, ...) {
  va_list args;
  va_start(args, format);
  Status status = vmake_status(code, format, args);
  va_end(args);
  return status;
}

Status make_cuda_status(const char* what, cudaError_t error) {
  cudaGetLastError();
  return make_status(StatusCode::kCudaError, "%s: %s (%s)", what, cudaGetErrorName(error), cudaGetErrorString(error));
}

}  // namespace flashmla
