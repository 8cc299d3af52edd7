#include "device/tma_descriptor.h"

#include "common/status_util.h"

#include <cstdarg>
#include <cstdio>

#include <cuda_runtime_api.h>
#include <cudaTypedefs.h>  // PFN_cuTensorMapEncodeTiled_v12000

namespace flashmla::device {
namespace {

int32_t dtype_bytes(CUtensorMapDataType dtype) {
  switch (dtype) {
    case CU_TENSOR_MAP_DATA_TYPE_UINT8: return 1;
    case CU_TENSOR_MAP_DATA_TYPE_UINT16:
    case CU_TENSOR_MAP_DATA_TYPE_FLOAT16:
    case CU_TENSOR_MAP_DATA_TYPE_BFLOAT16: return 2;
    case CU_TENSOR_MAP_DATA_TYPE_UINT32:
    case CU_TENSOR_MAP_DATA_TYPE_INT32:
    case CU_TENSOR_MAP_DATA_TYPE_FLOAT32: return 4;
    default: return 0;  // types this library does not load through TMA
  }
}

// Bytes of dimension 0 that one swizzle pattern spans; 0 for no swizzle.
uint32_t swizzle_span_bytes(CUtensorMapSwizzle swizzle) {
  switch (swizzle) {
    case CU_TENSOR_MAP_SWIZZLE_32B: return 32;
    case CU_TENSOR_MAP_SWIZZLE_64B: return 64;
    case CU_TENSOR_MAP_SWIZZLE_128B: return 128;
    default: return 0;
  }
}

// Saturating conversion for the builders: a negative argument becomes 0, which
// validate_tensor_map reports, instead of wrapping to a huge unsigned value.
uint64_t non_negative(int64_t v) { return v < 0 ? 0 : uint64_t(v); }
uint32_t box_extent(int64_t v) { return v < 0 ? 0 : v > 0xFFFFFFFFLL ? 0xFFFFFFFFu : uint32_t(v); }

using EncodeTiledFn = PFN_cuTensorMapEncodeTiled_v12000;

struct EncodeEntryPoint {
  EncodeTiledFn fn = nullptr;
  cudaError_t error = cudaSuccess;
  cudaDriverEntryPointQueryResult query = cudaDriverEntryPointSuccess;
};

// Looked up once (thread-safe static initialisation). 12000: the ABI of
// cuTensorMapEncodeTiled as introduced in CUDA 12.0, the one the typedef
// above describes.
const EncodeEntryPoint& encode_entry_point() {
  static const EncodeEntryPoint entry = [] {
    EncodeEntryPoint e;
    void* fn = nullptr;
    e.error = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault,
                                               &e.query);
    if (e.error != cudaSuccess) {
      cudaGetLastError();  // leave no error behind for the caller's next check
    } else if (e.query == cudaDriverEntryPointSuccess) {
      e.fn = reinterpret_cast<EncodeTiledFn>(fn);
    }
    return e;
  }();
  return entry;
}

}  // namespace

int64_t TensorMapParams::box_bytes() const {
  int64_t bytes = element_bytes;
  for (int i = 0; i < rank && i < kTmaMaxRank; ++i) bytes *= box[i];
  return bytes;
}

TensorMapParams bf16_matrix_tile_params(int64_t rows, int64_t cols, int64_t row_stride, int32_t box_rows,
                                        int32_t box_cols) {
  TensorMapParams p;
  p.dtype = CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
  p.element_bytes = 2;
  p.rank = 2;
  p.dims[0] = non_negative(cols);
  p.dims[1] = non_negative(rows);
  p.strides_bytes[0] = non_negative(row_stride) * 2;
  p.box[0] = box_extent(box_cols);
  p.box[1] = box_extent(box_rows);
  p.swizzle = CU_TENSOR_MAP_SWIZZLE_128B;
  return p;
}

TensorMapParams bf16_paged_kv_tile_params(int64_t num_blocks, int64_t page_block_size, int64_t d,
                                          int64_t token_stride, int64_t block_stride, int32_t box_cols) {
  TensorMapParams p;
  p.dtype = CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
  p.element_bytes = 2;
  p.rank = 3;
  p.dims[0] = non_negative(d);
  p.dims[1] = non_negative(page_block_size);
  p.dims[2] = non_negative(num_blocks);
  p.strides_bytes[0] = non_negative(token_stride) * 2;
  p.strides_bytes[1] = non_negative(block_stride) * 2;
  p.box[0] = box_extent(box_cols);
  p.box[1] = box_extent(page_block_size);
  p.box[2] = 1;
  p.swizzle = CU_TENSOR_MAP_SWIZZLE_128B;
  return p;
}

Status validate_tensor_map(const TensorMapParams& p, const void* global_address) {
  constexpr uint64_t kMaxDim = uint64_t(1) << 32;
  constexpr uint64_t kMaxStride = uint64_t(1) << 40;
  if (p.rank < 1 || p.rank > kTmaMaxRank) {
    return make_status(StatusCode::kInvalidArgument, "tensor map: rank %d is outside 1..%d", p.rank,
                       kTmaMaxRank);
  }
  const int32_t expected_bytes = dtype_bytes(p.dtype);
  if (expected_bytes == 0 || expected_bytes != p.element_bytes) {
    return make_status(StatusCode::kInvalidArgument,
                       "tensor map: element_bytes %d does not match data type %d (expected %d)",
                       p.element_bytes, int(p.dtype), expected_bytes);
  }
  if (global_address == nullptr || reinterpret_cast<uintptr_t>(global_address) % 16 != 0) {
    return make_status(StatusCode::kInvalidArgument,
                       "tensor map: global address %p must be non-null and 16-byte aligned", global_address);
  }
  for (int i = 0; i < p.rank; ++i) {
    if (p.dims[i] == 0 || p.dims[i] > kMaxDim) {
      return make_status(StatusCode::kInvalidArgument, "tensor map: dims[%d] = %llu is outside 1..2^32", i,
                         static_cast<unsigned long long>(p.dims[i]));
    }
    if (p.box[i] == 0 || p.box[i] > 256) {
      return make_status(StatusCode::kInvalidArgument, "tensor map: box[%d] = %u is outside 1..256", i,
                         p.box[i]);
    }
    if (p.element_strides[i] == 0 || p.element_strides[i] > 8) {
      return make_status(StatusCode::kInvalidArgument, "tensor map: element_strides[%d] = %u is outside 1..8",
                         i, p.element_strides[i]);
    }
  }
  for (int i = 0; i + 1 < p.rank; ++i) {
    if (p.strides_bytes[i] % 16 != 0 || p.strides_bytes[i] >= kMaxStride) {
      return make_status(StatusCode::kInvalidArgument,
                         "tensor map: strides_bytes[%d] = %llu (stride of dims[%d]) must be a multiple of 16 "
                         "below 2^40",
                         i, static_cast<unsigned long long>(p.strides_bytes[i]), i + 1);
    }
  }
  const uint64_t inner_box_bytes = uint64_t(p.box[0]) * uint64_t(p.element_bytes);
  if (inner_box_bytes % 16 != 0) {
    return make_status(StatusCode::kInvalidArgument,
                       "tensor map: box[0] spans %llu bytes, not a multiple of 16",
                       static_cast<unsigned long long>(inner_box_bytes));
  }
  const uint32_t span = swizzle_span_bytes(p.swizzle);
  if (span != 0 && inner_box_bytes > span) {
    return make_status(StatusCode::kInvalidArgument,
                       "tensor map: box[0] spans %llu bytes, more than the %u-byte swizzle span",
                       static_cast<unsigned long long>(inner_box_bytes), span);
  }
  return Status{};
}

Status encode_tensor_map(const TensorMapParams& p, const void* global_address, CUtensorMap* map) {
  if (map == nullptr) return make_status(StatusCode::kInvalidArgument, "tensor map: output pointer is null");
  Status status = validate_tensor_map(p, global_address);
  if (!status.ok()) return status;

  const EncodeEntryPoint& entry = encode_entry_point();
  if (entry.fn == nullptr) {
    if (entry.error != cudaSuccess) {
      return make_status(StatusCode::kCudaError,
                         "cuTensorMapEncodeTiled unavailable: cudaGetDriverEntryPointByVersion failed: %s",
                         cudaGetErrorString(entry.error));
    }
    return make_status(StatusCode::kCudaError,
                       "cuTensorMapEncodeTiled unavailable: driver entry point query result %d (driver older "
                       "than CUDA 12.0?)",
                       int(entry.query));
  }
  const CUresult result = entry.fn(map, p.dtype, cuuint32_t(p.rank), const_cast<void*>(global_address), p.dims,
                                   p.strides_bytes, p.box, p.element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                   p.swizzle, p.l2_promotion, p.oob_fill);
  if (result != CUDA_SUCCESS) {
    return make_status(StatusCode::kCudaError, "cuTensorMapEncodeTiled failed: CUresult %d", int(result));
  }
  return Status{};
}

}  // namespace flashmla::device
