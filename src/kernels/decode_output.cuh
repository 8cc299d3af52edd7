// The output of one query row of a split-KV decode piece, shared by dense and
// sparse decode: a consumer warpgroup's half of the row from its wgmma
// accumulator, into `out` (the input dtype, and lse) when the request is not
// split, or into the fp32 partials the combine reads when it is.
//
// A thread's accumulator holds two adjacent columns of every 8. With
// kQuadExchange the quad of a row exchanges registers (shuffles) until each
// lane holds 16 consecutive bytes of `out`: one 16-byte store per lane, a
// quad writing 64 contiguous bytes of its row, instead of four 4-byte stores
// that fill half a sector each. Sparse decode takes it: at a piece's end its
// stores share the LSU queue with the producer's gather of the next piece
// (S01-S03 3.5-5% fewer cycles). Dense decode loads by TMA, its stores do
// not queue behind loads, and the shuffles only lengthened its epilogue
// (D12 2% more cycles), so it keeps the 4-byte stores.
#pragma once

#include <cstdint>

#include "device/pack.cuh"

namespace flashmla::kernels {

// One butterfly round of transpose_quad: the lanes whose `bit` is clear swap
// their v[hi0], v[hi1] for their partner's (lane ^ bit) v[lo0], v[lo1].
template <int kBit, int kLo0, int kLo1, int kHi0, int kHi1>
__device__ __forceinline__ void swap_with_partner(uint32_t (&v)[4], int lane) {
  const bool set = lane & kBit;
  const uint32_t got0 = __shfl_xor_sync(0xffffffffu, set ? v[kLo0] : v[kHi0], kBit);
  const uint32_t got1 = __shfl_xor_sync(0xffffffffu, set ? v[kLo1] : v[kHi1], kBit);
  if (set) {
    v[kLo0] = got0;
    v[kLo1] = got1;
  } else {
    v[kHi0] = got0;
    v[kHi1] = got1;
  }
}

// A 4 x 4 transpose within the quad: lane q enters with v[i] = its pair of
// columns of block i (of four 8-column blocks) and leaves with v[i] = lane
// i's pair of block q, i.e. the 8 columns of block q in order: the 2 x 2
// blocks of the matrix swap across lane pairs (q, q ^ 2), then the elements
// within them across (q, q ^ 1). Every lane of the warp must call it
// (full-mask shuffles).
__device__ __forceinline__ void transpose_quad(uint32_t (&v)[4], int lane) {
  swap_with_partner<2, 0, 1, 2, 3>(v, lane);
  swap_with_partner<1, 0, 2, 1, 3>(v, lane);
}

// Registers 4 j + 2 h and 4 j + 2 h + 1 of a 64 x kCols accumulator fragment
// hold columns col0 + 8 j and col0 + 8 j + 1 of the thread's row h (h a
// constant after unrolling, so the fragment stays in registers; col0 is the
// warpgroup's first column plus 2 (lane % 4)). `inv` is 1 / the row's
// denominator. A split piece without a slot stores nothing; a row that is
// not a query (`row_valid` false) stores nothing but still takes part in its
// warp's shuffles (with kQuadExchange), so every lane of the warp must call
// this. lse is stored by one thread of the quad when with_lse.
template <typename Element, int kCols, int kDimV, bool kQuadExchange, typename Params, typename Piece,
          typename Accumulator>
__device__ __forceinline__ void store_decode_row(const Params& p, const Piece& piece, bool row_valid, int32_t token,
                                                 int32_t head, int h, float inv, float lse, bool with_lse, int col0,
                                                 const Accumulator& tOrO) {
  static_assert(kCols % 32 == 0, "whole groups of four 8-column blocks");
  const int lane = threadIdx.x % 32;
  const int quad_lane = lane % 4;
  if (!row_valid) token = head = 0;  // keeps the unused addresses in range
  if (!piece.split) {
    Element* out_row = static_cast<Element*>(p.out) + int64_t(piece.req) * p.stride_out_b +
                       int64_t(token) * p.stride_out_s + int64_t(head) * p.stride_out_h + col0;
    // 16-byte stores need 16-byte aligned rows: the API validates out's base
    // and strides to 16 bytes (kTmaAlignment) for every decode op.
    if constexpr (kQuadExchange) {
      Element* quad_row = out_row - 2 * quad_lane;
#pragma unroll
      for (int g = 0; g < kCols / 32; ++g) {
        uint32_t v[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int j = 4 * g + i;
          v[i] = device::pack_pair<Element>(tOrO(4 * j + 2 * h) * inv, tOrO(4 * j + 2 * h + 1) * inv);
        }
        transpose_quad(v, lane);
        if (row_valid) {
          *reinterpret_cast<uint4*>(quad_row + 32 * g + 8 * quad_lane) = make_uint4(v[0], v[1], v[2], v[3]);
        }
        // Keeps ptxas from hoisting the next groups' shuffles above this
        // store: their temporaries made sparse decode's value warpgroup (160
        // registers) spill.
        __syncwarp();
      }
    } else if (row_valid) {
#pragma unroll
      for (int j = 0; j < kCols / 8; ++j) {
        *reinterpret_cast<uint32_t*>(out_row + 8 * j) =
            device::pack_pair<Element>(tOrO(4 * j + 2 * h) * inv, tOrO(4 * j + 2 * h + 1) * inv);
      }
    }
    if (row_valid && with_lse && quad_lane == 0) {
      p.lse[int64_t(piece.req) * p.stride_lse_b + int64_t(head) * p.stride_lse_h + token] = lse;
    }
  } else if (piece.slot >= 0 && row_valid) {
    // fp32 pairs: a quad already writes 32 contiguous bytes (a whole sector)
    // of its row per store. Exchanging pairs for 16-byte stores, as above,
    // keeps twice the values live and made ptxas spill in sparse decode.
    const int64_t row = (int64_t(piece.slot) * p.s_q + token) * p.h_q + head;
    float* out_row = p.out_partial + row * kDimV + col0;
#pragma unroll
    for (int j = 0; j < kCols / 8; ++j) {
      *reinterpret_cast<float2*>(out_row + 8 * j) =
          make_float2(tOrO(4 * j + 2 * h) * inv, tOrO(4 * j + 2 * h + 1) * inv);
    }
    if (with_lse && quad_lane == 0) p.lse_partial[row] = lse;
  }
}

}  // namespace flashmla::kernels
