// Pure pieces of the wgmma data layouts, usable on the host (CPU tests) and
// the device: the shared-memory matrix descriptor and the accumulator
// fragment of an m64nN wgmma.
#pragma once

#include <cstdint>

#include "common/host_device.h"

namespace flashmla::device {

// Bits 62-63 of a matrix descriptor: how the operand tile is swizzled.
enum class SmemSwizzle : uint32_t {
  kNone = 0,  // "interleave": 8x16-byte core matrices, no swizzle
  k128B = 1,
  k64B = 2,
  k32B = 3,
};

// PTX ISA "Warpgroup level matrix shared memory layout: Matrix Descriptor
// Format". Byte quantities in; each 14-bit field holds (bytes & 0x3FFFF) >> 4.
//   bits  0-13 start address     bits 16-29 leading dimension byte offset
//   bits 32-45 stride dimension byte offset
//   bits 49-51 base offset (phase of the swizzle pattern; 0 when every tile
//              starts 1024-byte aligned)
//   bits 62-63 swizzle mode
FLASHMLA_HOST_DEVICE constexpr uint64_t pack_smem_descriptor(uint32_t start_address,
                                                             uint32_t leading_byte_offset,
                                                             uint32_t stride_byte_offset,
                                                             uint32_t base_offset,
                                                             SmemSwizzle swizzle) {
  return uint64_t((start_address & 0x3FFFFu) >> 4) |
         uint64_t((leading_byte_offset & 0x3FFFFu) >> 4) << 16 |
         uint64_t((stride_byte_offset & 0x3FFFFu) >> 4) << 32 |
         uint64_t(base_offset & 0x7u) << 49 |
         uint64_t(static_cast<uint32_t>(swizzle)) << 62;
}

// Descriptor of a K-major bf16 operand tile (rows = M or N, 64 columns of K
// = 128 bytes per row) written by TMA with the 128-byte swizzle at
// `tile_address` (a shared-memory address, 1024-byte aligned):
//  - stride byte offset 1024: 8-row groups (one swizzle atom) are 1024 bytes
//    apart;
//  - leading byte offset: unused for a swizzled K-major operand whose K slice
//    (16 bf16 = 32 bytes) lies inside one 128-byte row; encoded as 16 bytes
//    (field value 1), the value CuTe uses;
//  - base offset 0, as the tile is 1024-byte aligned.
FLASHMLA_HOST_DEVICE constexpr uint64_t make_sw128_kmajor_descriptor(uint32_t tile_address) {
  return pack_smem_descriptor(tile_address, 16, 1024, 0, SmemSwizzle::k128B);
}

// Moves a descriptor's start address by `bytes` (a multiple of 16). The k-th
// 16-wide K slice of a 64-column SW128 K-major tile starts 32 * k bytes into
// row 0: the hardware applies the swizzle to the final address (bits 4-6 XOR
// bits 7-9), so the slice is found by advancing the start address alone.
// Valid while the start address stays below 256 KiB (14-bit field), which
// all of shared memory does.
FLASHMLA_HOST_DEVICE constexpr uint64_t advance_smem_descriptor(uint64_t descriptor, uint32_t bytes) {
  return descriptor + uint64_t(bytes >> 4);
}

// Where accumulator register i of thread t (0..127 in the warpgroup) sits in
// the 64 x N fp32 result of an m64nNk16 wgmma: warp w = t / 32 owns rows
// 16w .. 16w + 15; lane l holds rows 16w + l / 4 (registers with i % 4 < 2)
// and that + 8 (i % 4 >= 2), columns 8 * (i / 4) + 2 * (l % 4) + i % 2.
struct FragmentCoord {
  int row;
  int col;
};

FLASHMLA_HOST_DEVICE constexpr FragmentCoord wgmma_accumulator_coord(int thread, int i) {
  const int warp = thread / 32;
  const int lane = thread % 32;
  return FragmentCoord{16 * warp + lane / 4 + 8 * ((i / 2) % 2), 8 * (i / 4) + 2 * (lane % 4) + i % 2};
}

}  // namespace flashmla::device
