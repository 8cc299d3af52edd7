// wgmma shared-memory descriptors and the accumulator fragment map
// (src/device/wgmma_layout.h): exact bit patterns and the coverage of the
// m64n64 result by 128 threads x 32 registers.
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "device/wgmma_layout.h"

namespace flashmla::device {
namespace {

uint32_t start_field(uint64_t d) { return uint32_t(d & 0x3FFF); }
uint32_t lbo_field(uint64_t d) { return uint32_t((d >> 16) & 0x3FFF); }
uint32_t sbo_field(uint64_t d) { return uint32_t((d >> 32) & 0x3FFF); }
uint32_t base_offset_field(uint64_t d) { return uint32_t((d >> 49) & 0x7); }
uint32_t swizzle_field(uint64_t d) { return uint32_t(d >> 62); }

TEST(WgmmaLayout, Sw128KMajorDescriptorBits) {
  // Start 0x400 >> 4 = 0x40, LBO 16 >> 4 = 1, SBO 1024 >> 4 = 64, 128B swizzle = 1.
  EXPECT_EQ(make_sw128_kmajor_descriptor(0x400), 0x4000004000010040ull);
  EXPECT_EQ(make_sw128_kmajor_descriptor(0), 0x4000004000010000ull);
  const uint64_t d = make_sw128_kmajor_descriptor(0x1A400);  // 105 KiB
  EXPECT_EQ(start_field(d), 0x1A40u);
  EXPECT_EQ(lbo_field(d), 1u);
  EXPECT_EQ(sbo_field(d), 64u);
  EXPECT_EQ(base_offset_field(d), 0u);
  EXPECT_EQ(swizzle_field(d), 1u);
}

TEST(WgmmaLayout, PackMasksEveryField) {
  EXPECT_EQ(pack_smem_descriptor(0xFFFFFFFFu, 0, 0, 0, SmemSwizzle::kNone), 0x3FFFull);
  EXPECT_EQ(pack_smem_descriptor(0, 0xFFFFFFFFu, 0, 0, SmemSwizzle::kNone), 0x3FFFull << 16);
  EXPECT_EQ(pack_smem_descriptor(0, 0, 0xFFFFFFFFu, 0, SmemSwizzle::kNone), 0x3FFFull << 32);
  EXPECT_EQ(pack_smem_descriptor(0, 0, 0, 0xFFu, SmemSwizzle::kNone), 0x7ull << 49);
  EXPECT_EQ(pack_smem_descriptor(0, 0, 0, 5, SmemSwizzle::kNone), 5ull << 49);
  EXPECT_EQ(pack_smem_descriptor(0, 0, 0, 0, SmemSwizzle::k64B), 2ull << 62);
  EXPECT_EQ(pack_smem_descriptor(0, 0, 0, 0, SmemSwizzle::k32B), 3ull << 62);
  // Bits 4..17 of the address only: 0x40000 (256 KiB) wraps to 0.
  EXPECT_EQ(start_field(pack_smem_descriptor(0x40010, 0, 0, 0, SmemSwizzle::k128B)), 1u);
}

// The four K=16 slices of a 64-column tile start 0, 32, 64, 96 bytes in;
// advancing touches only the start address, up to the top of shared memory.
TEST(WgmmaLayout, AdvanceAlongK) {
  for (uint32_t tile : {0u, 0x400u, 0x12000u, 0x37000u}) {
    const uint64_t d = make_sw128_kmajor_descriptor(tile);
    for (uint32_t k = 0; k < 4; ++k) {
      const uint64_t dk = advance_smem_descriptor(d, 32 * k);
      EXPECT_EQ(dk, make_sw128_kmajor_descriptor(tile + 32 * k)) << "tile " << tile << " k " << k;
      EXPECT_EQ(start_field(dk), (tile + 32 * k) >> 4);
      EXPECT_EQ(dk & ~uint64_t(0x3FFF), d & ~uint64_t(0x3FFF));
    }
  }
}

TEST(WgmmaLayout, AccumulatorKnownCoordinates) {
  auto at = [](int t, int i) {
    const FragmentCoord c = wgmma_accumulator_coord(t, i);
    return std::pair<int, int>(c.row, c.col);
  };
  EXPECT_EQ(at(0, 0), std::make_pair(0, 0));
  EXPECT_EQ(at(0, 1), std::make_pair(0, 1));
  EXPECT_EQ(at(0, 2), std::make_pair(8, 0));
  EXPECT_EQ(at(0, 3), std::make_pair(8, 1));
  EXPECT_EQ(at(0, 4), std::make_pair(0, 8));
  EXPECT_EQ(at(5, 3), std::make_pair(9, 3));      // lane 5: row 1 (+8), cols 2, 3
  EXPECT_EQ(at(37, 30), std::make_pair(25, 58));  // warp 1 lane 5, reg 30: row 16 + 1 + 8, col 56 + 2
  EXPECT_EQ(at(127, 31), std::make_pair(63, 63));
}

TEST(WgmmaLayout, AccumulatorCoversM64N64Once) {
  std::vector<int> hits(64 * 64, 0);
  for (int t = 0; t < 128; ++t) {
    for (int i = 0; i < 32; ++i) {
      const FragmentCoord c = wgmma_accumulator_coord(t, i);
      ASSERT_GE(c.row, 0);
      ASSERT_LT(c.row, 64);
      ASSERT_GE(c.col, 0);
      ASSERT_LT(c.col, 64);
      ++hits[c.row * 64 + c.col];
      // A warp owns 16 rows; the 4 lanes of a quad share their rows (row
      // reductions are two xor-shuffles).
      EXPECT_EQ(c.row / 16, t / 32);
      EXPECT_EQ(c.row, wgmma_accumulator_coord(t ^ 1, i).row);
      EXPECT_EQ(c.row, wgmma_accumulator_coord(t ^ 2, i).row);
    }
  }
  for (int e = 0; e < 64 * 64; ++e) ASSERT_EQ(hits[e], 1) << "row " << e / 64 << " col " << e % 64;
}

}  // namespace
}  // namespace flashmla::device
