// The host side of TMA (src/device/tma_descriptor.h): the tensor-map
// parameters of the paged KV pool and of a Q tile, the checks that stand in
// for the driver's, and encoding without a driver.
#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#include "common/gpu.h"
#include "device/tma_descriptor.h"

namespace flashmla::device {
namespace {

// A 16-byte-aligned address that is never dereferenced by validation.
const void* const kAlignedAddress = reinterpret_cast<const void*>(uintptr_t(0x7f0000010000));

::testing::AssertionResult rejected_mentioning(const Status& s, const std::string& what) {
  if (s.code != StatusCode::kInvalidArgument) {
    return ::testing::AssertionFailure() << "expected kInvalidArgument, got " << to_string(s.code) << " ("
                                         << s.what() << ")";
  }
  if (std::string(s.what()).find(what) == std::string::npos) {
    return ::testing::AssertionFailure() << "message \"" << s.what() << "\" does not mention \"" << what << "\"";
  }
  return ::testing::AssertionSuccess();
}

TEST(TmaDescriptor, PagedKvPoolParams) {
  // [num_blocks, 64, 576] bf16, contiguous; one page, 64 columns per load.
  const TensorMapParams p = bf16_paged_kv_tile_params(60000, 64, 576, 576, 64 * 576, 64);
  EXPECT_EQ(p.rank, 3);
  EXPECT_EQ(p.dtype, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16);
  EXPECT_EQ(p.element_bytes, 2);
  EXPECT_EQ(p.dims[0], 576u);
  EXPECT_EQ(p.dims[1], 64u);
  EXPECT_EQ(p.dims[2], 60000u);
  EXPECT_EQ(p.strides_bytes[0], 1152u);   // one token
  EXPECT_EQ(p.strides_bytes[1], 73728u);  // one page
  EXPECT_EQ(p.box[0], 64u);
  EXPECT_EQ(p.box[1], 64u);
  EXPECT_EQ(p.box[2], 1u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(p.element_strides[i], 1u);
  EXPECT_EQ(p.swizzle, CU_TENSOR_MAP_SWIZZLE_128B);
  EXPECT_EQ(p.box_bytes(), 8192);
  // The last page starts past 2^32 bytes (2^31 elements): 64-bit strides are
  // what reaches it.
  const uint64_t last_page_byte = uint64_t(p.dims[2] - 1) * p.strides_bytes[1];
  EXPECT_EQ(last_page_byte, 4423606272ull);
  EXPECT_GT(last_page_byte, uint64_t(1) << 32);
  EXPECT_TRUE(validate_tensor_map(p, kAlignedAddress).ok()) << validate_tensor_map(p, kAlignedAddress).what();
}

TEST(TmaDescriptor, PagedKvPoolWithPaddedTokens) {
  // Tokens 584 elements apart (1168 bytes, a multiple of 16), pages 65 tokens apart.
  const TensorMapParams p = bf16_paged_kv_tile_params(10, 64, 576, 584, 65 * 584, 64);
  EXPECT_EQ(p.dims[0], 576u);
  EXPECT_EQ(p.dims[1], 64u);
  EXPECT_EQ(p.dims[2], 10u);
  EXPECT_EQ(p.strides_bytes[0], 1168u);
  EXPECT_EQ(p.strides_bytes[1], 75920u);
  EXPECT_TRUE(validate_tensor_map(p, kAlignedAddress).ok()) << validate_tensor_map(p, kAlignedAddress).what();
}

TEST(TmaDescriptor, MatrixTileParams) {
  const TensorMapParams p = bf16_matrix_tile_params(64, 576, 576, 64, 64);
  EXPECT_EQ(p.rank, 2);
  EXPECT_EQ(p.dims[0], 576u);
  EXPECT_EQ(p.dims[1], 64u);
  EXPECT_EQ(p.strides_bytes[0], 1152u);
  EXPECT_EQ(p.box[0], 64u);
  EXPECT_EQ(p.box[1], 64u);
  EXPECT_EQ(p.box_bytes(), 8192);
  EXPECT_TRUE(validate_tensor_map(p, kAlignedAddress).ok());
}

TEST(TmaDescriptor, RejectsWhatTheDriverRejects) {
  const TensorMapParams good = bf16_paged_kv_tile_params(37, 64, 576, 576, 64 * 576, 64);
  ASSERT_TRUE(validate_tensor_map(good, kAlignedAddress).ok());

  // Token stride 577 elements = 1154 bytes: not a multiple of 16.
  EXPECT_TRUE(rejected_mentioning(
      validate_tensor_map(bf16_paged_kv_tile_params(37, 64, 576, 577, 64 * 577, 64), kAlignedAddress),
      "strides_bytes[0]"));
  // 128 bf16 columns = 256 bytes: wider than the 128-byte swizzle span.
  EXPECT_TRUE(rejected_mentioning(
      validate_tensor_map(bf16_paged_kv_tile_params(37, 64, 576, 576, 64 * 576, 128), kAlignedAddress),
      "swizzle"));
  // 4 bf16 columns = 8 bytes: not a whole number of 16 bytes.
  EXPECT_TRUE(rejected_mentioning(
      validate_tensor_map(bf16_paged_kv_tile_params(37, 64, 576, 576, 64 * 576, 4), kAlignedAddress),
      "multiple of 16"));
  // A 512-token page cannot be one box (at most 256 per dimension).
  EXPECT_TRUE(rejected_mentioning(
      validate_tensor_map(bf16_paged_kv_tile_params(37, 512, 576, 576, 512 * 576, 64), kAlignedAddress),
      "box[1]"));
  // Empty pool, pool beyond 2^32 pages, negative head dim.
  EXPECT_TRUE(rejected_mentioning(
      validate_tensor_map(bf16_paged_kv_tile_params(0, 64, 576, 576, 64 * 576, 64), kAlignedAddress), "dims[2]"));
  EXPECT_TRUE(rejected_mentioning(
      validate_tensor_map(bf16_paged_kv_tile_params((int64_t(1) << 32) + 1, 64, 576, 576, 64 * 576, 64),
                          kAlignedAddress),
      "dims[2]"));
  EXPECT_TRUE(rejected_mentioning(
      validate_tensor_map(bf16_paged_kv_tile_params(37, 64, -576, 576, 64 * 576, 64), kAlignedAddress),
      "dims[0]"));
  // Page stride of 2^40 bytes.
  EXPECT_TRUE(rejected_mentioning(
      validate_tensor_map(bf16_paged_kv_tile_params(37, 64, 576, 576, int64_t(1) << 39, 64), kAlignedAddress),
      "strides_bytes[1]"));
  // Misaligned and null addresses.
  EXPECT_TRUE(rejected_mentioning(
      validate_tensor_map(good, static_cast<const char*>(kAlignedAddress) + 8), "16-byte aligned"));
  EXPECT_TRUE(rejected_mentioning(validate_tensor_map(good, nullptr), "16-byte aligned"));

  TensorMapParams p = good;
  p.element_strides[1] = 9;
  EXPECT_TRUE(rejected_mentioning(validate_tensor_map(p, kAlignedAddress), "element_strides[1]"));
  p = good;
  p.rank = 6;
  EXPECT_TRUE(rejected_mentioning(validate_tensor_map(p, kAlignedAddress), "rank"));
  p = good;
  p.dtype = CU_TENSOR_MAP_DATA_TYPE_FLOAT32;  // element_bytes still 2
  EXPECT_TRUE(rejected_mentioning(validate_tensor_map(p, kAlignedAddress), "element_bytes"));
}

TEST(TmaDescriptor, NoSwizzleAllowsWideBoxes) {
  TensorMapParams p = bf16_paged_kv_tile_params(37, 64, 576, 576, 64 * 576, 128);
  p.swizzle = CU_TENSOR_MAP_SWIZZLE_NONE;
  EXPECT_TRUE(validate_tensor_map(p, kAlignedAddress).ok()) << validate_tensor_map(p, kAlignedAddress).what();
  EXPECT_EQ(p.box_bytes(), 16384);
}

TEST(TmaDescriptor, EncodeRejectsBadParamsBeforeTheDriver) {
  CUtensorMap map;
  const TensorMapParams bad = bf16_paged_kv_tile_params(37, 64, 576, 577, 64 * 577, 64);
  EXPECT_EQ(encode_tensor_map(bad, kAlignedAddress, &map).code, StatusCode::kInvalidArgument);
  const TensorMapParams good = bf16_paged_kv_tile_params(37, 64, 576, 576, 64 * 576, 64);
  EXPECT_EQ(encode_tensor_map(good, kAlignedAddress, nullptr).code, StatusCode::kInvalidArgument);
}

// cuTensorMapEncodeTiled only computes (it does not touch the address), so a
// driver is all it needs. Without one (CI), encoding reports a CUDA error
// with a message instead of failing to start or crashing.
TEST(TmaDescriptor, EncodeReportsWhetherTheDriverIsThere) {
  CUtensorMap map;
  const TensorMapParams p = bf16_paged_kv_tile_params(60000, 64, 576, 576, 64 * 576, 64);
  const Status s = encode_tensor_map(p, kAlignedAddress, &map);
  if (flashmla::test::gpu_available()) {
    EXPECT_TRUE(s.ok()) << s.what();
  } else if (!s.ok()) {
    EXPECT_EQ(s.code, StatusCode::kCudaError);
    EXPECT_NE(std::string(s.what()).find("cuTensorMapEncodeTiled"), std::string::npos) << s.what();
  }
}

}  // namespace
}  // namespace flashmla::device
