// Compile-time shape of the dense decode kernel: tiles, shared-memory map,
// the two wgmma tilings. See README.md beside this file for the schedule.
#pragma once

#include <cstdint>

#include <cute/tensor.hpp>
#include <cute/atom/mma_atom.hpp>
#include <cute/arch/mma_sm90.hpp>
#include <cute/atom/mma_traits_sm90_gmma.hpp>

namespace flashmla::kernels::dense_decode {

using namespace cute;

template <typename Element_, int kDimQK_ = 576>
struct Config {
  using Element = Element_;  // cutlass::bfloat16_t or cutlass::half_t

  static constexpr int kThreads = 384;          // a producer and two consumer warpgroups
  static constexpr int kConsumerThreads = 256;
  // setmaxnreg: the producer gives its registers to the consumers, which hold
  // a 64 x 256 fp32 half of O (128 registers) each, the score warpgroup also
  // the 64 x 64 fp32 scores; 128 * (40 + 240 + 224) = 64512 of the SM's 65536.
  static constexpr int kProducerRegisters = 40;
  static constexpr int kScoreRegisters = 240;
  static constexpr int kValueRegisters = 224;
  static constexpr int kBlockM = 64;     // query rows per CTA (one wgmma M)
  static constexpr int kBlockN = 64;     // keys per KV block (one page)
  static constexpr int kDimQK = kDimQK_;  // 576 (V3) or 512 (MODEL1: V is all of K)
  static constexpr int kDimV = 512;
  static constexpr int kHalfV = kDimV / 2;    // V dims one warpgroup accumulates
  static constexpr int kTileCols = 64;        // 128 bytes: one TMA box, one swizzle row
  static constexpr int kNumKTiles = kDimQK / kTileCols;  // 9 or 8
  static constexpr int kTileBytes = kBlockN * kTileCols * 2;  // 8 KiB
  static constexpr int kStages = 2;           // KV blocks in shared memory

  // K-major tiles with the 128-byte swizzle: exactly the image of kNumKTiles
  // TMA boxes of 64 rows x 64 columns placed 8 KiB apart.
  using SmemLayoutAtom = GMMA::Layout_K_SW128_Atom<Element>;
  using SmemLayoutQ = decltype(tile_to_shape(SmemLayoutAtom{}, Shape<Int<kBlockM>, Int<kDimQK>>{}));
  using SmemLayoutK =
      decltype(tile_to_shape(SmemLayoutAtom{}, Shape<Int<kBlockN>, Int<kDimQK>, Int<kStages>>{}));
  // V is not stored: it is the first 512 columns of K, read transposed
  // (dims x keys, MN-major) as the B operand of P V.
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
    float row_inv[2][kBlockM];  // [piece parity][row]: 1 / the output row's L
    alignas(8) uint64_t q_full;
    alignas(8) uint64_t k_full[kStages];
    alignas(8) uint64_t k_empty[kStages];
  };

  // The dynamic shared memory of a CTA with no static shared memory starts
  // 1024-byte aligned (as CUTLASS's SM90 kernels also assume), which the
  // 128-byte swizzle of q, k and p needs; there is no room for slack.
  static constexpr int kSmemBytes = int(sizeof(SharedStorage));
  static_assert(kSmemBytes <= 232448, "dense decode shared memory exceeds the 227 KiB of an H100 CTA");
  static_assert(kDimQK % kTileCols == 0 && kDimV % kTileCols == 0, "dims are whole 64-column tiles");
};

}  // namespace flashmla::kernels::dense_decode
