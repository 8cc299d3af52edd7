// Fences between the generic proxy (ordinary loads/stores) and the async
// proxy (TMA, wgmma operand reads, mbarrier complete_tx).
#pragma once

namespace flashmla::device {

// PTX ISA "Parallel Synchronization and Communication Instructions: membar/fence"
// (fence.proxy.async): shared memory written by ordinary stores (st.shared,
// stmatrix) becomes visible to the async proxy. Each writing thread executes
// it after its stores and before the barrier that precedes the wgmma or TMA
// store reading them.
__device__ __forceinline__ void fence_proxy_async_shared_cta() {
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}

// PTX ISA "Parallel Synchronization and Communication Instructions: membar/fence"
// (fence.mbarrier_init): makes mbarrier.init visible to the async proxy and
// to the other CTAs of the cluster. Run by the initialising thread, before
// the barrier (__syncthreads / cluster sync) after which others use it.
__device__ __forceinline__ void fence_barrier_init() {
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}

}  // namespace flashmla::device
