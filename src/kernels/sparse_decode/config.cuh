// Compile-time shape of the sparse FP8 decode kernel: tiles, byte layout of
// the two cache formats (spec section 3), shared-memory map, the two wgmma
// tilings. See README.md beside this file for the schedule.
#pragma once

#include <cstdint>

#include <cute/tensor.hpp>
#include <cute/atom/mma_atom.hpp>
#include <cute/arch/mma_sm90.hpp>
#include <cute/atom/mma_traits_sm90_gmma.hpp>

#include "device/warpgroup_registers.cuh"
#include "flashmla/types.h"

namespace flashmla::kernels::sparse_decode {

using namespace cute;

// Where the parts of one token live in its page (spec section 3).
template <KVFormat kFormat>
struct TokenFormat;

// V32: 656 bytes per token, tokens back to back: 512 e4m3 NoPE bytes, 4 fp32
// scales (one per 128 dims), 64 bf16 RoPE dims.
template <>
struct TokenFormat<KVFormat::kFp8V32> {
  static constexpr int kDimQK = 576;
  static constexpr int kNopeDims = 512;
  static constexpr int kNopeChunks = kNopeDims / 16;  // 16-byte e4m3 chunks
  static constexpr int kTileDims = 128;               // dims per scale
  static constexpr int64_t kTokenBytes = 656;          // row stride in region A
  static constexpr int64_t kRopeOffset = 528;
  static constexpr int64_t kScaleOffset = 512;          // inside the token
};

// MODEL1: region A of P * 576 bytes (448 e4m3 NoPE bytes, 64 bf16 RoPE dims
// per token), then region B of P * 8 bytes (7 UE8M0 scales, one per 64
// dims, and a pad byte per token).
template <>
struct TokenFormat<KVFormat::kFp8Model1> {
  static constexpr int kDimQK = 512;
  static constexpr int kNopeDims = 448;
  static constexpr int kNopeChunks = kNopeDims / 16;
  static constexpr int kTileDims = 64;
  static constexpr int64_t kTokenBytes = 576;
  static constexpr int64_t kRopeOffset = 448;
  static constexpr int64_t kScaleBytes = 8;  // region B stride
};

template <KVFormat kFormat_>
struct Config {
  static constexpr KVFormat kFormat = kFormat_;
  static constexpr bool kPagedPositions = false;  // see PagedPositions (schedule.cuh)
  using Format = TokenFormat<kFormat_>;
  using Element = cutlass::bfloat16_t;

  static constexpr int kThreads = 384;  // a producer and two consumer warpgroups
  static constexpr int kProducerThreads = 128;
  static constexpr int kConsumerThreads = 256;
  // setmaxnreg: the producer gathers a token's raw bytes per thread into
  // registers (44) beside the next one's; each consumer holds a 64 x 256
  // fp32 half of O (128 registers), and the score warpgroup also the 64 x 64
  // fp32 scores (32). The split must fit the pool the CTA launched with,
  // 384 x 168 = 64512 (__launch_bounds__(384, 1)): setmaxnreg.inc blocks
  // until the pool has the registers, so an oversubscribed split deadlocks.
  static constexpr int kProducerRegisters = kFormat_ == KVFormat::kFp8V32 ? 136 : 152;
  static constexpr int kScoreRegisters = kFormat_ == KVFormat::kFp8V32 ? 208 : 192;
  static constexpr int kValueRegisters = 160;
  static_assert((kProducerRegisters + kScoreRegisters + kValueRegisters) * 128 <=
                    kThreads * device::launch_registers(kThreads),
                "setmaxnreg split exceeds the registers the CTA launches with");
  static constexpr int kBlockM = 64;          // query heads per CTA (one wgmma M)
  static constexpr int kBlockN = 64;          // selected tokens per block (kBlockTokens)
  static constexpr int kDimQK = Format::kDimQK;
  static constexpr int kDimV = 512;
  static constexpr int kHalfV = kDimV / 2;  // V dims one warpgroup accumulates
  static constexpr int kTileCols = 64;      // 128 bytes: one TMA box, one swizzle row
  static constexpr int kNumKTiles = kDimQK / kTileCols;  // 9 (V32) or 8 (MODEL1)
  static constexpr int kTileBytes = kBlockN * kTileCols * 2;  // 8 KiB
  static constexpr int kStages = 2;  // dequantized blocks in shared memory

  // K-major tiles with the 128-byte swizzle; the producer writes the
  // dequantized tokens at exactly the positions a TMA box would.
  using SmemLayoutAtom = GMMA::Layout_K_SW128_Atom<Element>;
  using SmemLayoutQ = decltype(tile_to_shape(SmemLayoutAtom{}, Shape<Int<kBlockM>, Int<kDimQK>>{}));
  using SmemLayoutK =
      decltype(tile_to_shape(SmemLayoutAtom{}, Shape<Int<kBlockN>, Int<kDimQK>, Int<kStages>>{}));
  // V is the first 512 columns of K, read transposed (dims x tokens, MN-major).
  using SmemLayoutVt = decltype(composition(
      SmemLayoutK{}, make_layout(Shape<Int<kDimV>, Int<kBlockN>, Int<kStages>>{},
                                 Stride<Int<kBlockN>, _1, Int<kBlockN * kDimQK>>{})));
  using SmemLayoutP = decltype(tile_to_shape(SmemLayoutAtom{}, Shape<Int<kBlockM>, Int<kBlockN>>{}));

  using TiledMmaQK = decltype(make_tiled_mma(
      GMMA::ss_op_selector<Element, Element, float, Shape<Int<kBlockM>, Int<kBlockN>, Int<kDimQK>>>()));
  using TiledMmaPV = decltype(make_tiled_mma(
      GMMA::ss_op_selector<Element, Element, float, Shape<Int<kBlockM>, Int<kHalfV>, Int<kBlockN>>,
                           GMMA::Major::K, GMMA::Major::MN>()));
  // The score warpgroup's own O_half += P V_half with P from its registers
  // (RS): it need not wait for P to reach shared memory.
  using TiledMmaPVRegP = decltype(make_tiled_mma(
      GMMA::rs_op_selector<Element, Element, float, Shape<Int<kBlockM>, Int<kHalfV>, Int<kBlockN>>,
                           GMMA::Major::K, GMMA::Major::MN>()));

  struct SharedStorage {
    alignas(1024) Element q[cosize_v<SmemLayoutQ>];
    alignas(1024) Element k[cosize_v<SmemLayoutK>];
    alignas(1024) Element p[cosize_v<SmemLayoutP>];
    float p_rescale[kBlockM];   // per row: the factor O is rescaled by before P V of the block in p
    float row_inv[2][kBlockM];  // [piece parity][row]: 1 / the output row's denominator
    uint8_t valid[kStages][kBlockN];  // 1: the token of the stage is a selected key
    alignas(8) uint64_t q_full;
    alignas(8) uint64_t k_full[kStages];
    alignas(8) uint64_t k_empty[kStages];
  };

  static constexpr int kSmemBytes = int(sizeof(SharedStorage));
  static_assert(kSmemBytes <= 232448, "sparse decode shared memory exceeds the 227 KiB of an H100 CTA");
  static_assert(Format::kNopeChunks % 4 == 0, "four producer lanes share a token's NoPE chunks");
};

}  // namespace flashmla::kernels::sparse_decode
