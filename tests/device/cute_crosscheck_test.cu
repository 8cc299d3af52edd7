// Host-side cross-check of our pure layout functions against CuTe's own
// definitions (the headers the kernels also use): the 128-byte swizzle is
// CuTe's Swizzle<3,4,3> on byte offsets, our descriptor bits read back
// through CuTe's GmmaDescriptor bitfield as the intended fields, and the
// score fragment is the register P operand element by element (what
// make_p_operand in kernels/pv_half.cuh relies on).
#include <cstdint>

#include <cute/arch/mma_sm90_desc.hpp>
#include <cute/swizzle.hpp>
#include <cute/tensor.hpp>
#include <cutlass/numeric_types.h>
#include <gtest/gtest.h>

#include "device/swizzle.h"
#include "device/wgmma_layout.h"
#include "kernels/dense_decode/config.cuh"
#include "kernels/sparse_decode/config.cuh"

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

// Thread t's value i of the 64 x 64 score accumulator (Q K^T) sits at the
// same (row, key) as its value i of P as the A operand of the register P V
// (rows x keys), for every thread and value: converting element by element
// is the layout change.
template <typename Cfg>
void expect_score_fragment_is_p_operand() {
  using namespace cute;
  auto scores = make_identity_tensor(Shape<Int<Cfg::kBlockM>, Int<Cfg::kBlockN>>{});  // (row, key)
  typename Cfg::TiledMmaQK mma_qk;
  typename Cfg::TiledMmaPVRegP mma_pv;
  for (int t = 0; t < 128; ++t) {
    auto c = mma_qk.get_thread_slice(t).partition_C(scores);
    auto a = mma_pv.get_thread_slice(t).partition_A(scores);
    ASSERT_EQ(int(size(c)), 32);
    ASSERT_EQ(int(size(a)), 32);
    for (int i = 0; i < 32; ++i) {
      ASSERT_EQ(int(get<0>(c(i))), int(get<0>(a(i)))) << "thread " << t << " value " << i;
      ASSERT_EQ(int(get<1>(c(i))), int(get<1>(a(i)))) << "thread " << t << " value " << i;
      // And both agree with our own accumulator map.
      const FragmentCoord ours = wgmma_accumulator_coord(t, i);
      ASSERT_EQ(int(get<0>(c(i))), ours.row) << "thread " << t << " value " << i;
      ASSERT_EQ(int(get<1>(c(i))), ours.col) << "thread " << t << " value " << i;
    }
  }
}

TEST(CuteCrossCheck, ScoreFragmentIsTheRegisterPOperand) {
  expect_score_fragment_is_p_operand<kernels::dense_decode::Config<cutlass::bfloat16_t>>();
  expect_score_fragment_is_p_operand<kernels::dense_decode::Config<cutlass::half_t>>();
  expect_score_fragment_is_p_operand<kernels::sparse_decode::Config<KVFormat::kFp8V32>>();
  expect_score_fragment_is_p_operand<kernels::sparse_decode::Config<KVFormat::kFp8Model1>>();
}

}  // namespace
}  // namespace flashmla::device
