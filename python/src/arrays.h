// DLPack arrays -> the fields of the C++ Args structs, and Status -> Python
// exceptions. The only code of the extension that knows about DLPack.
//
// Every check here is host-only (shapes, dtypes, strides read from the DLPack
// header, never the data), so argument errors are reported the same way on a
// machine without a GPU.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include "flashmla/flashmla.h"

namespace flashmla::python {

namespace nb = nanobind;

// Inputs are accepted read-only (JAX exports read-only arrays); outputs must
// be writable.
using InArray = nb::ndarray<nb::ro>;
using OutArray = nb::ndarray<>;

// Raises ValueError (kInvalidArgument), NotImplementedError (kNotSupported)
// or RuntimeError (kCudaError) carrying the status message; returns on ok.
void raise_if_error(const Status& status);

// Raises ValueError with a printf-style message.
[[noreturn]] void raise_value_error(const char* format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

// What the bindings read from one array. Strides are in elements, as the C++
// API takes them; a dimension of extent 1 gets the stride a contiguous layout
// would give it (its stride never forms an address, and frameworks report
// arbitrary values there).
struct ArrayView {
  static constexpr int kMaxDims = 5;

  const char* name = "";
  const void* data = nullptr;
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};
  nb::dlpack::dtype dtype{};
  int device_type = 0;
  int device_id = 0;
  int64_t nbytes = 0;

  int64_t element_bytes() const { return (int64_t(dtype.bits) + 7) / 8; }
  bool present() const { return ndim > 0 || data != nullptr; }
};

// Reads `array` as a tensor of `ndim` dimensions named `dims` (for messages,
// e.g. "[b, s_q, h_q, d_qk]"); ValueError when the rank differs or the last
// dimension is not contiguous.
ArrayView view_of(const char* name, const nb::ndarray<nb::ro>& array, int ndim, const char* dims);
ArrayView view_of(const char* name, const nb::ndarray<>& array, int ndim, const char* dims);
// An absent optional array: present() is false, data is nullptr.
ArrayView absent(const char* name);

// "<name>: expected shape[<dim>] = <value> (<what>), got <actual>"
void expect_extent(const ArrayView& view, int dim, int64_t value, const char* what);
// The library's element type of a bf16 / fp16 / fp32 array; nullopt otherwise.
std::optional<DType> dtype_of(const ArrayView& view);
bool is_int32(const ArrayView& view);
// One-byte elements: uint8, int8 or float8_e4m3fn (FP8 caches as raw bytes).
bool is_byte(const ArrayView& view);
// "bfloat16", "int32", ... for messages.
std::string dtype_name(const nb::dlpack::dtype& dtype);
// ValueError "<name>: expected dtype <expected>, got <actual>" unless `ok`.
void expect_dtype(const ArrayView& view, bool ok, const char* expected);
// A 1-D contiguous byte buffer (schedule, workspace): ValueError otherwise.
void expect_byte_buffer(const ArrayView& view);

// The last step before run(): every present array must be device memory
// (CUDA or managed). ValueError "<name>: expected device memory, got ..."
// names the first that is not, so validation tests run on a CPU-only machine.
void expect_device_memory(std::initializer_list<const ArrayView*> views);

}  // namespace flashmla::python
