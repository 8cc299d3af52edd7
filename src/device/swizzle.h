// The 128-byte swizzle shared by TMA (CU_TENSOR_MAP_SWIZZLE_128B) and wgmma
// operands described as SWIZZLE_128B: in every 1024-byte block of 8 rows x
// 128 bytes, the 16-byte chunk c of row r is stored at chunk position c ^ r.
// The hardware derives the pattern from shared-memory address bits (bits 4-6
// XOR bits 7-9), so it matches this function only for tiles that start at a
// 1024-byte-aligned address.
#pragma once

#include <cstdint>

#include "common/host_device.h"

namespace flashmla::device {

inline constexpr uint32_t kSwizzle128RowBytes = 128;    // one swizzled row
inline constexpr uint32_t kSwizzle128AtomBytes = 1024;  // 8 rows: the repeat of the pattern

// Where the byte at `offset` (from a 1024-byte-aligned tile base) of a
// row-major tile with 128-byte rows lands in shared memory. An involution:
// applying it twice gives `offset` back.
FLASHMLA_HOST_DEVICE constexpr uint32_t swizzle_128b(uint32_t offset) {
  return offset ^ ((offset >> 3) & 0x70u);
}

// Byte offset of element (row, col) of a tile with 128-byte rows (64 bf16 or
// 32 fp32 columns) in its 128B-swizzled shared-memory image.
template <int kElementBytes>
FLASHMLA_HOST_DEVICE constexpr uint32_t sw128_element_offset(uint32_t row, uint32_t col) {
  static_assert(kElementBytes == 1 || kElementBytes == 2 || kElementBytes == 4);
  return swizzle_128b(row * kSwizzle128RowBytes + col * uint32_t(kElementBytes));
}

}  // namespace flashmla::device
