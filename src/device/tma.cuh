// TMA (the bulk tensor copy engine): tiles described by a CUtensorMap
// (built on the host, see tma_descriptor.h) loaded from global into shared
// memory, completing on an mbarrier as transaction bytes.
//
// The tensor map is a __grid_constant__ kernel parameter (or lives in
// global/constant memory); it is passed by its generic address. Coordinates
// are element indices, innermost dimension first, signed 32-bit each; the
// engine forms the 64-bit address from them and the map's 64-bit strides,
// so a pool larger than 2^31 elements needs no special handling here.
//
// Destination: the executing CTA's shared memory (a CTA-local address is a
// valid .shared::cluster address of its own CTA), 128-byte aligned, and
// 1024-byte aligned for the 128-byte swizzle so that the pattern matches
// swizzle_128b() and the wgmma descriptors (base offset 0).
#pragma once

#include <cstdint>

#include <cuda.h>

#include "device/smem_address.cuh"

namespace flashmla::device {

// PTX ISA "Data Movement and Conversion Instructions: createpolicy": an L2
// policy that marks the lines a load brings in as first to evict (streamed
// data: the KV cache of a decode step is read once).
__device__ __forceinline__ uint64_t l2_policy_evict_first() {
  uint64_t policy;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
  return policy;
}

// PTX ISA "Data Movement and Conversion Instructions: createpolicy": lines
// are kept in L2 in preference to others (data re-read by other CTAs).
__device__ __forceinline__ uint64_t l2_policy_evict_last() {
  uint64_t policy;
  asm volatile("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;" : "=l"(policy));
  return policy;
}

// PTX ISA "Data Movement and Conversion Instructions: prefetch, prefetchu"
// (prefetch.tensormap): pulls the tensor map into the descriptor cache ahead
// of the first load that uses it.
__device__ __forceinline__ void prefetch_tensormap(const CUtensorMap* map) {
  asm volatile("prefetch.tensormap [%0];" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
}

// PTX ISA "Data Movement and Conversion Instructions: cp.async.bulk.tensor" (.2d).
__device__ __forceinline__ void tma_load_2d(void* smem_dst, uint64_t* bar, const CUtensorMap* map,
                                            int32_t c0, int32_t c1) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%2, %3}], [%4];" ::"r"(smem_address(smem_dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(smem_address(bar))
      : "memory");
}

// PTX ISA "Data Movement and Conversion Instructions: cp.async.bulk.tensor" (.2d, .L2::cache_hint).
__device__ __forceinline__ void tma_load_2d(void* smem_dst, uint64_t* bar, const CUtensorMap* map,
                                            int32_t c0, int32_t c1, uint64_t l2_policy) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.L2::cache_hint"
      " [%0], [%1, {%2, %3}], [%4], %5;" ::"r"(smem_address(smem_dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(smem_address(bar)), "l"(l2_policy)
      : "memory");
}

// PTX ISA "Data Movement and Conversion Instructions: cp.async.bulk.tensor" (.3d).
__device__ __forceinline__ void tma_load_3d(void* smem_dst, uint64_t* bar, const CUtensorMap* map,
                                            int32_t c0, int32_t c1, int32_t c2) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%2, %3, %4}], [%5];" ::"r"(smem_address(smem_dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(smem_address(bar))
      : "memory");
}

// PTX ISA "Data Movement and Conversion Instructions: cp.async.bulk.tensor" (.3d, .L2::cache_hint).
__device__ __forceinline__ void tma_load_3d(void* smem_dst, uint64_t* bar, const CUtensorMap* map,
                                            int32_t c0, int32_t c1, int32_t c2, uint64_t l2_policy) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.L2::cache_hint"
      " [%0], [%1, {%2, %3, %4}], [%5], %6;" ::"r"(smem_address(smem_dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(smem_address(bar)),
      "l"(l2_policy)
      : "memory");
}

// PTX ISA "Data Movement and Conversion Instructions: cp.async.bulk.tensor" (.4d).
__device__ __forceinline__ void tma_load_4d(void* smem_dst, uint64_t* bar, const CUtensorMap* map,
                                            int32_t c0, int32_t c1, int32_t c2, int32_t c3) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%2, %3, %4, %5}], [%6];" ::"r"(smem_address(smem_dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(smem_address(bar))
      : "memory");
}

// PTX ISA "Data Movement and Conversion Instructions: cp.async.bulk.tensor" (.4d, .L2::cache_hint).
__device__ __forceinline__ void tma_load_4d(void* smem_dst, uint64_t* bar, const CUtensorMap* map,
                                            int32_t c0, int32_t c1, int32_t c2, int32_t c3,
                                            uint64_t l2_policy) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.L2::cache_hint"
      " [%0], [%1, {%2, %3, %4, %5}], [%6], %7;" ::"r"(smem_address(smem_dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(smem_address(bar)),
      "l"(l2_policy)
      : "memory");
}

// PTX ISA "Data Movement and Conversion Instructions: cp.async.bulk.tensor"
// (.4d, .multicast::cluster, .L2::cache_hint): one load from L2 written to
// the same shared-memory offset in every CTA of `cta_mask` (bit i = cluster
// rank i), each completing the bytes on its own mbarrier at `bar`'s offset;
// the lines it brings into L2 take `l2_policy` (createpolicy).
__device__ __forceinline__ void tma_load_4d_multicast(void* smem_dst, uint64_t* bar, const CUtensorMap* map,
                                                      int32_t c0, int32_t c1, int32_t c2, int32_t c3,
                                                      uint16_t cta_mask, uint64_t l2_policy) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.multicast::cluster"
      ".L2::cache_hint [%0], [%1, {%2, %3, %4, %5}], [%6], %7, %8;" ::"r"(smem_address(smem_dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(smem_address(bar)),
      "h"(cta_mask), "l"(l2_policy)
      : "memory");
}

// PTX ISA "Data Movement and Conversion Instructions: cp.async.bulk.tensor" (.5d).
__device__ __forceinline__ void tma_load_5d(void* smem_dst, uint64_t* bar, const CUtensorMap* map,
                                            int32_t c0, int32_t c1, int32_t c2, int32_t c3, int32_t c4) {
  asm volatile(
      "cp.async.bulk.tensor.5d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%2, %3, %4, %5, %6}], [%7];" ::"r"(smem_address(smem_dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(c4), "r"(smem_address(bar))
      : "memory");
}

}  // namespace flashmla::device
