// One wgmma batch through a CuTe TiledMma: acc (+)= A B over all k blocks of
// the operands, committed and not waited for. Shared by the decode and
// prefill kernels, whose operands are CuTe fragments (shared-memory
// descriptors or, for A, registers).
#pragma once

#include <cute/tensor.hpp>
#include <cute/arch/mma_sm90.hpp>

namespace flashmla::device {

template <typename TiledMma, typename TensorA, typename TensorB, typename TensorC>
__device__ __forceinline__ void gemm_async(TiledMma& mma, const TensorA& a, const TensorB& b, TensorC& acc,
                                           bool zero_init) {
  using namespace cute;
  warpgroup_fence_operand(acc);
  warpgroup_arrive();
  mma.accumulate_ = zero_init ? GMMA::ScaleOut::Zero : GMMA::ScaleOut::One;
  CUTE_UNROLL
  for (int k = 0; k < size<2>(a); ++k) {
    cute::gemm(mma, a(_, _, k), b(_, _, k), acc);
    mma.accumulate_ = GMMA::ScaleOut::One;
  }
  warpgroup_commit_batch();
  warpgroup_fence_operand(acc);
}

}  // namespace flashmla::device
