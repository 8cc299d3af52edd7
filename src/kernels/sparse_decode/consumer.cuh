// The two consumer warpgroups of the 64-head sparse decode kernel. The
// score warpgroup computes S = Q K^T over all 64 tokens of a block (so each
// quad holds complete rows: no exchange of row maxima or sums), the online
// softmax, and writes P and each row's rescale factor to shared memory; both
// warpgroups then accumulate their half of the V dims, O_half += P V_half.
// FlashMLA's sparse decode splits its consumers the same way. Splitting the
// tokens instead (each warpgroup m64n32 over half of them, as dense decode
// does) reads q from shared memory twice per block (m64n32 SS wgmma is bound
// by shared-memory bandwidth) and synchronizes the two on every block's
// row maxima. See README.md.
#pragma once

#include <cstdint>

#include <cute/tensor.hpp>

#include "common/decode_schedule.h"
#include "device/cute_gemm.cuh"
#include "device/cluster.cuh"
#include "device/fence.cuh"
#include "device/mbarrier.cuh"
#include "device/named_barrier.cuh"
#include "device/wgmma_layout.h"
#include "kernels/decode_output.cuh"
#include "kernels/sparse_decode/config.cuh"
#include "kernels/sparse_decode/params.h"
#include "kernels/sparse_decode/producer.cuh"
#include "kernels/sparse_decode/schedule.cuh"
#include "kernels/pv_half.cuh"
#include "kernels/score_softmax.cuh"

namespace flashmla::kernels::sparse_decode {

using namespace cute;

// Named barrier ids (0 is __syncthreads), each over both consumer warpgroups.
enum : uint32_t {
  kBarPFree = 1,   // the value warpgroup is done with P and the rescale factors of a block
  kBarPReady = 2,  // P and the rescale factors of the block are in shared memory
  kBarRowInv = 3,  // the output rows' 1 / denominator of a piece are published
  kBarScoreWarps = 5,  // the score warpgroup alone (its four warps' Q K^T are done)
};

// The query rows thread t of a consumer warpgroup holds in every
// accumulator: two rows of the 64-row tile, their query tokens and heads
// (head -1: not a query row). A tile is 64 heads of token0 (sparse), or with
// kPacked every head of up to tokens_per_tile tokens (row = token_in_tile *
// heads_per_tile + head; params.h).
struct ConsumerRows {
  int in_tile[2];
  int token[2];
  int head[2];
};

template <bool kPacked>
__device__ __forceinline__ ConsumerRows consumer_rows(const Params& p, int tid_wg, int32_t token0, int32_t head0) {
  ConsumerRows rows;
  CUTE_UNROLL
  for (int h = 0; h < 2; ++h) {
    const int r = device::wgmma_accumulator_coord(tid_wg, 2 * h).row;
    rows.in_tile[h] = r;
    if constexpr (kPacked) {
      const int t = r / p.heads_per_tile;
      const int head = head0 + r % p.heads_per_tile;
      const bool query = t < p.tokens_per_tile && token0 + t < p.s_q && head < p.h_q;
      rows.token[h] = token0 + t;
      rows.head[h] = query ? head : -1;
    } else {
      rows.token[h] = token0;
      rows.head[h] = head0 + r < p.h_q ? head0 + r : -1;
    }
  }
  return rows;
}

// Both warpgroups are done with a stage: one arrival each (and, with the
// crossover, one on the peer's barrier: its producer refills this CTA's
// stage too).
template <bool kCrossover, typename SharedStorage>
__device__ __forceinline__ void release_stage(SharedStorage& smem, int stage, int tid_wg) {
  if (tid_wg == 0) device::mbarrier_arrive_here_and_peer<kCrossover>(&smem.k_empty[stage]);
}

// A consumer warpgroup's 256 columns of a piece's output, starting at
// column col0 of its two rows: bf16 `out` (and lse) for an unsplit request,
// fp32 partials for the combine otherwise (a split piece without a slot
// stores nothing). `inv` is 1 / denominator per row.
template <typename Cfg, typename Accumulator>
__device__ __forceinline__ void store_output_rows(const Params& p, const Piece& piece, const ConsumerRows& rows,
                                                  const float (&inv)[2], const float (&lse)[2], bool with_lse,
                                                  int col0, const Accumulator& tOrO) {
  CUTE_UNROLL
  for (int h = 0; h < 2; ++h) {
    store_decode_row<typename Cfg::Element, Cfg::kHalfV, Cfg::kDimV, /*kQuadExchange=*/true>(
        p, piece, rows.head[h] >= 0, rows.token[h], rows.head[h], h, inv[h], lse[h], with_lse, col0, tOrO);
  }
}

// The score warpgroup (threads 128..255): scores, softmax, P, and O's V dims [0, 256).
template <typename Cfg, bool kCrossover>
__device__ __forceinline__ void consume_scores(const CUtensorMap* q_map, const Params& p,
                                               typename Cfg::SharedStorage& smem, const WorkerRange& range,
                                               const int32_t* split_begin, int32_t token0, int32_t head0,
                                               int32_t q_box_rows) {
  using Element = typename Cfg::Element;
  constexpr int kBlockM = Cfg::kBlockM;
  constexpr int kBlockN = Cfg::kBlockN;
  constexpr bool kPacked = Cfg::kPagedPositions;
  const int tid_wg = threadIdx.x % 128;
  const int lane = threadIdx.x % 32;
  const ConsumerRows rows = consumer_rows<kPacked>(p, tid_wg, token0, head0);

  Tensor sQ = make_tensor(make_smem_ptr(smem.q), typename Cfg::SmemLayoutQ{});
  Tensor sK = make_tensor(make_smem_ptr(smem.k), typename Cfg::SmemLayoutK{});
  typename Cfg::TiledMmaQK mma_qk;
  auto thr_qk = mma_qk.get_thread_slice(tid_wg);
  Tensor tSrQ = thr_qk.partition_fragment_A(sQ);
  Tensor tSrS = partition_fragment_C(mma_qk, Shape<Int<kBlockM>, Int<kBlockN>>{});  // 32 fp32
  static_assert(decltype(size(tSrS))::value == 32, "fragment size");
  auto tOrO = make_output_accumulator<Cfg>();

  // This warpgroup loads q itself: the next piece's q as soon as its last
  // Q K^T of a piece is done, so the producer never waits for q's release
  // and the load overlaps the piece's softmax, P V and epilogue. (With the
  // producer loading q after a release, every piece change stalled the
  // gather until the consumers caught up, then the consumers until the
  // gather refilled: about 12 us per piece on S01-like shapes.)
  PieceCursor q_pieces(range);  // the pieces with blocks, in order: whose q comes next
  auto load_next_q = [&]() {
    Piece next;
    if (q_pieces.next_with_blocks(p, split_begin, next) && tid_wg == 0) {
      load_q_tiles<Cfg>(q_map, smem, Cfg::kTileBytes, head0, token0, next.req, q_box_rows);
    }
  };
  load_next_q();

  int32_t item = 0;
  int32_t q_loads = 0;
  int32_t pieces_done = 0;
  PieceCursor pieces(range);
  Piece piece;
  while (pieces.next(p, split_begin, piece)) {
    float row_max[2] = {-INFINITY, -INFINITY};  // base 2
    float row_sum[2] = {0.f, 0.f};              // this thread's columns only
    clear(tOrO);
    // A packed tile's row of query token t sees the request's first
    // len - (s_q - 1 - t) positions when causal (bottom-right), else len; the
    // producer has masked past the tile's last token's, so only blocks that
    // reach an earlier token's limit are masked per row. (The limits are
    // formed per block from len: held across the loop they cost a spill.)
    const int32_t len = kPacked ? request_blocks(p, piece.req).main_len : 0;

    if (piece.to > piece.from) {
      device::mbarrier_wait_parity(&smem.q_full, q_loads & 1);
      ++q_loads;
    }
    for (int32_t block = piece.from; block < piece.to; ++block, ++item) {
      const int stage = item % Cfg::kStages;
      device::mbarrier_wait_parity(&smem.k_full[stage], (item / Cfg::kStages) & 1);
      Tensor tSrK = thr_qk.partition_fragment_B(sK(_, _, stage));
      device::gemm_async(mma_qk, tSrQ, tSrK, tSrS, /*zero_init=*/true);
      warpgroup_wait<0>();
      if (block + 1 == piece.to) {
        // The piece's q is read for the last time (every warp's part of the
        // wgmma is done): load the next piece's over it.
        device::named_barrier_sync(kBarScoreWarps, 128);
        load_next_q();
      }

      // Mask by selection: an unselected token's logit is -inf.
      float block_max[2] = {-INFINITY, -INFINITY};
      int32_t limit[2] = {len, len};
      if (kPacked && p.causal) {
        CUTE_UNROLL
        for (int h = 0; h < 2; ++h) limit[h] = len - (p.s_q - 1 - rows.token[h]);
      }
      if (kPacked && (block + 1) * kBlockN > min(limit[0], limit[1])) {
        // A block that reaches a row's limit: also by position.
        CUTE_UNROLL
        for (int i = 0; i < 32; ++i) {
          const int h = (i / 2) % 2;
          const int key = device::wgmma_accumulator_coord(tid_wg, i).col;
          // Bitwise, not short-circuit: && compiled to a branch per logit.
          const bool selected = smem.valid[stage][key] & (block * kBlockN + key < limit[h]);
          const float sv = selected ? tSrS(i) : -INFINITY;
          tSrS(i) = sv;
          block_max[h] = fmaxf(block_max[h], sv);
        }
      } else {
        CUTE_UNROLL
        for (int i = 0; i < 32; ++i) {
          const int h = (i / 2) % 2;
          const int key = device::wgmma_accumulator_coord(tid_wg, i).col;
          const float sv = smem.valid[stage][key] ? tSrS(i) : -INFINITY;
          tSrS(i) = sv;
          block_max[h] = fmaxf(block_max[h], sv);
        }
      }
      float rescale[2];
      online_softmax_step(tSrS, block_max, row_max, row_sum, rescale, p.scale_log2);
      rescale_output(tOrO, rescale);
      // This warpgroup's P V takes P from its registers, so it goes to the
      // tensor pipe before P is stored for the value warpgroup.
      const auto tOrP = make_p_operand<Cfg>(tSrS, tid_wg);
      issue_pv_from_registers<Cfg>(tOrP, smem.k, stage, /*half=*/0, tid_wg, tOrO);
      // The value warpgroup is done with the previous block's P and factors.
      if (item > 0) device::named_barrier_sync(kBarPFree, Cfg::kConsumerThreads);
      store_p_tile<Element>(reinterpret_cast<char*>(smem.p), tSrS, tid_wg);
      if (lane % 4 == 0) {
        smem.p_rescale[rows.in_tile[0]] = rescale[0];
        smem.p_rescale[rows.in_tile[1]] = rescale[1];
      }
      device::fence_proxy_async_shared_cta();  // P is read by wgmma
      device::named_barrier_arrive(kBarPReady, Cfg::kConsumerThreads);
      warpgroup_wait<0>();
      warpgroup_fence_operand(tOrO);
      release_stage<kCrossover>(smem, stage, tid_wg);
    }

    // Epilogue: O / (L + sink term), lse = ln(L) + max (base 2 max, hence the
    // ln 2). The sink never enters lse; a split request gets it in the
    // combine instead. The value warpgroup gets 1 / denominator.
    float inv[2];
    float lse[2];
    CUTE_UNROLL
    for (int h = 0; h < 2; ++h) {
      float total = row_sum[h];
      total += __shfl_xor_sync(0xffffffffu, total, 1);
      total += __shfl_xor_sync(0xffffffffu, total, 2);
      // Only L == 0 is empty (out exactly +0, lse -inf); a NaN L stays NaN.
      const bool empty = total == 0.f;
      float denominator = total;
      if (!piece.split && p.attn_sink != nullptr && rows.head[h] >= 0) {
        // exp(sink - M) in base 2; +inf makes out 0, -inf adds nothing.
        denominator += exp2f(p.attn_sink[rows.head[h]] * 1.4426950408889634f - row_max[h]);
      }
      inv[h] = empty ? 0.f : 1.f / denominator;
      lse[h] = empty ? -INFINITY : (row_max[h] + log2f(total)) * 0.6931471805599453f;
      if (lane % 4 == 0) smem.row_inv[pieces_done & 1][rows.in_tile[h]] = inv[h];
    }
    // Both warpgroups wait here (an arrive could run two pieces ahead when
    // pieces have no blocks, and complete the barrier alone).
    device::named_barrier_sync(kBarRowInv, Cfg::kConsumerThreads);
    ++pieces_done;
    store_output_rows<Cfg>(p, piece, rows, inv, lse, /*with_lse=*/true, 2 * (lane % 4), tOrO);
  }
  // Take the value warpgroup's release of the last block.
  if (item > 0) device::named_barrier_sync(kBarPFree, Cfg::kConsumerThreads);
}

// The value warpgroup (threads 256..383): O's V dims [256, 512), rescaled
// and accumulated once the score warpgroup has published a block's P.
template <typename Cfg, bool kCrossover>
__device__ __forceinline__ void consume_values(const Params& p, typename Cfg::SharedStorage& smem,
                                               const WorkerRange& range, const int32_t* split_begin, int32_t token0,
                                               int32_t head0) {
  const int tid_wg = threadIdx.x % 128;
  const int lane = threadIdx.x % 32;
  const ConsumerRows rows = consumer_rows<Cfg::kPagedPositions>(p, tid_wg, token0, head0);
  auto tOrO = make_output_accumulator<Cfg>();

  int32_t item = 0;
  int32_t pieces_done = 0;
  PieceCursor pieces(range);
  Piece piece;
  while (pieces.next(p, split_begin, piece)) {
    clear(tOrO);
    for (int32_t block = piece.from; block < piece.to; ++block, ++item) {
      const int stage = item % Cfg::kStages;
      device::mbarrier_wait_parity(&smem.k_full[stage], (item / Cfg::kStages) & 1);
      device::named_barrier_sync(kBarPReady, Cfg::kConsumerThreads);
      const float rescale[2] = {smem.p_rescale[rows.in_tile[0]], smem.p_rescale[rows.in_tile[1]]};
      rescale_output(tOrO, rescale);
      accumulate_pv<Cfg>(smem.p, smem.k, stage, /*half=*/1, tid_wg, tOrO);
      device::named_barrier_arrive(kBarPFree, Cfg::kConsumerThreads);
      release_stage<kCrossover>(smem, stage, tid_wg);
    }
    device::named_barrier_sync(kBarRowInv, Cfg::kConsumerThreads);
    const float inv[2] = {smem.row_inv[pieces_done & 1][rows.in_tile[0]],
                          smem.row_inv[pieces_done & 1][rows.in_tile[1]]};
    ++pieces_done;
    const float lse[2] = {0.f, 0.f};  // the score warpgroup stores lse
    store_output_rows<Cfg>(p, piece, rows, inv, lse, /*with_lse=*/false, Cfg::kHalfV + 2 * (lane % 4), tOrO);
  }
}

}  // namespace flashmla::kernels::sparse_decode
