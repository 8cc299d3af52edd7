// Walking a dense decode worker's range: its pieces (one request's blocks
// each) and the blocks of those pieces, with the lengths and block-table
// entries masked, never trusted.
#pragma once

#include <cstdint>

#include "common/decode_schedule.h"
#include "kernels/dense_decode/params.h"

namespace flashmla::kernels::dense_decode {

// One request's share of a worker: blocks [from, to) of request `req`.
struct Piece {
  int32_t req;
  int32_t from;
  int32_t to;
  bool split;    // another worker has a piece of the request too
  int32_t slot;  // partial-result slot when split
};

// Keys of request `req` that exist: cache_seqlens clamped to what the block
// table can address. Garbage lengths are masked, never trusted.
__device__ __forceinline__ int32_t request_length(const Params& p, int32_t req) {
  const int32_t len = p.cache_seqlens[req];
  const int64_t cap = int64_t(p.max_blocks_per_seq) * kBlockTokens;
  return len <= 0 ? 0 : (int64_t(len) > cap ? int32_t(cap) : len);
}

// Page of block `block` of request `req`, or -1 when the block holds no
// key or the block table names a page outside [0, num_blocks): such a block
// is neither loaded nor computed.
__device__ __forceinline__ int32_t live_page(const Params& p, int32_t req, int32_t block, int32_t len) {
  if (block >= work_blocks(len)) return -1;
  const int32_t page = p.block_table[int64_t(req) * p.stride_block_table_b + block];
  return (page >= 0 && page < p.num_blocks) ? page : -1;
}

// Walks the pieces of a worker's range in order.
struct PieceCursor {
  int32_t req;
  int32_t first_req;
  int32_t first_block;
  int32_t first_partial;
  int32_t end_req;
  int32_t end_block;

  __device__ explicit PieceCursor(const WorkerRange& range)
      : req(range.begin_req),
        first_req(range.begin_req),
        first_block(range.begin_block),
        first_partial(range.first_partial),
        end_req(range.end_req),
        end_block(range.end_block) {}

  __device__ bool next(const Params& p, const int32_t* split_begin, Piece& piece) {
    if (req >= p.b || req > end_req || (req == end_req && end_block == 0)) return false;
    const int32_t from = req == first_req ? first_block : 0;
    if (req == end_req && from >= end_block) return false;  // an empty range
    // Blocks past the (clamped) length hold no key: a garbage length planned
    // as huge costs no iterations here (the piece may become empty).
    const int32_t live_blocks = work_blocks(request_length(p, req));
    const int32_t to = req == end_req && end_block < live_blocks ? end_block : live_blocks;
    piece.req = req;
    piece.from = from;
    piece.to = to > from ? to : from;
    piece.split = split_begin[req + 1] - split_begin[req] > 1;
    piece.slot = req == first_req ? first_partial : split_begin[req];
    // A slot outside the workspace (an unplanned schedule) is never written.
    if (piece.split && (piece.slot < 0 || piece.slot >= p.num_slots)) piece.slot = -1;
    ++req;
    return true;
  }
};

// Walks the blocks of a worker's range (pieces without blocks skipped): the
// order in which the producer loads them.
struct BlockCursor {
  PieceCursor pieces;
  Piece piece;
  int32_t block;
  int32_t len;
  bool valid;

  __device__ BlockCursor(const WorkerRange& range, const Params& p, const int32_t* split_begin)
      : pieces(range) {
    valid = next_piece(p, split_begin);
  }
  __device__ bool next_piece(const Params& p, const int32_t* split_begin) {
    while (pieces.next(p, split_begin, piece)) {
      if (piece.to > piece.from) {
        block = piece.from;
        len = request_length(p, piece.req);
        return true;
      }
    }
    return false;
  }
  __device__ void advance(const Params& p, const int32_t* split_begin) {
    if (++block >= piece.to) valid = next_piece(p, split_begin);
  }
};

}  // namespace flashmla::kernels::dense_decode
