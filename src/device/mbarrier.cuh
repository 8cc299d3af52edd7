// mbarrier: the shared-memory barriers that TMA loads complete on.
//
// A barrier counts pending arrivals and pending transaction bytes; a phase
// completes when both reach zero, and the next phase starts with the arrival
// count it was initialised with. Waiters name the phase by its parity:
// phase k completes -> waits with parity k & 1 return. A freshly initialised
// barrier is in phase 0, and a wait with parity 1 returns at once (the
// "previous" phase counts as complete), which producers use to start
// without a first handshake.
//
// All operate on the executing CTA's shared memory (.shared::cta); arrive has
// release and try_wait acquire semantics at CTA scope (the PTX defaults), so
// data a TMA load wrote is visible to a thread once its wait returns.
#pragma once

#include <cstdint>

#include "device/smem_address.cuh"

namespace flashmla::device {

// PTX ISA "Parallel Synchronization and Communication Instructions: mbarrier.init".
__device__ __forceinline__ void mbarrier_init(uint64_t* bar, uint32_t arrival_count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_address(bar)), "r"(arrival_count)
               : "memory");
}

// PTX ISA "Parallel Synchronization and Communication Instructions: mbarrier.arrive".
__device__ __forceinline__ void mbarrier_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_address(bar)) : "memory");
}

// PTX ISA "Parallel Synchronization and Communication Instructions: mbarrier.arrive"
// (.expect_tx): adds tx_bytes to the pending transaction count, then arrives.
// Post it before (or with) the TMA loads it covers, in the same phase.
__device__ __forceinline__ void mbarrier_arrive_expect_tx(uint64_t* bar, uint32_t tx_bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_address(bar)),
               "r"(tx_bytes)
               : "memory");
}

// PTX ISA "Parallel Synchronization and Communication Instructions: mbarrier.expect_tx":
// adds tx_bytes to the pending transaction count without arriving.
__device__ __forceinline__ void mbarrier_expect_tx(uint64_t* bar, uint32_t tx_bytes) {
  asm volatile("mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [%0], %1;" ::"r"(smem_address(bar)),
               "r"(tx_bytes)
               : "memory");
}

// PTX ISA "Parallel Synchronization and Communication Instructions: mbarrier.test_wait/mbarrier.try_wait"
// (.parity): true once the phase of parity `parity` has completed; may suspend
// the thread for a hardware-defined time before returning false.
__device__ __forceinline__ bool mbarrier_try_wait_parity(uint64_t* bar, uint32_t parity) {
  uint32_t done;
  asm volatile(
      "{\n\t"
      ".reg .pred p;\n\t"
      "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n\t"
      "selp.u32 %0, 1, 0, p;\n\t"
      "}"
      : "=r"(done)
      : "r"(smem_address(bar)), "r"(parity)
      : "memory");
  return done != 0;
}

// Blocks until the phase of parity `parity` has completed.
__device__ __forceinline__ void mbarrier_wait_parity(uint64_t* bar, uint32_t parity) {
  while (!mbarrier_try_wait_parity(bar, parity)) {
  }
}

// The same wait with its retry loop inside one asm statement: for waits
// between wgmma batches that accumulate into the same registers (a C++
// retry loop there made ptxas serialize every wgmma of the kernel, C7520).
__device__ __forceinline__ void mbarrier_wait_parity_in_asm(uint64_t* bar, uint32_t parity) {
  asm volatile(
      "{\n\t"
      ".reg .pred ready;\n\t"
      "RETRY:\n\t"
      "mbarrier.try_wait.parity.shared::cta.b64 ready, [%0], %1;\n\t"
      "@!ready bra RETRY;\n\t"
      "}" ::"r"(smem_address(bar)),
      "r"(parity)
      : "memory");
}

}  // namespace flashmla::device
