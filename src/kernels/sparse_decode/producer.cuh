// The producer's gather: the raw FP8 bytes of one selected token into
// registers, then dequantized to bf16 at the positions of the K-major
// 128B-swizzled tile that wgmma reads. Four threads share a token: lane
// quarter q owns NoPE chunks q, q + 4, ... (16 e4m3 bytes each) and RoPE
// chunks q and q + 4 (8 bf16 each), so each group of four lanes reads 64
// contiguous bytes per load and writes 16-byte shared-memory stores that
// never conflict (the swizzle spreads a quarter-warp over all 32 banks).
#pragma once

#include <cstdint>

#include <cuda_bf16.h>

#include "device/fp8_dequant.cuh"
#include "device/global_load.cuh"
#include "device/mbarrier.cuh"
#include "device/swizzle.h"
#include "device/tma.cuh"
#include "kernels/sparse_decode/config.cuh"
#include "kernels/sparse_decode/schedule.cuh"

namespace flashmla::kernels::sparse_decode {

// Loads a piece's q by TMA into the q tiles: one box of 64 dims x
// q_box_rows (heads x tokens, from head0 of token s) per tile (`tile_bytes`
// apart in shared memory), completing on q_full. One consumer thread calls it, once the previous piece's q is read
// for the last time.
template <typename Cfg, typename SharedStorage>
__device__ __forceinline__ void load_q_tiles(const CUtensorMap* q_map, SharedStorage& smem, int tile_bytes,
                                             int32_t head0, int32_t s, int32_t req, int32_t q_box_rows) {
  device::mbarrier_arrive_expect_tx(&smem.q_full, Cfg::kNumKTiles * 128 * q_box_rows);
  for (int t = 0; t < Cfg::kNumKTiles; ++t) {
    device::tma_load_4d(reinterpret_cast<char*>(smem.q) + t * tile_bytes, &smem.q_full, q_map, t * 64, head0, s,
                        req);
  }
}

template <KVFormat kFormat>
struct RawToken {
  using Format = TokenFormat<kFormat>;
  static constexpr int kChunks = Format::kNopeChunks / 4;  // per lane: 8 (V32) or 7 (MODEL1)
  uint4 nope[kChunks];
  uint4 rope[2];
  uint4 scales;  // V32: 4 fp32; MODEL1: 8 UE8M0 bytes in .x, .y
};

// Loads lane quarter `q`'s share of a token; an unselected token (page ==
// nullptr) is all zero bytes, which dequantize to a zero row.
template <KVFormat kFormat>
__device__ __forceinline__ void load_token(const TokenRef& t, int q, RawToken<kFormat>& raw) {
  using Format = TokenFormat<kFormat>;
  constexpr int kChunks = RawToken<kFormat>::kChunks;
  if (t.page == nullptr) {
    CUTE_UNROLL
    for (int i = 0; i < kChunks; ++i) raw.nope[i] = make_uint4(0, 0, 0, 0);
    raw.rope[0] = raw.rope[1] = make_uint4(0, 0, 0, 0);
    raw.scales = make_uint4(0, 0, 0, 0);
    return;
  }
  const uint8_t* token = t.page + int64_t(t.row) * Format::kTokenBytes;
  CUTE_UNROLL
  for (int i = 0; i < kChunks; ++i) raw.nope[i] = device::ld_nc_16b(token + 16 * (q + 4 * i));
  raw.rope[0] = device::ld_nc_16b(token + Format::kRopeOffset + 16 * q);
  raw.rope[1] = device::ld_nc_16b(token + Format::kRopeOffset + 16 * (q + 4));
  if constexpr (kFormat == KVFormat::kFp8V32) {
    raw.scales = device::ld_nc_16b(token + Format::kScaleOffset);
  } else {
    const uint8_t* scales =
        t.page + int64_t(t.page_block_size) * Format::kTokenBytes + int64_t(t.row) * Format::kScaleBytes;
    const uint2 s = device::ld_nc_8b(scales);
    raw.scales = make_uint4(s.x, s.y, 0, 0);
  }
}

// The small-head kernel's gather goes through a raw ring in shared memory:
// each selected token's region-A bytes (V32: all 656, MODEL1: 576) arrive
// by one bulk copy into the token's slot, issued two blocks ahead by lane
// quarter 0 of its four threads; a warp's 8 tokens complete on the warp's
// own barrier of the stage (expecting the bytes of the copies actually
// issued: an unselected token is never copied). MODEL1's 8 scale bytes
// (region B) are below a copy's 16-byte granule: each thread loads them
// with the copy and keeps them in registers until the block is dequantized.
template <KVFormat kFormat>
__device__ __forceinline__ void issue_token_copy(const TokenRef& t, int q, uint8_t* slot, uint64_t* warp_full,
                                                 uint2& model1_scales) {
  using Format = TokenFormat<kFormat>;
  const bool copy = q == 0 && t.page != nullptr;
  const uint32_t copies = __popc(__ballot_sync(0xffffffffu, copy));
  if (threadIdx.x % 32 == 0) device::mbarrier_arrive_expect_tx(warp_full, copies * uint32_t(Format::kTokenBytes));
  // Every lane's reads of the slots (and its proxy fence) come before the
  // copies that overwrite them.
  __syncwarp();
  if (copy) device::bulk_load_shared(slot, t.page + int64_t(t.row) * Format::kTokenBytes, Format::kTokenBytes, warp_full);
  if constexpr (kFormat == KVFormat::kFp8Model1) {
    model1_scales = make_uint2(0, 0);
    if (t.page != nullptr) {
      model1_scales = device::ld_nc_8b(t.page + int64_t(t.page_block_size) * Format::kTokenBytes +
                                       int64_t(t.row) * Format::kScaleBytes);
    }
  }
}

// Lane quarter q's share of a token from its raw slot (the same registers
// load_token fills from global memory); an unselected token is all zero
// bytes, whatever the slot holds from an earlier block.
template <KVFormat kFormat>
__device__ __forceinline__ void read_raw_token(const uint8_t* slot, bool selected, const uint2& model1_scales, int q,
                                               RawToken<kFormat>& raw) {
  using Format = TokenFormat<kFormat>;
  constexpr int kChunks = RawToken<kFormat>::kChunks;
  if (!selected) {
    CUTE_UNROLL
    for (int i = 0; i < kChunks; ++i) raw.nope[i] = make_uint4(0, 0, 0, 0);
    raw.rope[0] = raw.rope[1] = make_uint4(0, 0, 0, 0);
    raw.scales = make_uint4(0, 0, 0, 0);
    return;
  }
  CUTE_UNROLL
  for (int i = 0; i < kChunks; ++i) raw.nope[i] = *reinterpret_cast<const uint4*>(slot + 16 * (q + 4 * i));
  raw.rope[0] = *reinterpret_cast<const uint4*>(slot + Format::kRopeOffset + 16 * q);
  raw.rope[1] = *reinterpret_cast<const uint4*>(slot + Format::kRopeOffset + 16 * (q + 4));
  if constexpr (kFormat == KVFormat::kFp8V32) {
    raw.scales = *reinterpret_cast<const uint4*>(slot + Format::kScaleOffset);
  } else {
    raw.scales = make_uint4(model1_scales.x, model1_scales.y, 0, 0);
  }
}

// The scale of NoPE chunk i of lane quarter q's share (chunk q + 4 i), as a
// bf16 pair: V32 has one fp32 scale per 128 dims, chunk (q + 4 i) * 16 / 128
// = i / 2; MODEL1 one UE8M0 byte per 64 dims, byte i.
template <KVFormat kFormat>
__device__ __forceinline__ __nv_bfloat162 chunk_scale(const uint4& scales, int i) {
  if constexpr (kFormat == KVFormat::kFp8V32) {
    const uint32_t bits = (i / 2 == 0) ? scales.x : (i / 2 == 1) ? scales.y : (i / 2 == 2) ? scales.z : scales.w;
    return device::fp32_scale_to_bf16x2(__uint_as_float(bits));
  } else {
    const uint32_t word = i < 4 ? scales.x : scales.y;
    return device::ue8m0_to_bf16x2((word >> (8 * (i % 4))) & 0xFFu);
  }
}

// Whether every scale of the token is below 2^8, so that each chunk needs one
// multiply per two codes (device/fp8_dequant.cuh).
template <KVFormat kFormat>
__device__ __forceinline__ bool token_scales_narrow(const uint4& scales) {
  if constexpr (kFormat == KVFormat::kFp8V32) {
    return device::scale_is_narrow(device::fp32_scale_to_bf16x2(__uint_as_float(scales.x))) &&
           device::scale_is_narrow(device::fp32_scale_to_bf16x2(__uint_as_float(scales.y))) &&
           device::scale_is_narrow(device::fp32_scale_to_bf16x2(__uint_as_float(scales.z))) &&
           device::scale_is_narrow(device::fp32_scale_to_bf16x2(__uint_as_float(scales.w)));
  } else {
    // Seven bytes (the eighth is padding): the largest must have a factor.
    uint32_t m = __vmaxu4(scales.x, scales.y & 0x00FFFFFFu);  // bytewise
    m = __vmaxu4(m, m >> 16);
    m = __vmaxu4(m, m >> 8);
    return (m & 0xFFu) <= device::kUe8m0MaxNarrowByte;
  }
}

// Dequantizes lane quarter q's share of a token into row `row` of a stage
// (kNumKTiles tiles of 64 rows x 128 bytes, 128B-swizzled): `put(offset,
// value)` stores 16 bytes at a byte offset of the stage (this CTA's, or for
// the crossover this CTA's and the peer's). kNarrow: every scale of the
// token is below 2^8 (one multiply per two codes). Only NoPE chunks
// [kFirst, kEnd) of the lane's share (tiles kFirst .. kEnd - 1), and the
// RoPE tile when kRope: the small-head kernel fills its stage in two tile
// groups.
template <typename Cfg, bool kNarrow, int kFirst, int kEnd, bool kRope, typename Put>
__device__ __forceinline__ void store_token_as(const RawToken<Cfg::kFormat>& raw, int q, int row, Put&& put) {
  using Format = typename Cfg::Format;
  const uint32_t row_bytes = uint32_t(row) * 128;
  CUTE_UNROLL
  for (int i = kFirst; i < kEnd; ++i) {
    // Chunk c = q + 4 i holds dims [16 c, 16 c + 16): tile i (64 dims), 8-dim
    // columns 2 q and 2 q + 1 of it.
    const __nv_bfloat162 scale = chunk_scale<Cfg::kFormat>(raw.scales, i);
    const uint32_t words[4] = {raw.nope[i].x, raw.nope[i].y, raw.nope[i].z, raw.nope[i].w};
    uint32_t out[8];
    if constexpr (kNarrow) {
      const __nv_bfloat162 factor = device::scale_factor_bf16x2(scale);
      CUTE_UNROLL
      for (int w = 0; w < 4; ++w) device::dequant_e4m3x4(words[w], factor, out + 2 * w);
    } else {
      CUTE_UNROLL
      for (int w = 0; w < 4; ++w) device::dequant_e4m3x4_wide(words[w], scale, out + 2 * w);
    }
    const uint32_t tile = uint32_t(i * Cfg::kTileBytes);
    put(tile + device::swizzle_128b(row_bytes + (2 * q) * 16), make_uint4(out[0], out[1], out[2], out[3]));
    put(tile + device::swizzle_128b(row_bytes + (2 * q + 1) * 16), make_uint4(out[4], out[5], out[6], out[7]));
  }
  if constexpr (kRope) {
    // RoPE: bf16 as stored; dims [kNopeDims, kNopeDims + 64) are one whole tile.
    const uint32_t rope_tile = uint32_t((Format::kNopeDims / 64) * Cfg::kTileBytes);
    put(rope_tile + device::swizzle_128b(row_bytes + q * 16), raw.rope[0]);
    put(rope_tile + device::swizzle_128b(row_bytes + (q + 4) * 16), raw.rope[1]);
  }
}

// Dequantizes a thread's tokens into a stage: one branch for all of them,
// so that the compiler interleaves their dequantization. By default the
// whole token; <kFirst, kEnd, kRope> as in store_token_as.
template <typename Cfg, int kTokens, int kFirst = 0, int kEnd = RawToken<Cfg::kFormat>::kChunks, bool kRope = true,
          typename Put>
__device__ __forceinline__ void store_tokens_with(const RawToken<Cfg::kFormat> (&raw)[kTokens], int q,
                                                  const int (&rows)[kTokens], Put&& put) {
  bool narrow = true;
  CUTE_UNROLL
  for (int t = 0; t < kTokens; ++t) narrow = narrow && token_scales_narrow<Cfg::kFormat>(raw[t].scales);
  if (narrow) {
    CUTE_UNROLL
    for (int t = 0; t < kTokens; ++t) store_token_as<Cfg, true, kFirst, kEnd, kRope>(raw[t], q, rows[t], put);
  } else {
    CUTE_UNROLL
    for (int t = 0; t < kTokens; ++t) store_token_as<Cfg, false, kFirst, kEnd, kRope>(raw[t], q, rows[t], put);
  }
}

// The same into this CTA's stage.
template <typename Cfg, int kTokens, int kFirst = 0, int kEnd = RawToken<Cfg::kFormat>::kChunks, bool kRope = true>
__device__ __forceinline__ void store_tokens(const RawToken<Cfg::kFormat> (&raw)[kTokens], int q,
                                             const int (&rows)[kTokens], char* stage) {
  store_tokens_with<Cfg, kTokens, kFirst, kEnd, kRope>(raw, q, rows, [&](uint32_t offset, uint4 v) {
    *reinterpret_cast<uint4*>(stage + offset) = v;
  });
}

}  // namespace flashmla::kernels::sparse_decode
