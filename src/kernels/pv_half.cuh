// The value product of a score/value consumer warpgroup pair, shared by
// dense decode, sparse decode and sparse prefill: each warpgroup holds half
// of O (64 rows x 256 V dims, 128 fp32 registers) and accumulates P V over
// its half of the V dims, V being the first 512 columns of the stage's K
// tiles read transposed.
#pragma once

#include <cute/tensor.hpp>

#include "device/cute_gemm.cuh"

namespace flashmla::kernels {

// The B operand of P V_half: warpgroup `half`'s 256 V dims of the block in
// `stage` (`k` the KV stages), partitioned for `thr_pv`, a thread's slice of
// either P V tiling (P from shared memory or from registers).
template <typename Cfg, typename ThrMma>
__device__ __forceinline__ auto v_half_operand(const ThrMma& thr_pv, typename Cfg::Element* k, int stage, int half) {
  using namespace cute;
  Tensor sVt = make_tensor(make_smem_ptr(k), typename Cfg::SmemLayoutVt{});
  Tensor sVtw = local_tile(sVt(_, _, stage), Shape<Int<Cfg::kHalfV>, Int<Cfg::kBlockN>>{}, make_coord(half, _0{}));
  return thr_pv.partition_fragment_B(sVtw);
}

// O_half *= each row's factor (rescale[h] for the rows of registers with
// (i / 2) % 2 == h), skipped when every factor of the warp is exactly 1: once
// a row's max settles (most blocks), nothing moves.
template <typename Accumulator>
__device__ __forceinline__ void rescale_output(Accumulator& tOrO, const float (&rescale)[2]) {
  if (__any_sync(0xffffffffu, rescale[0] != 1.f || rescale[1] != 1.f)) {
    CUTE_UNROLL
    for (int i = 0; i < cute::size(tOrO); ++i) tOrO(i) *= rescale[(i / 2) % 2];
  }
}

// O_half += P V_half of the block in `stage`, waited for: warpgroup `half`'s
// 256 V dims. `p` is the block's 64 x 64 P tile, `k` the KV stages.
template <typename Cfg, typename Accumulator>
__device__ __forceinline__ void accumulate_pv(typename Cfg::Element* p, typename Cfg::Element* k, int stage, int half,
                                              int tid_wg, Accumulator& tOrO) {
  using namespace cute;
  Tensor sP = make_tensor(make_smem_ptr(p), typename Cfg::SmemLayoutP{});
  typename Cfg::TiledMmaPV mma_pv;
  auto thr_pv = mma_pv.get_thread_slice(tid_wg);
  Tensor tOrP = thr_pv.partition_fragment_A(sP);
  device::gemm_async(mma_pv, tOrP, v_half_operand<Cfg>(thr_pv, k, stage, half), tOrO, /*zero_init=*/false);
  warpgroup_wait<0>();
  warpgroup_fence_operand(tOrO);
}

// P of a block as the A operand of TiledMmaPVRegP, from the 64 x 64 fp32
// score fragment holding the probabilities: in the wgmma register layouts,
// the accumulator's values 8 s .. 8 s + 7 (two 8-column groups, rows r and
// r + 8) are exactly the A fragment of k-step s, in the same order, so the
// conversion is element by element (checked against CuTe's layouts for every
// thread and value: CuteCrossCheck.ScoreFragmentIsTheRegisterPOperand).
template <typename Cfg, typename Fragment>
__device__ __forceinline__ auto make_p_operand(const Fragment& tSrS, int tid_wg) {
  using namespace cute;
  typename Cfg::TiledMmaPVRegP mma_pv;
  auto thr_pv = mma_pv.get_thread_slice(tid_wg);
  Tensor sP = make_tensor(make_smem_ptr(static_cast<typename Cfg::Element*>(nullptr)), typename Cfg::SmemLayoutP{});
  Tensor tOrP = thr_pv.partition_fragment_A(sP);  // ((2,2,2), 1, 4) registers
  static_assert(decltype(size(tOrP))::value == decltype(size(tSrS))::value, "P fragment size");
  CUTE_UNROLL
  for (int i = 0; i < size(tOrP); ++i) tOrP(i) = static_cast<typename Cfg::Element>(tSrS(i));
  return tOrP;
}

// Issues O_half += P V_half with P from registers (make_p_operand): one
// committed wgmma batch, not waited for.
template <typename Cfg, typename POperand, typename Accumulator>
__device__ __forceinline__ void issue_pv_from_registers(const POperand& tOrP, typename Cfg::Element* k, int stage,
                                                        int half, int tid_wg, Accumulator& tOrO) {
  using namespace cute;
  typename Cfg::TiledMmaPVRegP mma_pv;
  auto thr_pv = mma_pv.get_thread_slice(tid_wg);
  device::gemm_async(mma_pv, tOrP, v_half_operand<Cfg>(thr_pv, k, stage, half), tOrO, /*zero_init=*/false);
}

// A warpgroup's half of O.
template <typename Cfg>
__device__ __forceinline__ auto make_output_accumulator() {
  using namespace cute;
  typename Cfg::TiledMmaPV mma_pv;
  return partition_fragment_C(mma_pv, Shape<Int<Cfg::kBlockM>, Int<Cfg::kHalfV>>{});  // 128 fp32
}

}  // namespace flashmla::kernels
