// cp.async: 16-byte asynchronous copies global -> shared, one per thread,
// used where the rows to load are scattered (a gather by index) and a TMA
// box cannot describe them.
//
// Completion is reported on an mbarrier (cp.async.mbarrier.arrive.noinc), so
// a consumer waits on the barrier as it would for TMA. The copies write
// through the generic proxy: a consumer that feeds the data to wgmma (the
// async proxy) runs fence_proxy_async_shared_cta() after its wait.
#pragma once

#include <cstdint>

#include "device/smem_address.cuh"

namespace flashmla::device {

// PTX ISA "Data Movement and Conversion Instructions: cp.async" (.cg, 16
// bytes, .L2::256B prefetch, src-size). Copies `src_bytes` (16 or 0) bytes
// from `src` and zero-fills the rest of the 16: with src_bytes = 0 nothing is
// read, so a masked row needs only a harmless (valid) source pointer.
__device__ __forceinline__ void cp_async_16(void* smem_dst, const void* src, uint32_t src_bytes) {
  asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16, %2;" ::"r"(smem_address(smem_dst)),
               "l"(reinterpret_cast<uint64_t>(src)), "r"(src_bytes)
               : "memory");
}

// PTX ISA "Data Movement and Conversion Instructions: cp.async.mbarrier.arrive"
// (.noinc): one arrival on `bar` once every cp.async this thread issued
// before has completed. .noinc: the arrival counts against the barrier's
// initial count (so it includes one per issuing thread).
__device__ __forceinline__ void cp_async_mbarrier_arrive_noinc(uint64_t* bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];" ::"r"(smem_address(bar)) : "memory");
}

}  // namespace flashmla::device
