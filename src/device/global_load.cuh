// Read-only global loads, bulk copies and L2 prefetches for gathers whose
// addresses come from data (sparse indices): no TMA box fits a scattered
// token.
#pragma once

#include <cstdint>

#include "device/smem_address.cuh"

namespace flashmla::device {

// PTX ISA "Data Movement and Conversion Instructions: ld" (.global.nc with
// L1::evict_last and the L2::256B prefetch size): 16 bytes from memory that
// no thread writes during the kernel. A token's bytes are read once per CTA,
// yet allocating them in L1 measured faster than L1::no_allocate on an H100
// (sparse decode S01 316 vs 361 us, S03 337 vs 390, S05 119 vs 128 at
// a56e583), as FlashMLA also found for its sparse decode gather.
__device__ __forceinline__ uint4 ld_nc_16b(const void* ptr) {
  uint4 v;
  asm volatile("ld.global.nc.L1::evict_last.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(ptr));
  return v;
}

// 8 bytes (MODEL1 scale bytes), L1::no_allocate (not yet measured with
// L1::evict_last: the benchmark's cases are V32).
__device__ __forceinline__ uint2 ld_nc_8b(const void* ptr) {
  uint2 v;
  asm volatile("ld.global.nc.L1::no_allocate.v2.u32 {%0, %1}, [%2];" : "=r"(v.x), "=r"(v.y) : "l"(ptr));
  return v;
}

// PTX ISA "Data Movement and Conversion Instructions: cp.async.bulk.prefetch":
// brings `bytes` (a multiple of 16, at a 16-byte aligned address) into L2
// without waiting for them.
__device__ __forceinline__ void prefetch_l2_bulk(const void* ptr, uint32_t bytes) {
  asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(ptr), "r"(bytes) : "memory");
}

// PTX ISA "Data Movement and Conversion Instructions: cp.async.bulk"
// (.shared::cluster.global, .mbarrier::complete_tx::bytes): the TMA engine
// copies `bytes` (a multiple of 16, both ends 16-byte aligned) of global
// memory into this CTA's shared memory at `dst` and completes them on
// `bar`. No registers hold the bytes in flight, so a gather can keep more
// of them in flight than its threads' registers would (bench/gather_ceiling.cu
// on an H200, S05's tokens: one such copy per token from two warps per SM
// into two 64-token stages, 62.7 us; 256 threads of 16-byte loads per SM,
// 78.5 us). The copy writes through the async proxy:
// threads that read `dst` before need fence.proxy.async before it is issued.
__device__ __forceinline__ void bulk_load_shared(void* dst, const void* src, uint32_t bytes, uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
          smem_address(dst)),
      "l"(src), "r"(bytes), "r"(smem_address(bar))
      : "memory");
}

}  // namespace flashmla::device
