// Building blocks of host-side validation (spec section 6): each returns a
// Status whose message names the argument, what was expected and what was
// given, e.g. "h_q: expected a multiple of h_kv = 3, got 8".
//
// Everything here is pure host code: no CUDA call and no read through any
// pointer, so validate() runs on machines without a GPU and with fake
// pointer values.
#pragma once

#include <cstdint>
#include <initializer_list>

#include "common/status_util.h"
#include "flashmla/status.h"
#include "flashmla/types.h"


// Returns from the calling function when `expr` is not ok.
#define FLASHMLA_TRY(expr)                          \
  do {                                              \
    ::flashmla::Status flashmla_status_ = (expr);   \
    if (!flashmla_status_.ok()) return flashmla_status_; \
  } while (0)

namespace flashmla::api {

constexpr int64_t kInt32Max = 2147483647;
// TMA needs 16-byte aligned base addresses and strides (in bytes); the
// kernels read q, kv and write out through TMA or 16-byte vector accesses.
constexpr int64_t kTmaAlignment = 16;
// fp32 / int32 tensors are read element-wise: natural alignment suffices.
constexpr int64_t kWordAlignment = 4;

inline Status ok_status() { return Status{}; }
Status invalid_argument(const char* format, ...) FLASHMLA_PRINTF_FORMAT(1, 2);
Status not_supported(const char* format, ...) FLASHMLA_PRINTF_FORMAT(1, 2);

// Bytes of one element; 0 for a value outside the enum.
int64_t dtype_bytes(DType dtype);
bool is_known(DType dtype);
bool is_known(KVFormat format);

// ----- scalar rules (invalid argument) ---------------------------------------

// "<name>: expected >= <min>, got <value>"
Status check_at_least(const char* name, int64_t value, int64_t min);
// "<name>: expected <= 2147483647 (int32), got <value>": the schedule and the
// kernels hold extents such as b, s_q, h_q and topk in int32.
Status check_fits_int32(const char* name, int64_t value);
// "<name>: expected a multiple of <divisor_name> = <divisor>, got <value>"
Status check_multiple_of(const char* name, int64_t value, const char* divisor_name,
                         int64_t divisor);
// "<name>: expected a finite value > 0, got <value>"
Status check_softmax_scale(const char* name, float value);

// ----- support rules (not supported) ------------------------------------------

// "<name>: expected at most <max> (<why>), got <value>"
Status check_supported_at_most(const char* name, int64_t value, int64_t max, const char* why);
// "<name>: expected a multiple of <multiple> (<why>), got <value>"
Status check_supported_multiple(const char* name, int64_t value, int64_t multiple,
                                const char* why);

// ----- tensors -----------------------------------------------------------------

// One dimension of a tensor, outermost first. The innermost dimension is
// contiguous and has no stride field: leave stride_name null there.
struct TensorDim {
  const char* extent_name;
  int64_t extent;
  const char* stride_name = nullptr;
  int64_t stride = 1;
};

struct TensorSpec {
  const char* name;
  const void* data;
  int64_t element_bytes;
  // Required alignment of the base pointer and of every stride in bytes.
  int64_t alignment;
  // Optional inputs (attn_sink, topk_length, ...) are absent when null.
  bool optional = false;
};

// The layout rules of one tensor. A tensor with an extent of 0 is never
// addressed, so its pointer and strides are not checked (b = 0 may come with
// null pointers). Otherwise:
//   - the pointer is non-null (unless optional) and aligned;
//   - every stride is at least the span of the dimensions inside it, so two
//     rows never overlap (this also rules out negative strides);
//   - every stride in bytes is a multiple of the alignment;
//   - the byte span of the whole tensor fits in int64.
Status check_tensor(const TensorSpec& tensor, std::initializer_list<TensorDim> dims);

}  // namespace flashmla::api
