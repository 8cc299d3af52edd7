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
  using Format = TokenFormat<kFormat_>;
  using Element = cutlass::bfloat16_t;
  static constexpr int kN = kN_;  // heads padded to the wgmma N granule (8, 16 or 32)
  static_assert(kN % 8 == 0 && kN <= 32, "N is a multiple of 8, at most 32 heads");

  // Two producer warpgroups (one token quarter per thread, so each thread
  // keeps the next block's loads in flight while it stores this one) and
  // one consumer warpgroup, whose matrix work is 4x-16x smaller than the
  // 64-row kernel's. 256 * 144 + 128 * 216 = 64512 = 384 * 168 (ptxas: 0
  // spills except V32 with N = 32, 4 bytes; the O^T epilogue goes one head
  // row at a time).
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
  static constexpr int kStages = 2;

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
    float head_max[2][4][kN];  // [block parity][warp][head]: per-warp maxima over its 16 tokens (logits not yet scaled)
    float head_sum[4][kN];     // per-warp sums at the end of a piece
    uint8_t valid[kStages][kBlockN];
    alignas(8) uint64_t q_full;
    alignas(8) uint64_t k_full[kStages];
    alignas(8) uint64_t k_empty[kStages];
  };

  static constexpr int kSmemBytes = int(sizeof(SharedStorage));
  static_assert(kSmemBytes <= 232448, "small-head sparse decode shared memory exceeds 227 KiB");
};

}  // namespace flashmla::kernels::sparse_decode
