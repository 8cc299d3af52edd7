// Two floats rounded to a 16-bit element type (bf16 / fp16) and packed into
// one 32-bit word, the first in the low half: how accumulator pairs (adjacent
// columns of one row) go to shared or global memory in one 4-byte store.
#pragma once

#include <cstdint>

namespace flashmla::device {

template <typename Element>
__device__ __forceinline__ uint32_t pack_pair(float a, float b) {
  static_assert(sizeof(Element) == 2, "two 16-bit elements per word");
  Element pair[2] = {static_cast<Element>(a), static_cast<Element>(b)};
  return *reinterpret_cast<uint32_t*>(pair);
}

}  // namespace flashmla::device
