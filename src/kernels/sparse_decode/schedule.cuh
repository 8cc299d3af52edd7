// How a worker's range of the decode schedule maps onto the selected tokens
// of sparse decode: a request's blocks are its main-cache index blocks
// (64 positions each, up to its topk_length) followed by its extra-cache
// blocks, exactly as plan_decode counted them.
#pragma once

#include <cstdint>

#include "common/decode_schedule.h"
#include "kernels/sparse_decode/params.h"

namespace flashmla::kernels::sparse_decode {

// Positions of a request in use: topk_length clamped to [0, topk] (a device
// value, never trusted; the planner clamps the same way), or all of topk.
__device__ __forceinline__ int32_t used_length(const CacheParams& c, int32_t req) {
  if (c.topk <= 0) return 0;
  if (c.lengths == nullptr) return c.topk;
  const int32_t len = c.lengths[req];
  return len <= 0 ? 0 : (len > c.topk ? c.topk : len);
}

// The blocks of one request.
struct RequestBlocks {
  int32_t main_len;
  int32_t extra_len;
  int32_t main_blocks;
  int32_t total;
};

__device__ __forceinline__ RequestBlocks request_blocks(const Params& p, int32_t req) {
  RequestBlocks r;
  r.main_len = used_length(p.main, req);
  r.extra_len = used_length(p.extra, req);
  r.main_blocks = work_blocks(r.main_len);
  r.total = r.main_blocks + work_blocks(r.extra_len);
  return r;
}

// One request's share of a worker: blocks [from, to) of request `req`.
struct Piece {
  int32_t req;
  int32_t from;
  int32_t to;
  bool split;    // another worker has a piece of the request too
  int32_t slot;  // partial-result slot when split (-1: outside the workspace)
};

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
    if (req == end_req && from >= end_block) return false;
    const int32_t blocks = request_blocks(p, req).total;
    const int32_t to = req == end_req && end_block < blocks ? end_block : blocks;
    piece.req = req;
    piece.from = from;
    piece.to = to > from ? to : from;
    piece.split = split_begin[req + 1] - split_begin[req] > 1;
    piece.slot = req == first_req ? first_partial : split_begin[req];
    if (piece.split && (piece.slot < 0 || piece.slot >= p.num_slots)) piece.slot = -1;
    ++req;
    return true;
  }

  // The next piece that has blocks (pieces without blocks are skipped).
  __device__ bool next_with_blocks(const Params& p, const int32_t* split_begin, Piece& piece) {
    while (next(p, split_begin, piece)) {
      if (piece.to > piece.from) return true;
    }
    return false;
  }
};

// Walks the blocks of a worker's range (pieces without blocks skipped): the
// order in which the producer fills the stages and the consumers drain them.
struct BlockCursor {
  PieceCursor pieces;
  Piece piece;
  RequestBlocks blocks;
  int32_t block;
  bool valid;

  __device__ BlockCursor(const WorkerRange& range, const Params& p, const int32_t* split_begin)
      : pieces(range) {
    valid = next_piece(p, split_begin);
  }
  __device__ bool next_piece(const Params& p, const int32_t* split_begin) {
    if (!pieces.next_with_blocks(p, split_begin, piece)) return false;
    block = piece.from;
    blocks = request_blocks(p, piece.req);
    return true;
  }
  __device__ void advance(const Params& p, const int32_t* split_begin) {
    if (++block >= piece.to) valid = next_piece(p, split_begin);
  }
};

// A selected token: its page and row, or no page (nothing to load).
struct TokenRef {
  const uint8_t* page;  // nullptr: not a selected key (no address was formed)
  int32_t row;
  int32_t page_block_size;
};

// A block as the producer's pipeline carries it: the raw index of each of a
// thread's tokens is loaded one or two iterations before it is used, so no
// iteration waits on a dependent index load (a full memory latency).
enum : uint32_t {
  kSlotLive = 1,   // a block of the worker's range
  kSlotMain = 2,   // of the main cache (else the extra cache)
};

template <int kTokens>
struct BlockSlot {
  int32_t req;
  uint32_t flags;
  int32_t index[kTokens];  // -1 past topk_length (masked like any invalid index)
};

// A kernel configuration whose positions are a request's tokens in order,
// read through the block table (dense decode over a V32 cache,
// CacheParams). A separate instantiation: with a run-time branch in
// fetch_slot, sparse decode's 64-head producer took 3% longer (S03).
template <typename Base>
struct PagedPositions : Base {
  static constexpr bool kPagedPositions = true;
};

// Issues the index loads of the cursor's block for tokens tok[] and moves
// the cursor on (kPaged: its block-table entry). Nothing waits for the
// loads here.
template <int kTokens, bool kPaged>
__device__ __forceinline__ BlockSlot<kTokens> fetch_slot(const Params& p, BlockCursor& c, const int32_t* split_begin,
                                                         int32_t s, const int (&tok)[kTokens]) {
  BlockSlot<kTokens> slot;
  slot.req = 0;
  slot.flags = 0;
#pragma unroll
  for (int t = 0; t < kTokens; ++t) slot.index[t] = -1;
  if (!c.valid) return slot;
  const RequestBlocks& rb = c.blocks;
  const bool is_main = c.block < rb.main_blocks;
  const int32_t len = is_main ? rb.main_len : rb.extra_len;
  const int32_t pos0 = (is_main ? c.block : c.block - rb.main_blocks) * 64;
  if constexpr (kPaged) {
    // Dense decode (main cache only): position pos is the request's token
    // pos, row pos % 64 of page block_table[req][pos / 64]; query token s
    // sees the first `visible` of them (causal: bottom-right aligned). A
    // page id outside [0, num_pages) masks its block; nothing past
    // `visible` reads the block table.
    const int32_t visible = p.causal ? len - (p.s_q - 1 - s) : len;
    const int32_t page =
        pos0 < visible ? p.main.block_table[int64_t(c.piece.req) * p.main.stride_block_table_b + c.block] : -1;
    const bool live_page = page >= 0 && page < p.main.num_pages;
#pragma unroll
    for (int t = 0; t < kTokens; ++t) {
      if (live_page && pos0 + tok[t] < visible) slot.index[t] = page * 64 + tok[t];
    }
  } else {
    const int32_t* indices = is_main ? p.main.indices : p.extra.indices;
    const int64_t row = int64_t(c.piece.req) * (is_main ? p.main.stride_indices_b : p.extra.stride_indices_b) +
                        int64_t(s) * (is_main ? p.main.stride_indices_s : p.extra.stride_indices_s);
#pragma unroll
    for (int t = 0; t < kTokens; ++t) {
      const int32_t pos = pos0 + tok[t];
      if (pos < len) slot.index[t] = indices[row + pos];  // past topk_length: not even read
    }
  }
  slot.req = c.piece.req;
  slot.flags = kSlotLive | (is_main ? kSlotMain : 0u);
  c.advance(p, split_begin);
  return slot;
}

// The token of a slot's index: masked (page nullptr) unless the index lies
// in [0, capacity) of the slot's cache; no address is formed otherwise.
template <int kTokens>
__device__ __forceinline__ TokenRef resolve_slot(const Params& p, const BlockSlot<kTokens>& slot, int t) {
  const bool is_main = (slot.flags & kSlotMain) != 0;
  const int32_t page_block_size = is_main ? p.main.page_block_size : p.extra.page_block_size;
  TokenRef r{nullptr, 0, page_block_size};
  const int32_t index = slot.index[t];
  const int64_t capacity = is_main ? p.main.capacity : p.extra.capacity;
  if ((slot.flags & kSlotLive) == 0 || index < 0 || int64_t(index) >= capacity) return r;
  const int32_t page = index / page_block_size;
  r.row = index - page * page_block_size;
  r.page = (is_main ? p.main.kv : p.extra.kv) +
           int64_t(page) * (is_main ? p.main.stride_kv_block : p.extra.stride_kv_block);
  return r;
}

// Whether a slot's token t is a selected key (resolve_slot would give a
// page), without the division that forms its address.
template <int kTokens>
__device__ __forceinline__ bool slot_selects(const Params& p, const BlockSlot<kTokens>& slot, int t) {
  const bool is_main = (slot.flags & kSlotMain) != 0;
  const int64_t capacity = is_main ? p.main.capacity : p.extra.capacity;
  const int32_t index = slot.index[t];
  return (slot.flags & kSlotLive) != 0 && index >= 0 && int64_t(index) < capacity;
}

}  // namespace flashmla::kernels::sparse_decode
