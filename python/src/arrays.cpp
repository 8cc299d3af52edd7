#include "arrays.h"

#include <cstdarg>
#include <cstdio>

namespace flashmla::python {
namespace {

// DLPack device types (dlpack.h): kDLCPU, kDLCUDA, kDLCUDAHost, kDLCUDAManaged.
constexpr int kDeviceCpu = 1;
constexpr int kDeviceCuda = 2;
constexpr int kDeviceCudaHost = 3;
constexpr int kDeviceCudaManaged = 13;

using Code = nb::dlpack::dtype_code;

bool has(const nb::dlpack::dtype& dtype, Code code, int bits) {
  return dtype.code == uint8_t(code) && dtype.bits == bits && dtype.lanes == 1;
}

[[noreturn]] void raise_with(PyObject* type, const char* message) {
  PyErr_SetString(type, message);
  throw nb::python_error();
}

template <typename Array>
ArrayView make_view(const char* name, const Array& array, int ndim, const char* dims) {
  ArrayView view;
  view.name = name;
  const int actual = int(array.ndim());
  if (actual != ndim) {
    raise_value_error("%s: expected %d dimensions %s, got %d", name, ndim, dims, actual);
  }
  view.ndim = ndim;
  view.data = static_cast<const unsigned char*>(array.data_handle()) + array.byte_offset();
  view.dtype = array.dtype();
  view.device_type = array.device_type();
  view.device_id = array.device_id();
  view.nbytes = int64_t(array.nbytes());
  for (int i = 0; i < ndim; ++i) {
    view.shape[i] = int64_t(array.shape(size_t(i)));
    view.strides[i] = array.stride(size_t(i));
  }
  if (ndim > 0 && view.shape[ndim - 1] > 1 && view.strides[ndim - 1] != 1) {
    raise_value_error("%s: expected the last dimension %s to be contiguous (stride 1), got stride %lld",
                      name, dims, (long long)view.strides[ndim - 1]);
  }
  // Extent-1 dimensions: the smallest stride that the library's layout rules
  // accept (at least the span of the dimensions inside, a multiple of 16 bytes).
  const int64_t element_bytes = view.element_bytes() > 0 ? view.element_bytes() : 1;
  const int64_t granule = element_bytes < 16 ? 16 / element_bytes : 1;
  int64_t span = 1;
  for (int i = ndim - 1; i >= 0; --i) {
    if (view.shape[i] == 1) {
      view.strides[i] = i == ndim - 1 ? 1 : (span + granule - 1) / granule * granule;
    }
    if (view.shape[i] > 0) span = view.strides[i] * (view.shape[i] - 1) + span;
  }
  return view;
}

}  // namespace

void raise_value_error(const char* format, ...) {
  char message[Status::kMaxMessage + 64];
  va_list args;
  va_start(args, format);
  std::vsnprintf(message, sizeof(message), format, args);
  va_end(args);
  raise_with(PyExc_ValueError, message);
}

void raise_if_error(const Status& status) {
  switch (status.code) {
    case StatusCode::kOk: return;
    case StatusCode::kInvalidArgument: raise_with(PyExc_ValueError, status.what());
    case StatusCode::kNotSupported: raise_with(PyExc_NotImplementedError, status.what());
    case StatusCode::kCudaError: raise_with(PyExc_RuntimeError, status.what());
  }
  raise_with(PyExc_RuntimeError, status.what());
}

ArrayView view_of(const char* name, const nb::ndarray<nb::ro>& array, int ndim, const char* dims) {
  return make_view(name, array, ndim, dims);
}

ArrayView view_of(const char* name, const nb::ndarray<>& array, int ndim, const char* dims) {
  return make_view(name, array, ndim, dims);
}

ArrayView absent(const char* name) {
  ArrayView view;
  view.name = name;
  return view;
}

void expect_extent(const ArrayView& view, int dim, int64_t value, const char* what) {
  if (view.shape[dim] == value) return;
  raise_value_error("%s: expected shape[%d] = %lld (%s), got %lld", view.name, dim,
                    (long long)value, what, (long long)view.shape[dim]);
}

std::optional<DType> dtype_of(const ArrayView& view) {
  if (has(view.dtype, Code::Bfloat, 16)) return DType::kBFloat16;
  if (has(view.dtype, Code::Float, 16)) return DType::kFloat16;
  if (has(view.dtype, Code::Float, 32)) return DType::kFloat32;
  return std::nullopt;
}

bool is_int32(const ArrayView& view) { return has(view.dtype, Code::Int, 32); }

bool is_byte(const ArrayView& view) {
  return has(view.dtype, Code::UInt, 8) || has(view.dtype, Code::Int, 8) ||
         has(view.dtype, Code::Float8_E4M3FN, 8);
}

std::string dtype_name(const nb::dlpack::dtype& dtype) {
  const char* base = nullptr;
  switch (Code(dtype.code)) {
    case Code::Int: base = "int"; break;
    case Code::UInt: base = "uint"; break;
    case Code::Float: base = "float"; break;
    case Code::Bfloat: base = "bfloat"; break;
    case Code::Complex: base = "complex"; break;
    case Code::Bool: return "bool";
    case Code::Float8_E4M3FN: return "float8_e4m3fn";
    case Code::Float8_E5M2: return "float8_e5m2";
    default: break;
  }
  std::string name = base ? std::string(base) + std::to_string(dtype.bits)
                          : "dtype(code " + std::to_string(dtype.code) + ", " +
                                std::to_string(dtype.bits) + " bits)";
  if (dtype.lanes != 1) name += "x" + std::to_string(dtype.lanes);
  return name;
}

void expect_dtype(const ArrayView& view, bool ok, const char* expected) {
  if (ok) return;
  raise_value_error("%s: expected dtype %s, got %s", view.name, expected,
                    dtype_name(view.dtype).c_str());
}

void expect_byte_buffer(const ArrayView& view) {
  expect_dtype(view, is_byte(view), "uint8 (a byte buffer)");
}

void expect_device_memory(std::initializer_list<const ArrayView*> views) {
  for (const ArrayView* view : views) {
    if (!view->present() || view->nbytes == 0) continue;
    const int type = view->device_type;
    if (type == kDeviceCuda || type == kDeviceCudaManaged) continue;
    const char* what = type == kDeviceCpu       ? "host memory (a CPU array)"
                       : type == kDeviceCudaHost ? "pinned host memory"
                                                 : nullptr;
    if (what) raise_value_error("%s: expected device memory, got %s", view->name, what);
    raise_value_error("%s: expected device memory, got an array of DLPack device type %d",
                      view->name, type);
  }
}

}  // namespace flashmla::python
