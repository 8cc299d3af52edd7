// The 32-bit shared-window address that shared-memory PTX operands take.
#pragma once

#include <cstdint>

namespace flashmla::device {

// PTX ISA "Data Movement and Conversion Instructions: cvta" (generic -> shared).
__device__ __forceinline__ uint32_t smem_address(const void* ptr) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(ptr));
}

}  // namespace flashmla::device
