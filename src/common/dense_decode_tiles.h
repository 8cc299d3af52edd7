// How dense decode cuts the query rows of one KV head into 64-row tiles.
//
// The kernel treats the group = h_q / h_kv query heads that share a KV head,
// times the s_q query tokens, as the rows of one matrix multiplied by the
// request's keys. A tile holds heads_per_tile heads of tokens_per_tile
// consecutive tokens (row = token_in_tile * heads_per_tile + head_in_tile),
// so one TMA box of shape (64 dims, heads, tokens) fills it.
//
// Examples: h_q 128, s_q 1: two tiles of 64 heads. h_q 16, s_q 4: one tile
// of 4 tokens x 16 heads. h_q 9, s_q 2: one tile of 2 x 9 = 18 rows (the
// other 46 rows of the tile idle).
#pragma once

#include <cstdint>

#include "common/host_device.h"

namespace flashmla {

constexpr int32_t kDenseTileRows = 64;

struct DenseDecodeTiles {
  int32_t group;            // query heads per KV head
  int32_t heads_per_tile;   // <= 64
  int32_t tokens_per_tile;  // >= 1
  int32_t head_tiles;       // tiles across the group's heads
  int32_t token_tiles;      // tiles across s_q
  int32_t m_blocks;         // head_tiles * token_tiles
};

FLASHMLA_HOST_DEVICE constexpr DenseDecodeTiles dense_decode_tiles(int64_t s_q, int64_t h_q, int64_t h_kv) {
  DenseDecodeTiles t{};
  t.group = h_kv > 0 ? int32_t(h_q / h_kv) : 0;
  if (t.group <= 0 || s_q <= 0) return t;
  if (t.group >= kDenseTileRows) {
    t.heads_per_tile = kDenseTileRows;
    t.tokens_per_tile = 1;
    t.head_tiles = (t.group + kDenseTileRows - 1) / kDenseTileRows;
  } else {
    t.heads_per_tile = t.group;
    const int32_t fit = kDenseTileRows / t.group;
    t.tokens_per_tile = fit < s_q ? fit : int32_t(s_q);
    t.head_tiles = 1;
  }
  t.token_tiles = int32_t((s_q + t.tokens_per_tile - 1) / t.tokens_per_tile);
  t.m_blocks = t.head_tiles * t.token_tiles;
  return t;
}

}  // namespace flashmla
