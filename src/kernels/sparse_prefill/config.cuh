// Compile-time shape of the sparse prefill kernel: tiles, shared-memory map,
// the two wgmma tilings. See README.md beside this file for the schedule.
#pragma once

#include <cstdint>

#include <cute/tensor.hpp>
#include <cute/atom/mma_atom.hpp>
#include <cute/arch/mma_sm90.hpp>
#include <cute/atom/mma_traits_sm90_gmma.hpp>

namespace flashmla::kernels::sparse_prefill {

using namespace cute;

template <int kDimQK_>
struct Config {
  using Element = cutlass::bfloat16_t;

  static constexpr int kThreads = 384;  // a producer and two consumer warpgroups
  static constexpr int kProducerThreads = 128;
  static constexpr int kConsumerThreads = 256;
  // setmaxnreg: the producer keeps a few row pointers; the consumers hold a
  // 64 x 256 fp32 half of O (128 registers), the score warpgroup also the
  // 64 x 64 fp32 S. 128 * (40 + 240 + 224) = 64512 of the SM's 65536.
  static constexpr int kProducerRegisters = 40;
  static constexpr int kScoreRegisters = 240;
  static constexpr int kValueRegisters = 224;
  static constexpr int kBlockM = 64;          // query heads per CTA (one wgmma M)
  static constexpr int kBlockN = 64;          // selected keys per block
  static constexpr int kDimQK = kDimQK_;
  static constexpr int kDimV = 512;
  static constexpr int kHalfV = kDimV / 2;  // V dims one warpgroup accumulates
  static constexpr int kTileCols = 64;      // 128 bytes: one swizzle row
  static constexpr int kNumKTiles = kDimQK / kTileCols;       // 9 or 8
  static constexpr int kTileBytes = kBlockN * kTileCols * 2;  // 8 KiB
  static constexpr int kStageBytes = kNumKTiles * kTileBytes;
  static constexpr int kStages = 2;  // KV blocks in shared memory
  // With d_qk 576 the RoPE tile (columns 512..575) of a stage is dead once
  // the score warpgroup's Q K^T of the stage is done: P of that block lives there
  // (a 64 x 64 bf16 tile, exactly a K tile). With d_qk 512 every column is V,
  // so P gets its own buffer per stage.
  static constexpr bool kPInRopeTile = kNumKTiles > kDimV / kTileCols;
  static constexpr int kPElements = kPInRopeTile ? 8 : kStages * kBlockN * kBlockN;

  using SmemLayoutAtom = GMMA::Layout_K_SW128_Atom<Element>;
  using SmemLayoutQ = decltype(tile_to_shape(SmemLayoutAtom{}, Shape<Int<kBlockM>, Int<kDimQK>>{}));
  using SmemLayoutK =
      decltype(tile_to_shape(SmemLayoutAtom{}, Shape<Int<kBlockN>, Int<kDimQK>, Int<kStages>>{}));
  // V is the first 512 columns of K, read transposed (dims x keys, MN-major)
  // as the B operand of P V.
  using SmemLayoutVt = decltype(composition(
      SmemLayoutK{}, make_layout(Shape<Int<kDimV>, Int<kBlockN>, Int<kStages>>{},
                                 Stride<Int<kBlockN>, _1, Int<kBlockN * kDimQK>>{})));
  using SmemLayoutP = decltype(tile_to_shape(SmemLayoutAtom{}, Shape<Int<kBlockM>, Int<kBlockN>>{}));

  // S = Q K^T: 64 x 64 by the score warpgroup, K-major both.
  using TiledMmaQK = decltype(make_tiled_mma(
      GMMA::ss_op_selector<Element, Element, float, Shape<Int<kBlockM>, Int<kBlockN>, Int<kDimQK>>>()));
  // O_half += P V_half: 64 x 256 per warpgroup, P K-major, V MN-major.
  using TiledMmaPV = decltype(make_tiled_mma(
      GMMA::ss_op_selector<Element, Element, float, Shape<Int<kBlockM>, Int<kHalfV>, Int<kBlockN>>,
                           GMMA::Major::K, GMMA::Major::MN>()));

  struct SharedStorage {
    // q, then (epilogue) the bf16 O tile staged for coalesced stores.
    alignas(1024) Element q[cosize_v<SmemLayoutQ>];
    alignas(1024) Element k[cosize_v<SmemLayoutK>];
    alignas(1024) Element p[kPElements];
    float p_rescale[kStages][kBlockM];  // per stage and row: the factor O is rescaled by before its P V
    float row_inv[kBlockM];             // per row: 1 / the output row's denominator
    // Whether key r of a stage is a valid selection (written by the producer).
    uint8_t key_valid[kStages][kBlockN];
    alignas(8) uint64_t q_full;
    alignas(8) uint64_t k_full[kStages];
    alignas(8) uint64_t k_empty[kStages];
    alignas(8) uint64_t p_full[kStages];  // P and the factors of the stage's block are written
  };

  static constexpr int kSmemBytes = int(sizeof(SharedStorage));
  static_assert(kSmemBytes <= 232448, "sparse prefill shared memory exceeds the 227 KiB of an H100 CTA");
  static_assert(kDimQK % kTileCols == 0 && kDimQK >= kDimV, "d_qk is whole 64-column tiles and holds V");
  static_assert(cosize_v<SmemLayoutQ> >= kBlockM * kDimV, "the O staging tile fits in q's buffer");
};

}  // namespace flashmla::kernels::sparse_prefill
