// Warpgroup MMA (sm_90a): the batch protocol and the m64n64k16 bf16 shape
// the QK^T of the decode kernels uses. All 128 threads of a warpgroup (4
// consecutive warps, the first with index % 4 == 0) execute every call here
// convergently.
//
// One batch:
//   fence_accumulators(acc); warpgroup_arrive();
//   wgmma_...(desc_a, desc_b, acc, ...);   // any number, all async
//   warpgroup_commit_batch();
//   warpgroup_wait<0>(); fence_accumulators(acc);
// Shared-memory operands must be visible to the async proxy first: data that
// TMA wrote is, once its mbarrier wait returned; data written with ordinary
// stores needs fence_proxy_async_shared_cta() and a barrier.
#pragma once

#include <cstdint>

#include <cute/arch/mma_sm90_gmma.hpp>

#include "device/wgmma_layout.h"

namespace flashmla::device {

// PTX ISA "Warpgroup Level Matrix Multiply-Accumulate Instructions: wgmma.fence":
// orders earlier register and shared-memory accesses before the following
// wgmma.mma_async (required before the first one of a batch, and after the
// accumulators were touched by other instructions).
__device__ __forceinline__ void warpgroup_arrive() {
  asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
}

// PTX ISA "Warpgroup Level Matrix Multiply-Accumulate Instructions: wgmma.commit_group":
// closes the batch of wgmma.mma_async issued since the last commit.
__device__ __forceinline__ void warpgroup_commit_batch() {
  asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
}

// PTX ISA "Warpgroup Level Matrix Multiply-Accumulate Instructions: wgmma.wait_group":
// waits until at most kPending committed batches are still running; then
// the finished batches' accumulators are readable and their shared-memory
// operands may be overwritten.
template <int kPending>
__device__ __forceinline__ void warpgroup_wait() {
  static_assert(kPending >= 0 && kPending <= 7, "wgmma.wait_group takes 0..7");
  asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(kPending) : "memory");
}

// Not an instruction: tells the compiler each accumulator register may be
// read and written here, so that it neither moves accesses to them across
// the asynchronous wgmma nor reuses their registers while a batch runs.
template <int kCount>
__device__ __forceinline__ void fence_accumulators(float (&acc)[kCount]) {
#pragma unroll
  for (int i = 0; i < kCount; ++i) asm volatile("" : "+f"(acc[i])::"memory");
}

// PTX ISA "Warpgroup Level Matrix Multiply-Accumulate Instructions: wgmma.mma_async"
// (.m64n64k16.f32.bf16.bf16, both operands from shared memory, both K-major):
// acc (64 x 64 fp32, see wgmma_accumulator_coord) = A (64 x 16) * B^T, where
// B is stored as 64 rows (N) x 16 (K); with accumulate == false acc is
// overwritten instead of added to. Issued through CuTe's SM90 GMMA atom.
__device__ __forceinline__ void wgmma_m64n64k16_bf16_ss(uint64_t desc_a, uint64_t desc_b, float (&acc)[32],
                                                        bool accumulate) {
  using Mma = cute::SM90::GMMA::MMA_64x64x16_F32BF16BF16_SS<cute::SM90::GMMA::Major::K,
                                                             cute::SM90::GMMA::Major::K>;
  Mma::fma(desc_a, desc_b,
           acc[0], acc[1], acc[2], acc[3], acc[4], acc[5], acc[6], acc[7],
           acc[8], acc[9], acc[10], acc[11], acc[12], acc[13], acc[14], acc[15],
           acc[16], acc[17], acc[18], acc[19], acc[20], acc[21], acc[22], acc[23],
           acc[24], acc[25], acc[26], acc[27], acc[28], acc[29], acc[30], acc[31],
           accumulate ? cute::SM90::GMMA::ScaleOut::One : cute::SM90::GMMA::ScaleOut::Zero);
}

}  // namespace flashmla::device
