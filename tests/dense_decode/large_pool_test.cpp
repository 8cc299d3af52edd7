// A KV pool of more than 2^31 elements (and more than 4 GiB) whose attended
// pages sit at its far end: every address the kernel forms for them needs
// 64-bit arithmetic (spec section 4). The host only builds the attended
// pages (a small problem); the pool is NaN everywhere else, so a wrapped
// address reads NaN or faults. Skips when the GPU lacks the memory.
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/random_values.h"
#include "dense_decode/dense_case.h"

namespace flashmla::test {
namespace {

struct LargePoolCase {
  std::string name;
  DenseDecodeConfig config;
  friend void PrintTo(const LargePoolCase& c, std::ostream* os) { *os << c.name; }
};

std::vector<LargePoolCase> large_pool_cases() {
  std::vector<LargePoolCase> cases;
  auto add = [&](std::string name, DenseDecodeConfig c) {
    c.seed = 5000 + cases.size();
    c.spare_blocks = 1;
    cases.push_back({std::move(name), std::move(c)});
  };
  add("B3Sq1H128Kv1Bf16", dense_config(3, 1, 128, 1, {130, 65, 1000}));
  // Two KV heads: the head offset is added to a far page address too.
  add("B2Sq2H16Kv2Fp16Causal", dense_config(2, 2, 16, 2, {200, 64}, DType::kFloat16, true));
  // An FP8 (V32) cache: byte strides, the sparse kernels' token addresses.
  for (int64_t h_q : {16, 128}) {
    DenseDecodeConfig c = dense_config(3, 1, h_q, 1, {130, 65, 1000});
    c.kv_format = KVFormat::kFp8V32;
    add("B3Sq1H" + std::to_string(h_q) + "Fp8V32", c);
  }
  return cases;
}

class GpuDenseDecodeLargePool : public ::testing::TestWithParam<LargePoolCase> {};

TEST_P(GpuDenseDecodeLargePool, PagesPastTwoToThe31ElementsAnd4GiB) {
  FLASHMLA_REQUIRE_GPU();
  const DenseDecodeProblem small = make_dense_decode_problem(GetParam().config);
  const DenseDecodeArgs& a = small.args;
  const int64_t element_bytes = a.kv_format == KVFormat::kFp8V32 ? 1 : 2;  // FP8 strides are in bytes
  const int64_t page_elements = a.stride_kv_block;
  // Enough pages that the pool passes 2^32 bytes (and so 2^31 elements)
  // even before the small problem's pages, which go last.
  const int64_t far_offset = (int64_t(1) << 32) / (page_elements * element_bytes) + 64;
  const int64_t num_blocks = far_offset + a.num_blocks;
  const int64_t pool_bytes = num_blocks * page_elements * element_bytes;
  ASSERT_GT(far_offset * page_elements, int64_t(1) << 31);
  ASSERT_GT(far_offset * page_elements * element_bytes, int64_t(1) << 32);

  size_t free_bytes = 0, total_bytes = 0;
  FLASHMLA_ASSERT_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes));
  if (int64_t(free_bytes) < pool_bytes + (int64_t(1) << 30)) {
    GTEST_SKIP() << "needs " << pool_bytes << " bytes for the pool, " << free_bytes << " free";
  }
  DeviceBuffer pool;
  if (!pool.allocate(size_t(pool_bytes))) {
    GTEST_SKIP() << "cudaMalloc of " << pool_bytes << " bytes failed";
  }
  FLASHMLA_ASSERT_CUDA(pool.fill_bytes(0xFF));  // NaN: a wrapped address poisons the result
  auto* far_pages = static_cast<unsigned char*>(pool.get()) + far_offset * page_elements * element_bytes;
  ASSERT_EQ(int64_t(small.kv.size()), a.num_blocks * page_elements * element_bytes);
  FLASHMLA_ASSERT_CUDA(cudaMemcpy(far_pages, small.kv.data(), small.kv.size(), cudaMemcpyHostToDevice));

  // The small problem's block table, its pages moved by far_offset; unused
  // slots hold ids outside [0, num_blocks) of the big pool.
  std::vector<int32_t> table = small.block_table;
  const std::vector<int32_t> zoo = invalid_page_zoo(num_blocks);
  for (int64_t i = 0; i < a.b; ++i) {
    const int64_t used = (int64_t(small.cache_seqlens[size_t(i)]) + a.page_block_size - 1) / a.page_block_size;
    for (int64_t c = 0; c < a.stride_block_table_b; ++c) {
      int32_t& id = table[size_t(i * a.stride_block_table_b + c)];
      id = c < used ? int32_t(id + far_offset) : zoo[size_t((i + c) % int64_t(zoo.size()))];
    }
  }

  DeviceMirror<DenseDecodeArgs> mirror = to_device(small);
  ASSERT_TRUE(mirror.ok()) << mirror.error();
  DeviceBuffer device_table = to_device(table);
  ASSERT_NE(device_table.get(), nullptr);
  mirror.args.kv = pool.get();
  mirror.args.num_blocks = num_blocks;
  mirror.args.block_table = device_table.as<const int32_t>();

  HostOutputs got;
  ASSERT_NO_FATAL_FAILURE(plan_and_run(mirror, 0, &got));
  HostOutputs expected;
  ASSERT_NO_FATAL_FAILURE(reference_outputs(small, &expected));  // same keys, page ids irrelevant
  expect_matches_reference(small, got, expected, "far pages of a " + std::to_string(pool_bytes) + "-byte pool");
}

INSTANTIATE_TEST_SUITE_P(Cases, GpuDenseDecodeLargePool, ::testing::ValuesIn(large_pool_cases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace flashmla::test
