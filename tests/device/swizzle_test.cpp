// The 128-byte swizzle function the kernels use to address TMA-written
// tiles (src/device/swizzle.h): known values, and the properties the
// hardware pattern has (a permutation of 16-byte chunks within each row,
// repeating every 8 rows).
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "device/swizzle.h"

namespace flashmla::device {
namespace {

constexpr uint32_t kTileBytes = 64 * 128;  // a 64 x 64 bf16 tile

TEST(Swizzle128, KnownOffsets) {
  EXPECT_EQ(swizzle_128b(0), 0u);
  EXPECT_EQ(swizzle_128b(5), 5u);                 // row 0 is not permuted
  EXPECT_EQ(swizzle_128b(128), 144u);             // row 1, chunk 0 -> chunk 1
  EXPECT_EQ(swizzle_128b(144), 128u);             // row 1, chunk 1 -> chunk 0
  EXPECT_EQ(swizzle_128b(7 * 128), 7u * 128 + 7 * 16);          // row 7, chunk 0 -> chunk 7
  EXPECT_EQ(swizzle_128b(1024), 1024u);           // row 8 repeats row 0
  EXPECT_EQ(swizzle_128b(9 * 128 + 3 * 16 + 5), 9u * 128 + 2 * 16 + 5);  // row 9 = row 1: chunk 3 -> 2
  EXPECT_EQ(swizzle_128b(63 * 128 + 7 * 16 + 15), 63u * 128 + 0 * 16 + 15);  // row 63 = row 7: 7 -> 0
}

TEST(Swizzle128, ElementOffsets) {
  EXPECT_EQ(sw128_element_offset<2>(0, 0), 0u);
  EXPECT_EQ(sw128_element_offset<2>(0, 8), 16u);
  EXPECT_EQ(sw128_element_offset<2>(1, 8), 128u);
  EXPECT_EQ(sw128_element_offset<2>(3, 63), 3u * 128 + 4 * 16 + 14);  // chunk 7 ^ 3 = 4
  EXPECT_EQ(sw128_element_offset<4>(2, 31), 2u * 128 + 5 * 16 + 12);  // chunk 7 ^ 2 = 5
  EXPECT_EQ(sw128_element_offset<1>(5, 127), 5u * 128 + 2 * 16 + 15);  // chunk 7 ^ 5 = 2
}

TEST(Swizzle128, PermutesChunksWithinEachRow) {
  std::vector<int> hits(kTileBytes, 0);
  for (uint32_t offset = 0; offset < kTileBytes; ++offset) {
    const uint32_t s = swizzle_128b(offset);
    ASSERT_LT(s, kTileBytes);
    EXPECT_EQ(s / 128, offset / 128) << "offset " << offset << " left its row";
    EXPECT_EQ(s % 16, offset % 16) << "offset " << offset << " moved within its 16-byte chunk";
    EXPECT_EQ(swizzle_128b(s), offset) << "not an involution at " << offset;
    ++hits[s];
  }
  for (uint32_t s = 0; s < kTileBytes; ++s) ASSERT_EQ(hits[s], 1) << "swizzled offset " << s;
}

// The reason for the swizzle: the 8 rows of one 16-byte column of an 8-row
// group land in 8 different 16-byte positions, i.e. in all 32 banks.
TEST(Swizzle128, ColumnOfEightRowsHitsEveryChunkPosition) {
  for (uint32_t chunk = 0; chunk < 8; ++chunk) {
    uint32_t seen = 0;
    for (uint32_t row = 0; row < 8; ++row) seen |= 1u << ((swizzle_128b(row * 128 + chunk * 16) % 128) / 16);
    EXPECT_EQ(seen, 0xFFu) << "chunk " << chunk;
  }
}

}  // namespace
}  // namespace flashmla::device
