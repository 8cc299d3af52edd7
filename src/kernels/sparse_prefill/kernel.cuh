// Sparse MLA prefill: one CTA per (query token, group of 64 heads). A
// producer warpgroup gathers the token's selected KV rows with cp.async; a
// score warpgroup computes Q K^T over all 64 keys of a block, the online
// softmax and P, and a value warpgroup accumulates the other half of P V,
// while the next block is gathered into the other stage. See README.md.
#pragma once

#include <cstdint>

#include <cuda.h>

#include <cute/tensor.hpp>

#include "device/cp_async.cuh"
#include "device/cute_gemm.cuh"
#include "device/fence.cuh"
#include "device/mbarrier.cuh"
#include "device/named_barrier.cuh"
#include "device/pack.cuh"
#include "device/pdl.cuh"
#include "device/swizzle.h"
#include "device/tma.cuh"
#include "device/warpgroup_registers.cuh"
#include "device/wgmma_layout.h"
#include "kernels/sparse_prefill/config.cuh"
#include "kernels/sparse_prefill/params.h"
#include "kernels/pv_half.cuh"
#include "kernels/score_softmax.cuh"

namespace flashmla::kernels::sparse_prefill {

using namespace cute;

// Named barrier ids (0 is __syncthreads).
enum : uint32_t {
  kBarRowInv = 1,   // both consumer warpgroups: the output rows' 1 / denominator are published
  kBarQZero = 4,    // the score warpgroup: the q rows past h_q are zeroed
  kBarOStaged = 5,  // one per consumer warpgroup (5, 6): its half of O is staged in shared memory
};

// Selected positions of token `token` that may hold a key: topk_length
// clamped to [0, topk] (device data, never trusted), or topk.
__device__ __forceinline__ int32_t token_length(const Params& p, int32_t token) {
  if (p.topk_length == nullptr) return p.topk;
  const int32_t len = p.topk_length[token];
  return len <= 0 ? 0 : (len > p.topk ? p.topk : len);
}

// The producer warpgroup: per block of 64 selected positions, each thread
// copies 16 bytes of 4 rows in every 64-column tile (8 threads cover a
// 128-byte row segment), straight into the swizzled K-major image wgmma
// reads. An invalid position (index outside [0, s_kv), or past the token's
// length) copies 0 source bytes from the kv base: the row is zero-filled and
// no address is formed from the index.
template <typename Cfg>
__device__ __forceinline__ void produce(const Params& p, typename Cfg::SharedStorage& smem, int32_t token,
                                        int32_t len, int32_t num_blocks) {
  constexpr int kRowsPerPass = Cfg::kProducerThreads / 8;  // 16
  constexpr int kPasses = Cfg::kBlockN / kRowsPerPass;     // 4
  const int chunk = threadIdx.x % 8;
  const int row0 = threadIdx.x / 8;
  const char* kv = static_cast<const char*>(p.kv);
  const int64_t kv_row_bytes = p.stride_kv_s * 2;
  const int32_t* token_indices = p.indices + int64_t(token) * p.stride_indices_s;

  int32_t index[kPasses];
  CUTE_UNROLL
  for (int pass = 0; pass < kPasses; ++pass) {
    const int32_t k = pass * kRowsPerPass + row0;
    index[pass] = k < len ? token_indices[k] : -1;
  }
  for (int32_t n = 0; n < num_blocks; ++n) {
    const int stage = n % Cfg::kStages;
    if (n >= Cfg::kStages) device::mbarrier_wait_parity(&smem.k_empty[stage], ((n / Cfg::kStages) - 1) & 1);
    char* dst = reinterpret_cast<char*>(smem.k) + stage * Cfg::kStageBytes;
    CUTE_UNROLL
    for (int pass = 0; pass < kPasses; ++pass) {
      const int r = pass * kRowsPerPass + row0;
      const bool valid = index[pass] >= 0 && index[pass] < p.s_kv;
      const char* src = valid ? kv + int64_t(index[pass]) * kv_row_bytes + chunk * 16 : kv;
      const int step = valid ? 128 : 0;
      const uint32_t bytes = valid ? 16u : 0u;
      if (chunk == 0) smem.key_valid[stage][r] = valid ? 1 : 0;
      const uint32_t dst_row = device::swizzle_128b(uint32_t(r * 128 + chunk * 16));
      CUTE_UNROLL
      for (int t = 0; t < Cfg::kNumKTiles; ++t) {
        device::cp_async_16(dst + t * Cfg::kTileBytes + dst_row, src + t * step, bytes);
      }
    }
    // One arrival when this thread's copies land, one (release) for its
    // validity flags.
    device::cp_async_mbarrier_arrive_noinc(&smem.k_full[stage]);
    device::mbarrier_arrive(&smem.k_full[stage]);
    // The next block's indices load while this block's rows are in flight.
    CUTE_UNROLL
    for (int pass = 0; pass < kPasses; ++pass) {
      const int32_t k = (n + 1) * Cfg::kBlockN + pass * kRowsPerPass + row0;
      index[pass] = k < len ? token_indices[k] : -1;
    }
  }
}

// P of the block in stage `stage` (see Config::kPInRopeTile).
template <typename Cfg>
__device__ __forceinline__ char* p_tile(typename Cfg::SharedStorage& smem, int stage) {
  if constexpr (Cfg::kPInRopeTile) {
    return reinterpret_cast<char*>(smem.k) + stage * Cfg::kStageBytes + (Cfg::kDimV / 64) * Cfg::kTileBytes;
  } else {
    return reinterpret_cast<char*>(smem.p) + stage * Cfg::kBlockN * Cfg::kBlockN * 2;
  }
}

// A consumer warpgroup's half of O (bf16, times inv per row) staged in q's
// buffer as 64-column swizzled tiles, then stored 16 bytes per thread, a
// warp covering 512 contiguous bytes of a head's row. The caller has made
// sure no Q K^T reads q any more.
template <typename Cfg, typename Accumulator>
__device__ __forceinline__ void store_output_half(const Params& p, typename Cfg::SharedStorage& smem, int32_t token,
                                                 int32_t head0, int half, const float (&inv)[2],
                                                 const Accumulator& tOrO) {
  using Element = typename Cfg::Element;
  const int tid_wg = threadIdx.x % 128;
  char* o_stage = reinterpret_cast<char*>(smem.q);
  CUTE_UNROLL
  for (int i = 0; i < 128; i += 2) {
    const device::FragmentCoord c = device::wgmma_accumulator_coord(tid_wg, i);
    const int h = (i / 2) % 2;
    const int col = half * Cfg::kHalfV + c.col;
    const uint32_t offset =
        (col / 64) * Cfg::kTileBytes + device::swizzle_128b(uint32_t(c.row * 128 + (col % 64) * 2));
    *reinterpret_cast<uint32_t*>(o_stage + offset) = device::pack_pair<Element>(tOrO(i) * inv[h], tOrO(i + 1) * inv[h]);
  }
  device::named_barrier_sync(kBarOStaged + half, 128);
  const int chunk = tid_wg % 32;  // 16-byte chunk of this warpgroup's 512-byte half row
  const int col_chunk = half * 32 + chunk;
  const int heads_here = p.h_q - head0 < Cfg::kBlockM ? p.h_q - head0 : Cfg::kBlockM;
  Element* out_token = static_cast<Element*>(p.out) + int64_t(token) * p.stride_out_s + col_chunk * 8;
  for (int row = tid_wg / 32; row < heads_here; row += 4) {
    const uint32_t offset =
        (col_chunk / 8) * Cfg::kTileBytes + device::swizzle_128b(uint32_t(row * 128 + (col_chunk % 8) * 16));
    const uint4 v = *reinterpret_cast<const uint4*>(o_stage + offset);
    *reinterpret_cast<uint4*>(out_token + int64_t(head0 + row) * p.stride_out_h) = v;
  }
}

// The score warpgroup (threads 128..255): S = Q K^T over all 64 keys of a
// block (whole rows per quad: no exchange of maxima or sums with the other
// warpgroup), the online softmax, P into the stage's P tile and the rescale
// factors per stage, published on p_full[stage]; then O's V dims [0, 256).
// P and the factors live per stage, so the stage's k_empty protects them and
// this warpgroup may run a block ahead of the value warpgroup.
template <typename Cfg>
__device__ __forceinline__ void consume_scores(const Params& p, typename Cfg::SharedStorage& smem, int32_t token,
                                               int32_t head0, int32_t num_blocks) {
  using Element = typename Cfg::Element;
  constexpr int kBlockM = Cfg::kBlockM;
  constexpr int kBlockN = Cfg::kBlockN;
  constexpr int kNumKTiles = Cfg::kNumKTiles;
  constexpr int kTileBytes = Cfg::kTileBytes;
  const int tid_wg = threadIdx.x % 128;
  const int lane = threadIdx.x % 32;

  Tensor sQ = make_tensor(make_smem_ptr(smem.q), typename Cfg::SmemLayoutQ{});
  Tensor sK = make_tensor(make_smem_ptr(smem.k), typename Cfg::SmemLayoutK{});
  typename Cfg::TiledMmaQK mma_qk;
  auto thr_qk = mma_qk.get_thread_slice(tid_wg);
  Tensor tSrQ = thr_qk.partition_fragment_A(sQ);
  Tensor tSrS = partition_fragment_C(mma_qk, Shape<Int<kBlockM>, Int<kBlockN>>{});  // 32 fp32
  static_assert(decltype(size(tSrS))::value == 32, "fragment size");
  auto tOrO = make_output_accumulator<Cfg>();

  // The two tile rows (heads head0 + row) this thread holds in every accumulator.
  int row_in_tile[2];
  CUTE_UNROLL
  for (int h = 0; h < 2; ++h) row_in_tile[h] = device::wgmma_accumulator_coord(tid_wg, 2 * h).row;

  float row_max[2] = {-INFINITY, -INFINITY};  // base 2
  float row_sum[2] = {0.f, 0.f};              // this thread's columns only
  clear(tOrO);

  if (num_blocks > 0) {
    // Fewer than 64 heads: q brings h_q rows, the rest of the tile must be
    // finite (zeros) so the padding rows stay harmless; they are never stored.
    if (p.q_box_rows < kBlockM) {
      const int pad_rows = kBlockM - p.q_box_rows;
      for (int idx = tid_wg; idx < pad_rows * 8 * kNumKTiles; idx += 128) {
        const int tile = idx / (pad_rows * 8);
        const int row = p.q_box_rows + (idx / 8) % pad_rows;
        *reinterpret_cast<uint4*>(reinterpret_cast<char*>(smem.q) + tile * kTileBytes + row * 128 + (idx % 8) * 16) =
            make_uint4(0, 0, 0, 0);
      }
      device::fence_proxy_async_shared_cta();
      device::named_barrier_sync(kBarQZero, 128);
    }
    device::mbarrier_wait_parity(&smem.q_full, 0);
  }

  for (int32_t n = 0; n < num_blocks; ++n) {
    const int stage = n % Cfg::kStages;
    device::mbarrier_wait_parity(&smem.k_full[stage], (n / Cfg::kStages) & 1);
    device::fence_proxy_async_shared_cta();  // cp.async wrote the stage through the generic proxy
    Tensor tSrK = thr_qk.partition_fragment_B(sK(_, _, stage));
    device::gemm_async(mma_qk, tSrQ, tSrK, tSrS, /*zero_init=*/true);
    warpgroup_wait<0>();
    warpgroup_fence_operand(tSrS);

    // Mask by selection (a masked logit is -inf, whatever the dot product).
    float block_max[2] = {-INFINITY, -INFINITY};
    CUTE_UNROLL
    for (int i = 0; i < 32; ++i) {
      const int h = (i / 2) % 2;
      const int key = device::wgmma_accumulator_coord(tid_wg, i).col;
      const float s = smem.key_valid[stage][key] ? tSrS(i) : -INFINITY;
      tSrS(i) = s;
      block_max[h] = fmaxf(block_max[h], s);
    }
    float rescale[2];
    online_softmax_step(tSrS, block_max, row_max, row_sum, rescale, p.scale_log2);
    // With d_qk 576 P's tile is the stage's RoPE tile, dead once this Q K^T is done.
    store_p_tile<Element>(p_tile<Cfg>(smem, stage), tSrS, tid_wg);
    if (lane % 4 == 0) {
      smem.p_rescale[stage][row_in_tile[0]] = rescale[0];
      smem.p_rescale[stage][row_in_tile[1]] = rescale[1];
    }
    device::fence_proxy_async_shared_cta();  // P is read by wgmma
    device::mbarrier_arrive(&smem.p_full[stage]);

    if (n > 0) rescale_output(tOrO, rescale);  // block 0: O is 0
    accumulate_pv<Cfg>(reinterpret_cast<typename Cfg::Element*>(p_tile<Cfg>(smem, stage)), smem.k, stage,
                       /*half=*/0, tid_wg, tOrO);
    if (tid_wg == 0) device::mbarrier_arrive(&smem.k_empty[stage]);
  }

  // Epilogue (spec section 2): out = O / (L + exp(sink - M)); lse = M + ln L
  // without the sink; an empty row (L = 0: no valid key) gives out 0,
  // max_logits -inf and lse -inf. Max in base 2, hence the ln 2.
  constexpr float kLn2 = 0.6931471805599453f;
  constexpr float kLog2e = 1.4426950408889634f;
  float inv[2];
  CUTE_UNROLL
  for (int h = 0; h < 2; ++h) {
    float total = row_sum[h];
    total += __shfl_xor_sync(0xffffffffu, total, 1);
    total += __shfl_xor_sync(0xffffffffu, total, 2);
    const int head = head0 + row_in_tile[h];
    const bool is_head = head < p.h_q;
    // Only L == 0 is empty: a NaN L (a NaN key among the selected) stays NaN.
    const bool empty = total == 0.f;
    float denominator = total;
    if (p.attn_sink != nullptr && is_head && !empty) {
      denominator += exp2f(p.attn_sink[head] * kLog2e - row_max[h]);
    }
    inv[h] = empty ? 0.f : 1.f / denominator;
    if (lane % 4 == 0) smem.row_inv[row_in_tile[h]] = inv[h];
    if (is_head && lane % 4 == 0) {
      p.max_logits[int64_t(token) * p.stride_max_logits_s + head] = row_max[h] * kLn2;
      p.lse[int64_t(token) * p.stride_lse_s + head] = empty ? -INFINITY : (row_max[h] + log2f(total)) * kLn2;
    }
  }
  // Every Q K^T is done (this warpgroup's were the only ones): O may be staged over q.
  device::named_barrier_sync(kBarRowInv, Cfg::kConsumerThreads);
  store_output_half<Cfg>(p, smem, token, head0, /*half=*/0, inv, tOrO);
}

// The value warpgroup (threads 256..383): O's V dims [256, 512), rescaled
// and accumulated once the score warpgroup has published a block's P.
template <typename Cfg>
__device__ __forceinline__ void consume_values(const Params& p, typename Cfg::SharedStorage& smem, int32_t token,
                                               int32_t head0, int32_t num_blocks) {
  const int tid_wg = threadIdx.x % 128;
  int row_in_tile[2];
  CUTE_UNROLL
  for (int h = 0; h < 2; ++h) row_in_tile[h] = device::wgmma_accumulator_coord(tid_wg, 2 * h).row;
  auto tOrO = make_output_accumulator<Cfg>();
  clear(tOrO);

  for (int32_t n = 0; n < num_blocks; ++n) {
    const int stage = n % Cfg::kStages;
    device::mbarrier_wait_parity(&smem.k_full[stage], (n / Cfg::kStages) & 1);
    device::mbarrier_wait_parity(&smem.p_full[stage], (n / Cfg::kStages) & 1);
    device::fence_proxy_async_shared_cta();  // cp.async wrote V through the generic proxy
    const float rescale[2] = {smem.p_rescale[stage][row_in_tile[0]], smem.p_rescale[stage][row_in_tile[1]]};
    if (n > 0) rescale_output(tOrO, rescale);
    accumulate_pv<Cfg>(reinterpret_cast<typename Cfg::Element*>(p_tile<Cfg>(smem, stage)), smem.k, stage,
                       /*half=*/1, tid_wg, tOrO);
    if (tid_wg == 0) device::mbarrier_arrive(&smem.k_empty[stage]);
  }
  device::named_barrier_sync(kBarRowInv, Cfg::kConsumerThreads);
  const float inv[2] = {smem.row_inv[row_in_tile[0]], smem.row_inv[row_in_tile[1]]};
  store_output_half<Cfg>(p, smem, token, head0, /*half=*/1, inv, tOrO);
}

template <typename Cfg>
__global__ void __launch_bounds__(Cfg::kThreads, 1)
    sparse_prefill_kernel(const __grid_constant__ CUtensorMap q_map, const Params p) {
  constexpr int kBlockM = Cfg::kBlockM;
  constexpr int kBlockN = Cfg::kBlockN;
  constexpr int kNumKTiles = Cfg::kNumKTiles;
  constexpr int kTileBytes = Cfg::kTileBytes;
  using SharedStorage = typename Cfg::SharedStorage;

  extern __shared__ __align__(1024) char smem_raw[];
  SharedStorage& smem = *reinterpret_cast<SharedStorage*>(smem_raw);

  const int warp_group = threadIdx.x / 128;  // 0: producer, 1: scores, 2: values
  // A 1-D grid: s_q * head_groups CTAs, beyond the 65535 of grid y/z.
  const int32_t token = int32_t(blockIdx.x / unsigned(p.head_groups));
  const int32_t head0 = int32_t(blockIdx.x % unsigned(p.head_groups)) * kBlockM;

  if (threadIdx.x == 0) {
    device::prefetch_tensormap(&q_map);
    device::mbarrier_init(&smem.q_full, 1);
    for (int s = 0; s < Cfg::kStages; ++s) {
      // Per producer thread: one cp.async completion arrival, one for its flags.
      device::mbarrier_init(&smem.k_full[s], 2 * Cfg::kProducerThreads);
      device::mbarrier_init(&smem.k_empty[s], 2);  // one arrival per consumer warpgroup
      device::mbarrier_init(&smem.p_full[s], 128);  // every score thread, after its P stores
    }
    device::fence_barrier_init();
  }
  // q, kv, indices and lengths may come from the kernel before.
  device::grid_dependency_wait();
  __syncthreads();

  const int32_t len = token_length(p, token);
  const int32_t num_blocks = (len + kBlockN - 1) / kBlockN;

  if (warp_group == 0) {
    device::set_warpgroup_registers<device::launch_registers(Cfg::kThreads), Cfg::kProducerRegisters>();
    if (threadIdx.x == 0 && num_blocks > 0) {
      device::mbarrier_arrive_expect_tx(&smem.q_full, kNumKTiles * 128 * p.q_box_rows);
      for (int t = 0; t < kNumKTiles; ++t) {
        device::tma_load_3d(reinterpret_cast<char*>(smem.q) + t * kTileBytes, &smem.q_full, &q_map, t * 64, head0,
                            token);
      }
    }
    produce<Cfg>(p, smem, token, len, num_blocks);
    device::grid_dependency_launch_dependents();
    return;
  }
  if (warp_group == 1) {
    device::set_warpgroup_registers<device::launch_registers(Cfg::kThreads), Cfg::kScoreRegisters>();
    consume_scores<Cfg>(p, smem, token, head0, num_blocks);
  } else {
    device::set_warpgroup_registers<device::launch_registers(Cfg::kThreads), Cfg::kValueRegisters>();
    consume_values<Cfg>(p, smem, token, head0, num_blocks);
  }
  device::grid_dependency_launch_dependents();
}

}  // namespace flashmla::kernels::sparse_prefill
