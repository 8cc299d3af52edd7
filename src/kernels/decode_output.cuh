// The output of one query row of a split-KV decode piece, shared by dense and
// sparse decode: a consumer warpgroup's half of the row from its wgmma
// accumulator, into `out` (the input dtype, and lse) when the request is not
// split, or into the fp32 partials the combine reads when it is.
#pragma once

#include <cstdint>

namespace flashmla::kernels {

// Registers 4 j + 2 h and 4 j + 2 h + 1 of a 64 x kCols accumulator fragment
// hold columns col0 + 8 j and col0 + 8 j + 1 of the thread's row h (h a
// constant after unrolling, so the fragment stays in registers). `inv` is 1 /
// the row's denominator. A split piece without a slot stores nothing. lse is
// stored by one thread of the quad when with_lse.
template <typename Element, int kCols, int kDimV, typename Params, typename Piece, typename Accumulator>
__device__ __forceinline__ void store_decode_row(const Params& p, const Piece& piece, int32_t token, int32_t head,
                                                 int h, float inv, float lse, bool with_lse, int col0,
                                                 const Accumulator& tOrO) {
  const int lane = threadIdx.x % 32;
  if (!piece.split) {
    Element* out_row = static_cast<Element*>(p.out) + int64_t(piece.req) * p.stride_out_b +
                       int64_t(token) * p.stride_out_s + int64_t(head) * p.stride_out_h + col0;
#pragma unroll
    for (int j = 0; j < kCols / 8; ++j) {
      Element pair[2] = {static_cast<Element>(tOrO(4 * j + 2 * h) * inv),
                         static_cast<Element>(tOrO(4 * j + 2 * h + 1) * inv)};
      *reinterpret_cast<uint32_t*>(out_row + 8 * j) = *reinterpret_cast<uint32_t*>(pair);
    }
    if (with_lse && lane % 4 == 0) {
      p.lse[int64_t(piece.req) * p.stride_lse_b + int64_t(head) * p.stride_lse_h + token] = lse;
    }
  } else if (piece.slot >= 0) {
    const int64_t row = (int64_t(piece.slot) * p.s_q + token) * p.h_q + head;
    float* out_row = p.out_partial + row * kDimV + col0;
#pragma unroll
    for (int j = 0; j < kCols / 8; ++j) {
      *reinterpret_cast<float2*>(out_row + 8 * j) =
          make_float2(tOrO(4 * j + 2 * h) * inv, tOrO(4 * j + 2 * h + 1) * inv);
    }
    if (with_lse && lane % 4 == 0) p.lse_partial[row] = lse;
  }
}

}  // namespace flashmla::kernels
