// Host side of TMA: the parameters of a tiled tensor map, their checks, and
// the encoding into a CUtensorMap.
//
// cuTensorMapEncodeTiled is a driver API function; it is looked up at run
// time through the runtime (cudaGetDriverEntryPointByVersion), so neither the
// library nor its tests link libcuda and both start on machines without a
// GPU driver (where encoding reports a CUDA error instead).
//
// Free of CUTLASS: plain C++ with the driver API types of <cuda.h>.
#pragma once

#include <cstdint>

#include <cuda.h>

#include "flashmla/status.h"

namespace flashmla::device {

inline constexpr int kTmaMaxRank = 5;

// Everything cuTensorMapEncodeTiled takes except the global address.
// Dimension 0 is the contiguous one; strides_bytes[i] is the stride of
// dimension i + 1. The shared-memory image of one box is the box in
// row-major order (dimension 0 fastest), swizzled as `swizzle` says.
struct TensorMapParams {
  CUtensorMapDataType dtype = CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
  int32_t element_bytes = 2;
  int32_t rank = 0;
  cuuint64_t dims[kTmaMaxRank] = {};
  cuuint64_t strides_bytes[kTmaMaxRank - 1] = {};
  cuuint32_t box[kTmaMaxRank] = {};
  cuuint32_t element_strides[kTmaMaxRank] = {1, 1, 1, 1, 1};
  CUtensorMapSwizzle swizzle = CU_TENSOR_MAP_SWIZZLE_128B;
  CUtensorMapL2promotion l2_promotion = CU_TENSOR_MAP_L2_PROMOTION_L2_256B;
  // Out-of-bounds elements of a box are written as zeros.
  CUtensorMapFloatOOBfill oob_fill = CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE;

  // Bytes one box brings into shared memory: the expect_tx of one load.
  int64_t box_bytes() const;
};

// A row-major bf16 matrix [rows, cols] with `row_stride` elements between
// rows, loaded as (box_rows x box_cols) tiles with the 128-byte swizzle.
// Coordinates of a load: (col, row).
// Example: Q of one head group, 64 x 576, box 64 x 64 -> dims {576, 64},
// strides {1152 B}, box {64, 64}, 8192 bytes per load.
TensorMapParams bf16_matrix_tile_params(int64_t rows, int64_t cols, int64_t row_stride, int32_t box_rows,
                                        int32_t box_cols);

// A paged bf16 KV pool [num_blocks, page_block_size, d] with strides
// (block_stride, token_stride, 1) in elements, loaded one page at a time as
// (page_block_size x box_cols) tiles with the 128-byte swizzle. Coordinates
// of a load: (col, 0, page).
// Example: [60000, 64, 576] contiguous, box_cols 64 -> dims {576, 64, 60000},
// strides {1152 B, 73728 B}, box {64, 64, 1}, 8192 bytes per load; the last
// page starts at byte 4,423,606,272, which the map's 64-bit strides reach.
TensorMapParams bf16_paged_kv_tile_params(int64_t num_blocks, int64_t page_block_size, int64_t d,
                                          int64_t token_stride, int64_t block_stride, int32_t box_cols);

// The limits cuTensorMapEncodeTiled documents (interleave none): rank 1..5,
// address 16-byte aligned, 0 < dims <= 2^32, strides multiples of 16 below
// 2^40, 0 < box <= 256 with a whole number of 16 bytes in dimension 0 and at
// most the swizzle span (32/64/128 bytes) there, element strides 1..8, and an
// element size that matches the data type. kInvalidArgument names the first
// violation.
Status validate_tensor_map(const TensorMapParams& params, const void* global_address);

// Validates, then encodes with cuTensorMapEncodeTiled (interleave none).
// kInvalidArgument for bad parameters; kCudaError when the driver entry point
// is unavailable (no driver) or the driver rejects the map.
Status encode_tensor_map(const TensorMapParams& params, const void* global_address, CUtensorMap* map);

}  // namespace flashmla::device
