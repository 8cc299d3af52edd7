// Host-side cross-check of our pure layout functions against CuTe's own
// definitions (the headers the kernels also use): the 128-byte swizzle is
// CuTe's Swizzle<3,4,3> on byte offsets, and our descriptor bits read back
// through CuTe's GmmaDescriptor bitfield as the intended fields.
#include <cstdint>

#include <cute/arch/mma_sm90_desc.hpp>
#include <cute/swizzle.hpp>
#include <gtest/gtest.h>

#include "device/swizzle.h"
#include "device/wgmma_layout.h"

namespace flashmla::device {
namespace {

TEST(CuteCrossCheck, Swizzle128IsSwizzle343OnBytes) {
  const cute::Swizzle<3, 4, 3> cute_swizzle{};
  for (uint32_t offset = 0; offset < 16384; ++offset) {
    ASSERT_EQ(swizzle_128b(offset), uint32_t(cute_swizzle(int(offset)))) << "offset " << offset;
  }
}

TEST(CuteCrossCheck, DescriptorFieldsThroughGmmaDescriptor) {
  cute::GmmaDescriptor d(make_sw128_kmajor_descriptor(0x1A400));
  EXPECT_EQ(d.bitfield.start_address_, 0x1A40);
  EXPECT_EQ(d.bitfield.leading_byte_offset_, 1);
  EXPECT_EQ(d.bitfield.stride_byte_offset_, 64);
  EXPECT_EQ(d.bitfield.base_offset_, 0);
  EXPECT_EQ(d.bitfield.layout_type_, uint8_t(cute::SM90::GMMA::LayoutType::B128));

  cute::GmmaDescriptor e(pack_smem_descriptor(0x230, 0x1230, 0x4560, 5, SmemSwizzle::k32B));
  EXPECT_EQ(e.bitfield.start_address_, 0x23);
  EXPECT_EQ(e.bitfield.leading_byte_offset_, 0x123);
  EXPECT_EQ(e.bitfield.stride_byte_offset_, 0x456);
  EXPECT_EQ(e.bitfield.base_offset_, 5);
  EXPECT_EQ(e.bitfield.layout_type_, uint8_t(cute::SM90::GMMA::LayoutType::B32));
}

}  // namespace
}  // namespace flashmla::device
