// A KV cache of more than 4 GiB whose used tokens sit at its far end: every
// byte address the kernel forms for them needs 64-bit arithmetic (spec
// section 4), while the indices (page * page_block_size + row) still fit in
// int32. The host builds only the used pages (a small problem); the cache is
// NaN everywhere else, so a wrapped address reads NaN or faults. Skips when
// the GPU lacks the memory.
#include <climits>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/random_values.h"
#include "sparse_decode/sparse_case.h"

namespace flashmla::test::sd {
namespace {

struct LargeCacheCase {
  std::string name;
  SparseDecodeConfig config;
  friend void PrintTo(const LargeCacheCase& c, std::ostream* os) { *os << c.name; }
};

std::vector<LargeCacheCase> large_cache_cases() {
  std::vector<LargeCacheCase> cases;
  auto add = [&](std::string name, SparseDecodeConfig c) {
    c.seed = 9800 + cases.size();
    cases.push_back({std::move(name), std::move(c)});
  };
  add("V32_B3Sq1H64K2048P53", [] {
    auto c = sparse_config(KVFormat::kFp8V32, 3, 1, 64, 2048, 53);
    c.with_topk_length = true;
    c.topk_length = {2048, 700, 0};
    return c;
  }());
  // MODEL1's scale region lies at 576 * P inside each page: far pages too.
  add("Model1_B2Sq2H16K128P64_Extra64P2", [] {
    auto c = sparse_config(KVFormat::kFp8Model1, 2, 2, 16, 128, 64);
    c.extra_topk = 64;
    c.extra_page_block_size = 2;
    return c;
  }());
  return cases;
}

// Moves the valid indices by `shift` tokens and
// maps the zoo of the old capacity onto the zoo of the new one.
void shift_indices(std::vector<int32_t>& indices, int64_t old_capacity, int64_t new_capacity, int64_t shift) {
  for (int32_t& index : indices) {
    if (index == INT32_MAX) continue;  // zoo value and row padding alike
    if (index >= 0 && index < old_capacity) {
      index = int32_t(index + shift);
    } else if (index == old_capacity) {
      index = int32_t(new_capacity);
    } else if (index == old_capacity + 1) {
      index = int32_t(new_capacity + 1);
    }
  }
}

class GpuSparseDecodeLargeCache : public ::testing::TestWithParam<LargeCacheCase> {};

TEST_P(GpuSparseDecodeLargeCache, UsedTokensPastFourGiB) {
  FLASHMLA_REQUIRE_GPU();
  const SparseDecodeProblem small = make_sparse_case_problem(GetParam().config);
  const SparseDecodeArgs& a = small.args;
  const int64_t page_bytes = a.stride_kv_block;
  // Enough NaN pages before the small problem's that its first page starts
  // past 2^32 bytes.
  const int64_t far_offset = (int64_t(1) << 32) / page_bytes + 64;
  const int64_t num_blocks = far_offset + a.num_blocks;
  const int64_t pool_bytes = num_blocks * page_bytes;
  ASSERT_GT(far_offset * page_bytes, int64_t(1) << 32);
  ASSERT_LE(num_blocks * a.page_block_size + 1, int64_t(INT32_MAX)) << "indices must stay int32";

  size_t free_bytes = 0, total_bytes = 0;
  FLASHMLA_ASSERT_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes));
  if (int64_t(free_bytes) < pool_bytes + (int64_t(1) << 30)) {
    GTEST_SKIP() << "needs " << pool_bytes << " bytes for the cache, " << free_bytes << " free";
  }
  DeviceBuffer pool;
  if (!pool.allocate(size_t(pool_bytes))) GTEST_SKIP() << "cudaMalloc of " << pool_bytes << " bytes failed";
  FLASHMLA_ASSERT_CUDA(pool.fill_bytes(0xFF));  // NaN: a wrapped address poisons the result
  ASSERT_EQ(int64_t(small.kv.size()), a.num_blocks * page_bytes);
  FLASHMLA_ASSERT_CUDA(cudaMemcpy(static_cast<unsigned char*>(pool.get()) + far_offset * page_bytes,
                                  small.kv.data(), small.kv.size(), cudaMemcpyHostToDevice));

  std::vector<int32_t> indices = small.indices;
  shift_indices(indices, a.num_blocks * a.page_block_size, num_blocks * a.page_block_size,
                far_offset * a.page_block_size);

  DeviceMirror<SparseDecodeArgs> mirror = to_device(small);
  ASSERT_TRUE(mirror.ok()) << mirror.error();
  DeviceBuffer device_indices = to_device(indices);
  ASSERT_NE(device_indices.get(), nullptr);
  mirror.args.kv = pool.get();
  mirror.args.num_blocks = num_blocks;
  mirror.args.indices = device_indices.as<const int32_t>();

  HostOutputs got;
  ASSERT_NO_FATAL_FAILURE(plan_and_run(mirror, 0, &got));
  HostOutputs expected;
  ASSERT_NO_FATAL_FAILURE(reference_outputs(small, &expected));  // same keys at other addresses
  expect_matches_reference(small, got, expected, "far pages of a " + std::to_string(pool_bytes) + "-byte cache");
}

INSTANTIATE_TEST_SUITE_P(Cases, GpuSparseDecodeLargeCache, ::testing::ValuesIn(large_cache_cases()),
                         [](const auto& info) { return info.param.name; });

// CPU check of the index shift: valid indices move by the offset, the zoo of
// the small capacity becomes the zoo of the large one, padding stays.
TEST(SparseDecodeLargeCacheCases, ShiftKeepsValidityOfEveryIndex) {
  const int64_t old_cap = 100, new_cap = 1000, shift = 900;
  std::vector<int32_t> v = {0, 99, -1, -2, INT32_MIN, 100, 101, INT32_MAX, 50};
  shift_indices(v, old_cap, new_cap, shift);
  const std::vector<int32_t> want = {900, 999, -1, -2, INT32_MIN, 1000, 1001, INT32_MAX, 950};
  EXPECT_EQ(v, want);
}

}  // namespace
}  // namespace flashmla::test::sd
