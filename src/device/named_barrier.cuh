// Named barriers (bar.sync with an id and a thread count): synchronize a
// subset of the CTA, e.g. the two consumer warpgroups of a decode kernel,
// without __syncthreads. Ids 1..15 (0 is __syncthreads').
#pragma once

#include <cstdint>

namespace flashmla::device {

// PTX ISA "Parallel Synchronization and Communication Instructions: bar, barrier"
// (bar.sync a, b): waits until `num_threads` threads (a multiple of 32) have
// arrived at barrier `id`; orders their shared-memory accesses.
__device__ __forceinline__ void named_barrier_sync(uint32_t id, uint32_t num_threads) {
  asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(num_threads) : "memory");
}

// bar.arrive a, b: counts this warp's arrival at barrier `id` without
// waiting; the threads that bar.sync on it see the arriving threads'
// shared-memory writes made before the arrive.
__device__ __forceinline__ void named_barrier_arrive(uint32_t id, uint32_t num_threads) {
  asm volatile("bar.arrive %0, %1;" ::"r"(id), "r"(num_threads) : "memory");
}

// PTX ISA "Parallel Synchronization and Communication Instructions: bar.red"
// (.or.pred): bar.sync that also returns, to every participating thread,
// whether any of them passed `pred`.
__device__ __forceinline__ bool named_barrier_or(uint32_t id, uint32_t num_threads, bool pred) {
  uint32_t any;
  asm volatile(
      "{\n\t"
      ".reg .pred in, out;\n\t"
      "setp.ne.u32 in, %1, 0;\n\t"
      "bar.red.or.pred out, %2, %3, in;\n\t"
      "selp.u32 %0, 1, 0, out;\n\t"
      "}"
      : "=r"(any)
      : "r"(uint32_t(pred)), "r"(id), "r"(num_threads)
      : "memory");
  return any != 0;
}

}  // namespace flashmla::device
