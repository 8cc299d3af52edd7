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

}  // namespace flashmla::device
