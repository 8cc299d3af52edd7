// One wgmma batch through a CuTe TiledMma: acc (+)= A B over all k blocks of
// the operands, committed and not waited for. Shared by the decode and
// prefill kernels, whose operands are CuTe fragments (shared-memory
// descriptors or, for A, registers).
#pragma once

#include <cute/tensor.hpp>
#include <cute/arch/mma_sm90.hpp>

namespace flashmla::device {

// Over k blocks [kBegin, kEnd) only (the small-head sparse decode kernel
// issues a block's Q K^T in two batches, one per tile group, as the groups
// land).
template <int kBegin, int kEnd, typename TiledMma, typename TensorA, typename TensorB, typename TensorC>
__device__ __forceinline__ void gemm_async_k(TiledMma& mma, const TensorA& a, const TensorB& b, TensorC& acc,
                                             bool zero_init) {
  using namespace cute;
  static_assert(0 <= kBegin && kBegin < kEnd && kEnd <= decltype(size<2>(a))::value, "k range");
  warpgroup_fence_operand(acc);
  warpgroup_arrive();
  mma.accumulate_ = zero_init ? GMMA::ScaleOut::Zero : GMMA::ScaleOut::One;
  CUTE_UNROLL
  for (int k = kBegin; k < kEnd; ++k) {
    cute::gemm(mma, a(_, _, k), b(_, _, k), acc);
    mma.accumulate_ = GMMA::ScaleOut::One;
  }
  warpgroup_commit_batch();
  warpgroup_fence_operand(acc);
}

// Over all k blocks.
template <typename TiledMma, typename TensorA, typename TensorB, typename TensorC>
__device__ __forceinline__ void gemm_async(TiledMma& mma, const TensorA& a, const TensorB& b, TensorC& acc,
                                           bool zero_init) {
  gemm_async_k<0, decltype(cute::size<2>(a))::value>(mma, a, b, acc, zero_init);
}

// acc(_, m, _) += A(_, m, _) B for the m blocks [kBegin, kEnd) of A and acc
// only, committed as one batch (the small-head kernel's O^T += V^T P^T in
// two batches, so that the first tile group is released while the second
// is still multiplied).
template <int kBegin, int kEnd, typename TiledMma, typename TensorA, typename TensorB, typename TensorC>
__device__ __forceinline__ void gemm_async_m(TiledMma& mma, const TensorA& a, const TensorB& b, TensorC& acc) {
  using namespace cute;
  static_assert(0 <= kBegin && kBegin < kEnd && kEnd <= decltype(size<1>(a))::value, "m range");
  warpgroup_fence_operand(acc);
  warpgroup_arrive();
  mma.accumulate_ = GMMA::ScaleOut::One;
  CUTE_UNROLL
  for (int m = kBegin; m < kEnd; ++m) {
    CUTE_UNROLL
    for (int k = 0; k < size<2>(a); ++k) cute::gemm(mma, a(_, m, k), b(_, 0, k), acc(_, m, 0));
  }
  warpgroup_commit_batch();
  warpgroup_fence_operand(acc);
}

}  // namespace flashmla::device
