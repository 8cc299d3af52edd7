// Compile-time shape of the small-head sparse decode kernel (h_q <= 32):
// heads on the wgmma N dimension ("swap AB"), so a 16-head token costs
// 16-head matrix work. See README.md ("Small head counts").
//
//   S^T = K Q^T   M = 64 tokens, N = kN heads, K = d_qk  (K tile K-major, Q K-major)
//   O^T += V^T P^T M = 512 dims (8 m64 tiles), N = kN, K = 64 tokens
//                  (V^T: the MN-major view of the K tile; P^T K-major)
#pragma once

#include <cstdint>

#include <cute/tensor.hpp>
#include <cute/atom/mma_atom.hpp>
#include <cute/arch/mma_sm90.hpp>
#include <cute/atom/mma_traits_sm90_gmma.hpp>

#include "kernels/sparse_decode/config.cuh"

namespace flashmla::kernels::sparse_decode {

using namespace cute;

template <KVFormat kFormat_, int kN_>
struct SmallConfig {
  static constexpr KVFormat kFormat = kFormat_;
  static constexpr bool kPagedPositions = false;  // see PagedPositions (schedule.cuh)
  using Format = TokenFormat<kFormat_>;
  using Element = cutlass::bfloat16_t;
  static constexpr int kN = kN_;  // heads padded to the wgmma N granule (8, 16 or 32)
  static_assert(kN % 8 == 0 && kN <= 32, "N is a multiple of 8, at most 32 heads");

  // Two producer warpgroups (one token quarter per thread: it reads the
  // token's raw bytes from the raw ring and dequantizes them) and one
  // consumer warpgroup, whose matrix work is 4x-16x smaller than the 64-row
  // kernel's. 256 * 144 + 128 * 216 = 64512 = 384 * 168.
  static constexpr int kThreads = 384;
  static constexpr int kProducerThreads = 256;
  static constexpr int kConsumerThreads = 128;
  static constexpr int kProducerRegisters = 144;
  static constexpr int kConsumerRegisters = 216;
  static_assert(kProducerRegisters * kProducerThreads + kConsumerRegisters * kConsumerThreads <= 384 * 168,
                "setmaxnreg split exceeds the registers the CTA launches with");

  static constexpr int kBlockN = 64;  // selected tokens per block
  static constexpr int kDimQK = Format::kDimQK;
  static constexpr int kDimV = 512;
  static constexpr int kTileCols = 64;
  static constexpr int kNumKTiles = kDimQK / kTileCols;
  static constexpr int kTileBytes = kBlockN * kTileCols * 2;  // one k-tile of a stage
  static constexpr int kQTileBytes = kN * kTileCols * 2;      // one k-tile of q
  // One dequantized stage and two raw stages: the gather is bound by the
  // bytes in flight per SM (bench/gather_ceiling.cu on an H200, S05's
  // tokens: 256 threads of 16-byte loads 78 us, one bulk copy per token
  // from two warps with two 64-token raw stages 62 us), and a second bf16
  // stage (72 KiB) does not fit beside two raw ones (90 KiB). The cost: the
  // dequantization of block n + 1 and the consumer's work on block n share
  // the stage, so they run mostly in series (measured at 49ef8ae: each
  // alone keeps pace with the gather, ~62 us on S05; together 83 us).
  static constexpr int kStages = 1;
  // The stage is filled and released in two tile groups, so that the
  // dequantization of block n + 1 overlaps the consumer's work on block n:
  // group 0 = tiles 0-3 (V dims 0-255: O^T m-tiles 0-3, Q K^T k-steps
  // 0-15), group 1 = the other tiles (V dims 256-511 and the RoPE tile).
  // The producer writes group 0 as soon as the first half of the block's
  // O^T += V^T P^T is done, while the second half still runs.
  static constexpr int kGroups = 2;
  static constexpr int kGroup0Tiles = 4;
  static constexpr int kGroup0KSteps = kGroup0Tiles * 64 / 16;
  static constexpr int kGroup0Chunks = kGroup0Tiles;  // a lane's NoPE chunk i lands in tile i
  static constexpr int kRawStages = 2;
  static constexpr int kProducerWarps = kProducerThreads / 32;
  // A raw slot per token: region A's bytes, padded so that consecutive
  // slots start 64 bytes apart modulo 128 (a quarter-warp reads two tokens'
  // 64-byte runs of 16-byte chunks: all 32 banks, no conflict).
  static constexpr int kRawSlotBytes = int(Format::kTokenBytes + (192 - Format::kTokenBytes % 128) % 128);
  static_assert(kRawSlotBytes % 128 == 64 && kRawSlotBytes % 16 == 0, "raw slot bank spread");

  using SmemLayoutAtom = GMMA::Layout_K_SW128_Atom<Element>;
  using SmemLayoutQ = decltype(tile_to_shape(SmemLayoutAtom{}, Shape<Int<kN>, Int<kDimQK>>{}));
  using SmemLayoutK =
      decltype(tile_to_shape(SmemLayoutAtom{}, Shape<Int<kBlockN>, Int<kDimQK>, Int<kStages>>{}));
  using SmemLayoutVt = decltype(composition(
      SmemLayoutK{}, make_layout(Shape<Int<kDimV>, Int<kBlockN>, Int<kStages>>{},
                                 Stride<Int<kBlockN>, _1, Int<kBlockN * kDimQK>>{})));
  using SmemLayoutPt = decltype(tile_to_shape(SmemLayoutAtom{}, Shape<Int<kN>, Int<kBlockN>>{}));

  using TiledMmaQK = decltype(make_tiled_mma(
      GMMA::ss_op_selector<Element, Element, float, Shape<Int<kBlockN>, Int<kN>, Int<kDimQK>>>()));
  using TiledMmaPV = decltype(make_tiled_mma(
      GMMA::ss_op_selector<Element, Element, float, Shape<_64, Int<kN>, Int<kBlockN>>, GMMA::Major::MN,
                           GMMA::Major::K>()));

  struct SharedStorage {
    alignas(1024) Element q[cosize_v<SmemLayoutQ>];
    alignas(1024) Element k[cosize_v<SmemLayoutK>];
    alignas(1024) Element pt[cosize_v<SmemLayoutPt>];
    alignas(128) uint8_t raw[kRawStages][kBlockN * kRawSlotBytes];
    float head_max[2][4][kN];  // [block parity][warp][head]: per-warp maxima over its 16 tokens (logits not yet scaled)
    float head_sum[4][kN];     // per-warp sums at the end of a piece
    uint8_t valid[kStages][kBlockN];
    alignas(8) uint64_t q_full;
    alignas(8) uint64_t k_full[kGroups];   // a tile group of the stage is written
    alignas(8) uint64_t k_empty[kGroups];  // a tile group of the stage is read for the last time
    alignas(8) uint64_t raw_full[kRawStages][kProducerWarps];  // a warp's 8 tokens' copies landed
  };

  static constexpr int kSmemBytes = int(sizeof(SharedStorage));
  static_assert(kSmemBytes <= 232448, "small-head sparse decode shared memory exceeds 227 KiB");
};

}  // namespace flashmla::kernels::sparse_decode
