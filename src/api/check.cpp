#include "api/check.h"

#include <cmath>
#include <cstdarg>
#include <cstdio>

namespace flashmla::api {
namespace {

unsigned long long address_of(const void* p) {
  return static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(p));
}

}  // namespace

Status invalid_argument(const char* format, ...) {
  va_list args;
  va_start(args, format);
  Status status = vmake_status(StatusCode::kInvalidArgument, format, args);
  va_end(args);
  return status;
}

Status not_supported(const char* format, ...) {
  va_list args;
  va_start(args, format);
  Status status = vmake_status(StatusCode::kNotSupported, format, args);
  va_end(args);
  return status;
}

int64_t dtype_bytes(DType dtype) {
  switch (dtype) {
    case DType::kBFloat16: return 2;
    case DType::kFloat16: return 2;
    case DType::kFloat32: return 4;
  }
  return 0;
}

bool is_known(DType dtype) { return dtype_bytes(dtype) != 0; }

bool is_known(KVFormat format) {
  return format == KVFormat::kNative || format == KVFormat::kFp8V32 ||
         format == KVFormat::kFp8Model1;
}

Status check_at_least(const char* name, int64_t value, int64_t min) {
  if (value >= min) return ok_status();
  return invalid_argument("%s: expected >= %lld, got %lld", name, (long long)min, (long long)value);
}

Status check_fits_int32(const char* name, int64_t value) {
  if (value <= kInt32Max) return ok_status();
  return invalid_argument("%s: expected <= %lld (int32), got %lld", name, (long long)kInt32Max,
                          (long long)value);
}

Status check_multiple_of(const char* name, int64_t value, const char* divisor_name,
                         int64_t divisor) {
  if (divisor > 0 && value % divisor == 0) return ok_status();
  return invalid_argument("%s: expected a multiple of %s = %lld, got %lld", name, divisor_name,
                          (long long)divisor, (long long)value);
}

Status check_softmax_scale(const char* name, float value) {
  if (std::isfinite(value) && value > 0.0f) return ok_status();
  return invalid_argument("%s: expected a finite value > 0, got %g", name, double(value));
}

Status check_supported_at_most(const char* name, int64_t value, int64_t max, const char* why) {
  if (value <= max) return ok_status();
  return not_supported("%s: expected at most %lld (%s), got %lld", name, (long long)max, why,
                       (long long)value);
}

Status check_supported_multiple(const char* name, int64_t value, int64_t multiple,
                                const char* why) {
  if (value % multiple == 0) return ok_status();
  return not_supported("%s: expected a multiple of %lld (%s), got %lld", name, (long long)multiple,
                       why, (long long)value);
}

Status check_tensor(const TensorSpec& tensor, std::initializer_list<TensorDim> dims) {
  for (const TensorDim& dim : dims) {
    if (dim.extent == 0) return ok_status();
  }
  if (tensor.data == nullptr) {
    if (tensor.optional) return ok_status();
    return invalid_argument("%s: expected a non-null pointer, got nullptr", tensor.name);
  }
  if (address_of(tensor.data) % static_cast<unsigned long long>(tensor.alignment) != 0) {
    return invalid_argument("%s: expected a %lld-byte aligned pointer, got %#llx", tensor.name,
                            (long long)tensor.alignment, address_of(tensor.data));
  }
  // Walk from the innermost dimension outwards; `span` is the number of
  // elements from the first to one past the last element of the dimensions
  // walked so far. The innermost dimension is contiguous.
  const TensorDim* begin = dims.begin();
  const TensorDim* dim = dims.end() - 1;
  int64_t span = dim->extent;
  const int64_t elements_per_alignment =
      tensor.alignment > tensor.element_bytes ? tensor.alignment / tensor.element_bytes : 1;
  while (dim != begin) {
    --dim;
    if (dim->stride < span) {
      return invalid_argument("%s: expected >= %lld (the span of the dims inside it), got %lld",
                              dim->stride_name, (long long)span, (long long)dim->stride);
    }
    if (dim->stride % elements_per_alignment != 0) {
      return invalid_argument("%s: expected a multiple of %lld elements (%lld bytes), got %lld",
                              dim->stride_name, (long long)elements_per_alignment,
                              (long long)tensor.alignment, (long long)dim->stride);
    }
    int64_t rows_span = 0;
    if (__builtin_mul_overflow(dim->extent - 1, dim->stride, &rows_span) ||
        __builtin_add_overflow(span, rows_span, &span)) {
      return invalid_argument(
          "%s: expected a size that fits in int64, got an overflow at %s = %lld rows of %s = %lld",
          tensor.name, dim->extent_name, (long long)dim->extent, dim->stride_name,
          (long long)dim->stride);
    }
  }
  int64_t bytes = 0;
  if (__builtin_mul_overflow(span, tensor.element_bytes, &bytes)) {
    return invalid_argument(
        "%s: expected a size that fits in int64, got %lld elements of %lld bytes (overflow)",
        tensor.name, (long long)span, (long long)tensor.element_bytes);
  }
  return ok_status();
}

}  // namespace flashmla::api
