// Thread-block clusters: the CTA's rank, the cluster-wide barrier, and
// arriving on an mbarrier in another CTA of the cluster (distributed shared
// memory), bulk copies into another CTA's shared memory. Used by the sparse
// decode crossover, whose two CTAs share a block's gather.
#pragma once

#include <cstdint>

#include "device/mbarrier.cuh"
#include "device/smem_address.cuh"

namespace flashmla::device {

// PTX ISA "Special Registers: %cluster_ctarank": this CTA's rank in its cluster.
__device__ __forceinline__ uint32_t cluster_cta_rank() {
  uint32_t rank;
  asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(rank));
  return rank;
}

// PTX ISA "Parallel Synchronization and Communication Instructions: barrier.cluster"
// (arrive has release, wait acquire semantics at cluster scope). Every thread
// of every CTA in the cluster arrives, with its warp converged; a launch
// without a cluster is a cluster of one CTA.
__device__ __forceinline__ void cluster_arrive() {
  asm volatile("barrier.cluster.arrive.aligned;" ::: "memory");
}
__device__ __forceinline__ void cluster_wait() {
  asm volatile("barrier.cluster.wait.aligned;" ::: "memory");
}

// PTX ISA "Data Movement and Conversion Instructions: mapa" and
// "mbarrier.arrive" (.relaxed.cluster, .shared::cluster): arrives on the
// mbarrier at the same shared-memory offset as `bar` in CTA `cta_rank` of
// the cluster, ordering nothing before it. For a consumer releasing a stage
// that only its completed wgmma read (wgmma.wait_group returned), no prior
// access is left to order. The .release.cluster form compiles to
// MEMBAR.ALL.GPU + ERRBAR (8% of the crossover consumers' stall samples);
// the default CTA-scope release measured slower in the crossover at c52f9bb
// (S04 5175 vs 4180 us, not understood).
__device__ __forceinline__ void mbarrier_arrive_cluster_relaxed(uint64_t* bar, uint32_t cta_rank) {
  uint32_t remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(smem_address(bar)), "r"(cta_rank));
  asm volatile("mbarrier.arrive.relaxed.cluster.shared::cluster.b64 _, [%0];" ::"r"(remote) : "memory");
}

// Arrives on `bar` here and, with kPeer, on the same barrier of the other CTA
// of a 2-CTA cluster (relaxed, as above): a consumer releasing a stage that
// both CTAs' producers write into.
template <bool kPeer>
__device__ __forceinline__ void mbarrier_arrive_here_and_peer(uint64_t* bar) {
  mbarrier_arrive(bar);
  if constexpr (kPeer) mbarrier_arrive_cluster_relaxed(bar, cluster_cta_rank() ^ 1u);
}

// PTX ISA "Data Movement and Conversion Instructions: mapa": the
// .shared::cluster address of the same offset in CTA `cta_rank`'s shared
// memory (a CTA's window is contiguous, so offsets may be added to it).
__device__ __forceinline__ uint32_t smem_peer_address(const void* local, uint32_t cta_rank) {
  uint32_t remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(smem_address(local)), "r"(cta_rank));
  return remote;
}

// PTX ISA "Data Movement and Conversion Instructions: cp.async.bulk"
// (.shared::cluster.shared::cta, .mbarrier::complete_tx::bytes): the TMA
// engine copies `bytes` (a multiple of 16, both ends 16-byte aligned) of this
// CTA's shared memory to `dst` in another CTA's (a .shared::cluster address)
// and completes them on that CTA's mbarrier `remote_bar`. The copy reads
// through the async proxy: threads' stores to `src` need
// fence.proxy.async before it is issued.
__device__ __forceinline__ void bulk_copy_to_peer(uint32_t dst, const void* src, uint32_t bytes, uint32_t remote_bar) {
  asm volatile(
      "cp.async.bulk.shared::cluster.shared::cta.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(dst),
      "r"(smem_address(src)), "r"(bytes), "r"(remote_bar)
      : "memory");
}

}  // namespace flashmla::device
