// Building a Status with a formatted message: the one place the library
// writes messages (validation, launchers, the TMA host helpers).
#pragma once

#include <cstdarg>

#include <cuda_runtime_api.h>

#include "flashmla/status.h"

#if defined(__GNUC__) || defined(__clang__)
#define FLASHMLA_PRINTF_FORMAT(fmt_index, args_index) __attribute__((format(printf, fmt_index, args_index)))
#else
#define FLASHMLA_PRINTF_FORMAT(fmt_index, args_index)
#endif

namespace flashmla {

// printf-style; a message longer than Status::kMaxMessage is cut, never
// written past the buffer.
Status make_status(StatusCode code, const char* format, ...) FLASHMLA_PRINTF_FORMAT(2, 3);
Status vmake_status(StatusCode code, const char* format, va_list args);

// kCudaError: "<what>: <error name> (<error string>)". Clears the CUDA
// runtime's last (non-sticky) error so it is not reported twice.
Status make_cuda_status(const char* what, cudaError_t error);

}  // namespace flashmla
