// Sparse MLA prefill: one CTA per (query token, group of 64 heads). A
// producer warpgroup gathers the token's selected KV rows with cp.async, two
// consumer warpgroups compute Q K^T, the online softmax and P V of one block
// in lockstep while the next block is gathered into the other stage. See
// README.md.
#pragma once

#include <cstdint>

#include <cuda.h>

#include <cute/tensor.hpp>

#include "device/cp_async.cuh"
#include "device/cute_gemm.cuh"
#include "device/fence.cuh"
#include "device/mbarrier.cuh"
#include "device/named_barrier.cuh"
#include "device/pdl.cuh"
#include "device/swizzle.h"
#include "device/tma.cuh"
#include "device/warpgroup_registers.cuh"
#include "device/wgmma_layout.h"
#include "kernels/sparse_prefill/config.cuh"
#include "kernels/sparse_prefill/params.h"

namespace flashmla::kernels::sparse_prefill {

using namespace cute;

// Named barrier ids (0 is __syncthreads).
enum : uint32_t {
  kBarRowMax = 1,   // both warpgroups: both row maxima of a block are published
  kBarPReady = 2,   // both warpgroups: P of the block is in shared memory
  kBarRowSum = 3,   // both warpgroups: both row sums are published
  kBarQZero = 4,    // both warpgroups: the q rows past h_q are zeroed
  kBarOStaged = 5,  // one per warpgroup (5, 6): its half of O is staged in shared memory
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

template <typename Cfg>
__global__ void __launch_bounds__(Cfg::kThreads, 1)
    sparse_prefill_kernel(const __grid_constant__ CUtensorMap q_map, const Params p) {
  using Element = typename Cfg::Element;
  constexpr int kBlockM = Cfg::kBlockM;
  constexpr int kBlockN = Cfg::kBlockN;
  constexpr int kHalfN = Cfg::kHalfN;
  constexpr int kHalfV = Cfg::kHalfV;
  constexpr int kNumKTiles = Cfg::kNumKTiles;
  constexpr int kTileBytes = Cfg::kTileBytes;
  using SharedStorage = typename Cfg::SharedStorage;

  extern __shared__ __align__(1024) char smem_raw[];
  SharedStorage& smem = *reinterpret_cast<SharedStorage*>(smem_raw);

  const int warp_group = threadIdx.x / 128;  // 0: producer, 1 and 2: consumers
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
  device::set_warpgroup_registers<device::launch_registers(Cfg::kThreads), Cfg::kConsumerRegisters>();

  const int tid = threadIdx.x - 128;  // 0..255 over the consumers
  const int wg = tid / 128;           // which half of the keys (QK) and of V's dims (PV)
  const int tid_wg = tid % 128;
  const int lane = tid % 32;

  Tensor sQ = make_tensor(make_smem_ptr(smem.q), typename Cfg::SmemLayoutQ{});    // (64, d_qk)
  Tensor sK = make_tensor(make_smem_ptr(smem.k), typename Cfg::SmemLayoutK{});    // (64, d_qk, stages)
  Tensor sVt = make_tensor(make_smem_ptr(smem.k), typename Cfg::SmemLayoutVt{});  // (512, 64, stages)

  typename Cfg::TiledMmaQK mma_qk;
  typename Cfg::TiledMmaPV mma_pv;
  auto thr_qk = mma_qk.get_thread_slice(tid_wg);
  auto thr_pv = mma_pv.get_thread_slice(tid_wg);
  Tensor tSrQ = thr_qk.partition_fragment_A(sQ);
  Tensor tSrS = partition_fragment_C(mma_qk, Shape<Int<kBlockM>, Int<kHalfN>>{});  // 16 fp32
  Tensor tOrO = partition_fragment_C(mma_pv, Shape<Int<kBlockM>, Int<kHalfV>>{});  // 128 fp32
  static_assert(decltype(size(tSrS))::value == 16 && decltype(size(tOrO))::value == 128, "fragment sizes");

  // P of the block in stage s (see Config::kPInRopeTile).
  auto p_tile = [&](int stage) -> char* {
    if constexpr (Cfg::kPInRopeTile) {
      return reinterpret_cast<char*>(smem.k) + stage * Cfg::kStageBytes + (Cfg::kDimV / 64) * kTileBytes;
    } else {
      return reinterpret_cast<char*>(smem.p) + stage * kBlockN * kBlockN * 2;
    }
  };

  // The two tile rows (heads head0 + row) this thread holds in every
  // accumulator (registers with (i / 2) % 2 == h hold row_in_tile[h]).
  int row_in_tile[2];
  CUTE_UNROLL
  for (int h = 0; h < 2; ++h) row_in_tile[h] = device::wgmma_accumulator_coord(tid_wg, 2 * h).row;

  float row_max[2] = {-INFINITY, -INFINITY};  // base 2, shared by both warpgroups
  float row_sum[2] = {0.f, 0.f};              // this thread's columns only
  clear(tOrO);

  if (num_blocks > 0) {
    // Fewer than 64 heads: q brings h_q rows, the rest of the tile must be
    // finite (zeros) so the padding rows stay harmless; they are never stored.
    if (p.q_box_rows < kBlockM) {
      const int pad_rows = kBlockM - p.q_box_rows;
      for (int idx = tid; idx < pad_rows * 8 * kNumKTiles; idx += Cfg::kConsumerThreads) {
        const int tile = idx / (pad_rows * 8);
        const int row = p.q_box_rows + (idx / 8) % pad_rows;
        *reinterpret_cast<uint4*>(reinterpret_cast<char*>(smem.q) + tile * kTileBytes + row * 128 + (idx % 8) * 16) =
            make_uint4(0, 0, 0, 0);
      }
      device::fence_proxy_async_shared_cta();
      device::named_barrier_sync(kBarQZero, Cfg::kConsumerThreads);
    }
    device::mbarrier_wait_parity(&smem.q_full, 0);
  }

  // S = Q K_half^T for keys [32 wg, 32 wg + 32) of the block in `stage`.
  auto issue_qk = [&](int32_t n, int stage) {
    device::mbarrier_wait_parity(&smem.k_full[stage], (n / Cfg::kStages) & 1);
    device::fence_proxy_async_shared_cta();  // cp.async wrote the stage through the generic proxy
    Tensor sKw = local_tile(sK(_, _, stage), Shape<Int<kHalfN>, Int<Cfg::kDimQK>>{}, make_coord(wg, _0{}));
    Tensor tSrK = thr_qk.partition_fragment_B(sKw);
    device::gemm_ss(mma_qk, tSrQ, tSrK, tSrS, /*zero_init=*/true);
  };
  // O_half += P V_half of the block in `stage`.
  auto issue_pv = [&](int stage) {
    Tensor sP = make_tensor(make_smem_ptr(reinterpret_cast<Element*>(p_tile(stage))), typename Cfg::SmemLayoutP{});
    Tensor tOrP = thr_pv.partition_fragment_A(sP);
    Tensor sVtw = local_tile(sVt(_, _, stage), Shape<Int<kHalfV>, Int<kBlockN>>{}, make_coord(wg, _0{}));
    Tensor tOrV = thr_pv.partition_fragment_B(sVtw);
    device::gemm_ss(mma_pv, tOrP, tOrV, tOrO, /*zero_init=*/false);
  };
  // Mask, row max (exchanged between the warpgroups) and exp2 of block n's
  // S, in place; returns through `rescale` the factor O must be scaled by.
  auto softmax = [&](int32_t n, int stage, float (&rescale)[2]) {
    // Mask by selection (a masked logit is -inf, whatever the dot product).
    float block_max[2] = {-INFINITY, -INFINITY};
    CUTE_UNROLL
    for (int i = 0; i < 16; ++i) {
      const int h = (i / 2) % 2;
      const int key = wg * kHalfN + device::wgmma_accumulator_coord(tid_wg, i).col;
      const float s = smem.key_valid[stage][key] ? tSrS(i) * p.scale_log2 : -INFINITY;
      tSrS(i) = s;
      block_max[h] = fmaxf(block_max[h], s);
    }
    CUTE_UNROLL
    for (int h = 0; h < 2; ++h) {
      block_max[h] = fmaxf(block_max[h], __shfl_xor_sync(0xffffffffu, block_max[h], 1));
      block_max[h] = fmaxf(block_max[h], __shfl_xor_sync(0xffffffffu, block_max[h], 2));
      if (lane % 4 == 0) smem.row_max[n & 1][wg][row_in_tile[h]] = block_max[h];
    }
    device::named_barrier_sync(kBarRowMax, Cfg::kConsumerThreads);
    float max_used[2];
    CUTE_UNROLL
    for (int h = 0; h < 2; ++h) {
      const float other = smem.row_max[n & 1][1 - wg][row_in_tile[h]];
      const float new_max = fmaxf(row_max[h], fmaxf(block_max[h], other));
      // A row with no valid key yet keeps max -inf: exponentiate against 0
      // instead, so exp2(-inf - -inf) never makes a NaN.
      max_used[h] = new_max == -INFINITY ? 0.f : new_max;
      rescale[h] = exp2f(row_max[h] - max_used[h]);
      row_max[h] = new_max;
      row_sum[h] *= rescale[h];
    }
    CUTE_UNROLL
    for (int i = 0; i < 16; ++i) {
      const int h = (i / 2) % 2;
      const float prob = exp2f(tSrS(i) - max_used[h]);
      tSrS(i) = prob;
      row_sum[h] += prob;
    }
  };
  // P (rounded to bf16, as the spec says) for the other warpgroup too:
  // registers i, i + 1 are adjacent keys, one 4-byte store into the 128-byte
  // swizzled tile. With d_qk 576 the tile is the stage's RoPE tile, free once
  // both Q K^T of the stage are done (kBarRowMax).
  auto store_p = [&](int stage) {
    char* p_dst = p_tile(stage);
    CUTE_UNROLL
    for (int i = 0; i < 16; i += 2) {
      const device::FragmentCoord c = device::wgmma_accumulator_coord(tid_wg, i);
      Element pair[2] = {static_cast<Element>(tSrS(i)), static_cast<Element>(tSrS(i + 1))};
      const uint32_t offset = device::swizzle_128b(uint32_t(c.row * 128 + (wg * kHalfN + c.col) * 2));
      *reinterpret_cast<uint32_t*>(p_dst + offset) = *reinterpret_cast<uint32_t*>(pair);
    }
    device::fence_proxy_async_shared_cta();  // the stores above are read by wgmma
    device::named_barrier_sync(kBarPReady, Cfg::kConsumerThreads);
  };

  // Lockstep per block: Q K^T, softmax, P V, release. While the consumers
  // compute on one stage, the producer gathers the next block into the
  // other: a whole block of lookahead for the gather.
  for (int32_t n = 0; n < num_blocks; ++n) {
    const int stage = n % Cfg::kStages;
    float rescale[2];
    issue_qk(n, stage);
    warpgroup_wait<0>();
    warpgroup_fence_operand(tSrS);
    softmax(n, stage, rescale);
    // Once a row's max settles (most blocks), its rescale is exactly 1:
    // skip the 128 multiplies when the whole warp can (block 0: O is 0).
    if (n > 0 && __any_sync(0xffffffffu, rescale[0] != 1.f || rescale[1] != 1.f)) {
      CUTE_UNROLL
      for (int i = 0; i < 128; ++i) tOrO(i) *= rescale[(i / 2) % 2];
    }
    store_p(stage);
    issue_pv(stage);
    warpgroup_wait<0>();
    warpgroup_fence_operand(tOrO);
    if (tid_wg == 0) device::mbarrier_arrive(&smem.k_empty[stage]);
  }

  // Row sums: the quad's columns, then the other warpgroup's half.
  float total[2];
  CUTE_UNROLL
  for (int h = 0; h < 2; ++h) {
    float s = row_sum[h];
    s += __shfl_xor_sync(0xffffffffu, s, 1);
    s += __shfl_xor_sync(0xffffffffu, s, 2);
    if (lane % 4 == 0) smem.row_sum[wg][row_in_tile[h]] = s;
    total[h] = s;
  }
  device::named_barrier_sync(kBarRowSum, Cfg::kConsumerThreads);
  CUTE_UNROLL
  for (int h = 0; h < 2; ++h) total[h] += smem.row_sum[1 - wg][row_in_tile[h]];

  // Epilogue (spec section 2): out = O / (L + exp(sink - M)); lse = M + ln L
  // without the sink; an empty row (L = 0: no valid key) gives out 0,
  // max_logits -inf and lse -inf. Max in base 2, hence the ln 2.
  constexpr float kLn2 = 0.6931471805599453f;
  constexpr float kLog2e = 1.4426950408889634f;
  float inv[2];
  CUTE_UNROLL
  for (int h = 0; h < 2; ++h) {
    const int head = head0 + row_in_tile[h];
    const bool is_head = head < p.h_q;
    // Only L == 0 is empty: a NaN L (a NaN key among the selected) stays NaN.
    const bool empty = total[h] == 0.f;
    float denominator = total[h];
    if (p.attn_sink != nullptr && is_head && !empty) {
      denominator += exp2f(p.attn_sink[head] * kLog2e - row_max[h]);
    }
    inv[h] = empty ? 0.f : 1.f / denominator;
    if (is_head && wg == 0 && lane % 4 == 0) {
      p.max_logits[int64_t(token) * p.stride_max_logits_s + head] = row_max[h] * kLn2;
      p.lse[int64_t(token) * p.stride_lse_s + head] = empty ? -INFINITY : (row_max[h] + log2f(total[h])) * kLn2;
    }
  }

  // O (bf16) staged in q's buffer as 64-column swizzled tiles, then stored
  // 16 bytes per thread, a warp covering 512 contiguous bytes of a head's
  // row. Every Q K^T finished before the last kBarPReady.
  char* o_stage = reinterpret_cast<char*>(smem.q);
  CUTE_UNROLL
  for (int i = 0; i < 128; i += 2) {
    const device::FragmentCoord c = device::wgmma_accumulator_coord(tid_wg, i);
    const int h = (i / 2) % 2;
    const int col = wg * kHalfV + c.col;
    Element pair[2] = {static_cast<Element>(tOrO(i) * inv[h]), static_cast<Element>(tOrO(i + 1) * inv[h])};
    const uint32_t offset = (col / 64) * kTileBytes + device::swizzle_128b(uint32_t(c.row * 128 + (col % 64) * 2));
    *reinterpret_cast<uint32_t*>(o_stage + offset) = *reinterpret_cast<uint32_t*>(pair);
  }
  device::named_barrier_sync(kBarOStaged + wg, 128);
  {
    const int chunk = tid_wg % 32;  // 16-byte chunk of this warpgroup's 512-byte half row
    const int col_chunk = wg * 32 + chunk;
    const int heads_here = p.h_q - head0 < kBlockM ? p.h_q - head0 : kBlockM;
    Element* out_token = static_cast<Element*>(p.out) + int64_t(token) * p.stride_out_s + col_chunk * 8;
    for (int row = tid_wg / 32; row < heads_here; row += 4) {
      const uint32_t offset =
          (col_chunk / 8) * kTileBytes + device::swizzle_128b(uint32_t(row * 128 + (col_chunk % 8) * 16));
      const uint4 v = *reinterpret_cast<const uint4*>(o_stage + offset);
      *reinterpret_cast<uint4*>(out_token + int64_t(head0 + row) * p.stride_out_h) = v;
    }
  }
  device::grid_dependency_launch_dependents();
}

}  // namespace flashmla::kernels::sparse_prefill
