// combine on the GPU against the CPU reference: random partials, empty
// partials whose out is NaN (never read), sinks, every dtype pair.
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "common/gpu.h"
#include "flashmla/flashmla.h"
#include "flashmla_ref/numeric.h"
#include "flashmla_ref/reference.h"

namespace flashmla {
namespace {

using test::DeviceBuffer;

constexpr float kInf = std::numeric_limits<float>::infinity();

float read_out(const std::vector<uint16_t>& raw16, const std::vector<float>& raw32, DType dtype, size_t k) {
  if (dtype == DType::kFloat32) return raw32[k];
  return dtype == DType::kBFloat16 ? ref::bf16_to_float(raw16[k]) : ref::fp16_to_float(raw16[k]);
}

struct CombineCase {
  int64_t num_splits, b, s_q, h_q;
  DType partial_dtype, dtype;
  bool sink;
  double empty_fraction;
};

void run_combine_case(const CombineCase& c) {
  const int64_t d_v = 512;
  const int64_t rows = c.b * c.s_q * c.h_q;
  std::mt19937 rng(uint32_t(c.num_splits * 131 + c.b * 7 + c.h_q));
  std::normal_distribution<float> normal(0.f, 1.f);
  std::uniform_real_distribution<float> uniform(0.f, 1.f);

  // Partials [split, b, s_q, h_q, d_v]; lse [split, b, h_q, s_q].
  const size_t partial_elems = size_t(c.num_splits * rows * d_v);
  std::vector<float> partial32(c.partial_dtype == DType::kFloat32 ? partial_elems : 0);
  std::vector<uint16_t> partial16(c.partial_dtype == DType::kFloat32 ? 0 : partial_elems);
  std::vector<float> lse_partial(static_cast<size_t>(c.num_splits * rows));
  for (auto& v : lse_partial) v = uniform(rng) < c.empty_fraction ? -kInf : 8.f * normal(rng);
  for (int64_t s = 0; s < c.num_splits; ++s) {
    for (int64_t i = 0; i < c.b; ++i) {
      for (int64_t j = 0; j < c.s_q; ++j) {
        for (int64_t h = 0; h < c.h_q; ++h) {
          const bool empty = lse_partial[size_t(((s * c.b + i) * c.h_q + h) * c.s_q + j)] == -kInf;
          for (int64_t d = 0; d < d_v; ++d) {
            const size_t k = size_t((((s * c.b + i) * c.s_q + j) * c.h_q + h) * d_v + d);
            const float v = empty ? std::nanf("") : 0.1f * normal(rng);
            if (c.partial_dtype == DType::kFloat32) partial32[k] = v;
            else partial16[k] = c.partial_dtype == DType::kBFloat16 ? ref::float_to_bf16(v) : ref::float_to_fp16(v);
          }
        }
      }
    }
  }
  std::vector<float> sink(static_cast<size_t>(c.h_q));
  for (size_t h = 0; h < sink.size(); ++h) sink[h] = h % 3 == 0 ? -kInf : h % 3 == 1 ? normal(rng) : (h % 7 == 2 ? kInf : 2.f);

  CombineArgs args;
  args.num_splits = c.num_splits;
  args.b = c.b;
  args.s_q = c.s_q;
  args.h_q = c.h_q;
  args.d_v = d_v;
  args.partial_dtype = c.partial_dtype;
  args.stride_out_partial_h = d_v;
  args.stride_out_partial_s = c.h_q * d_v;
  args.stride_out_partial_b = c.s_q * c.h_q * d_v;
  args.stride_out_partial_split = c.b * c.s_q * c.h_q * d_v;
  args.stride_lse_partial_h = c.s_q;
  args.stride_lse_partial_b = c.h_q * c.s_q;
  args.stride_lse_partial_split = c.b * c.h_q * c.s_q;
  args.dtype = c.dtype;
  args.stride_out_h = d_v;
  args.stride_out_s = c.h_q * d_v;
  args.stride_out_b = c.s_q * c.h_q * d_v;
  args.stride_lse_h = c.s_q;
  args.stride_lse_b = c.h_q * c.s_q;

  // Reference.
  const bool out32 = c.dtype == DType::kFloat32;
  std::vector<float> ref_out32(out32 ? size_t(rows * d_v) : 0);
  std::vector<uint16_t> ref_out16(out32 ? 0 : size_t(rows * d_v));
  std::vector<float> ref_lse(static_cast<size_t>(rows));
  CombineArgs host = args;
  host.out_partial = c.partial_dtype == DType::kFloat32 ? static_cast<const void*>(partial32.data())
                                                        : static_cast<const void*>(partial16.data());
  host.lse_partial = lse_partial.data();
  host.attn_sink = c.sink ? sink.data() : nullptr;
  host.out = out32 ? static_cast<void*>(ref_out32.data()) : static_cast<void*>(ref_out16.data());
  host.lse = ref_lse.data();
  ASSERT_TRUE(ref::combine(host).ok());

  // GPU, outputs poisoned.
  DeviceBuffer d_partial = c.partial_dtype == DType::kFloat32 ? test::to_device(partial32) : test::to_device(partial16);
  DeviceBuffer d_lse_partial = test::to_device(lse_partial);
  DeviceBuffer d_sink = test::to_device(sink);
  DeviceBuffer d_out(static_cast<size_t>(rows * d_v) * (out32 ? 4 : 2));
  DeviceBuffer d_lse(size_t(rows) * 4);
  FLASHMLA_ASSERT_CUDA(d_out.fill_bytes(0xFF));
  FLASHMLA_ASSERT_CUDA(d_lse.fill_bytes(0xFF));
  args.out_partial = d_partial.get();
  args.lse_partial = d_lse_partial.as<float>();
  args.attn_sink = c.sink ? d_sink.as<float>() : nullptr;
  args.out = d_out.get();
  args.lse = d_lse.as<float>();
  Status st = run(args, nullptr, 0, nullptr);
  ASSERT_TRUE(st.ok()) << st.what();
  FLASHMLA_ASSERT_CUDA(cudaDeviceSynchronize());

  std::vector<float> got_out32(ref_out32.size());
  std::vector<uint16_t> got_out16(ref_out16.size());
  std::vector<float> got_lse(ref_lse.size());
  if (out32) FLASHMLA_ASSERT_CUDA(d_out.download(got_out32));
  else FLASHMLA_ASSERT_CUDA(d_out.download(got_out16));
  FLASHMLA_ASSERT_CUDA(d_lse.download(got_lse));

  int64_t nonzero = 0;
  for (size_t k = 0; k < size_t(rows * d_v); ++k) {
    const float want = read_out(ref_out16, ref_out32, c.dtype, k);
    const float got = read_out(got_out16, got_out32, c.dtype, k);
    ASSERT_FALSE(std::isnan(got)) << "out[" << k << "] is NaN (unwritten or an empty partial was read)";
    ASSERT_LE(std::fabs(got - want), 1e-3f + (2.f / 128.f) * std::fabs(want)) << "out[" << k << "]";
    nonzero += got != 0.f;
  }
  EXPECT_GT(nonzero, 0) << "output is all zero";
  for (size_t r = 0; r < ref_lse.size(); ++r) {
    if (std::isinf(ref_lse[r])) {
      ASSERT_EQ(got_lse[r], ref_lse[r]) << "lse[" << r << "]";
    } else {
      ASSERT_LE(std::fabs(got_lse[r] - ref_lse[r]), 1e-5f + 1.3e-4f * std::fabs(ref_lse[r])) << "lse[" << r << "]";
    }
  }
}

TEST(GpuCombine, Fp32PartialsToBf16) {
  FLASHMLA_REQUIRE_GPU();
  run_combine_case({5, 3, 2, 16, DType::kFloat32, DType::kBFloat16, false, 0.2});
}

TEST(GpuCombine, ManySplitsWithSinksToFp16) {
  FLASHMLA_REQUIRE_GPU();
  run_combine_case({70, 2, 1, 9, DType::kFloat32, DType::kFloat16, true, 0.3});
}

TEST(GpuCombine, Bf16ShardsToFp32) {
  FLASHMLA_REQUIRE_GPU();
  run_combine_case({2, 4, 3, 128, DType::kBFloat16, DType::kFloat32, true, 0.1});
}

// Over kCombineFewRows rows (one warp per whole row, 16 dims a lane) with
// more splits than a warp's batch of 32, a count that leaves an unroll tail,
// and a head count that leaves the last CTA's warps without a row.
TEST(GpuCombine, ManyRowsManySplitsWithSinks) {
  FLASHMLA_REQUIRE_GPU();
  run_combine_case({37, 1, 1, 1101, DType::kFloat32, DType::kBFloat16, true, 0.25});
}

TEST(GpuCombine, AllPartialsEmptyGivesZeroAndMinusInf) {
  FLASHMLA_REQUIRE_GPU();
  // empty_fraction 1: every lse is -inf, every partial out NaN.
  const int64_t d_v = 512;
  CombineArgs args;
  args.num_splits = 3;
  args.b = 1;
  args.s_q = 1;
  args.h_q = 4;
  args.d_v = d_v;
  args.stride_out_partial_h = d_v;
  args.stride_out_partial_s = 4 * d_v;
  args.stride_out_partial_b = 4 * d_v;
  args.stride_out_partial_split = 4 * d_v;
  args.stride_lse_partial_h = 1;
  args.stride_lse_partial_b = 4;
  args.stride_lse_partial_split = 4;
  args.stride_out_h = d_v;
  args.stride_out_s = 4 * d_v;
  args.stride_out_b = 4 * d_v;
  args.stride_lse_h = 1;
  args.stride_lse_b = 4;
  std::vector<float> partial(static_cast<size_t>(3 * 4 * d_v), std::nanf(""));
  std::vector<float> lse_partial(12, -kInf);
  DeviceBuffer d_partial = test::to_device(partial);
  DeviceBuffer d_lse_partial = test::to_device(lse_partial);
  DeviceBuffer d_out(size_t(4 * d_v) * 2);
  DeviceBuffer d_lse(16);
  FLASHMLA_ASSERT_CUDA(d_out.fill_bytes(0xFF));
  FLASHMLA_ASSERT_CUDA(d_lse.fill_bytes(0xFF));
  args.out_partial = d_partial.get();
  args.lse_partial = d_lse_partial.as<float>();
  args.out = d_out.get();
  args.lse = d_lse.as<float>();
  Status st = run(args, nullptr, 0, nullptr);
  ASSERT_TRUE(st.ok()) << st.what();
  FLASHMLA_ASSERT_CUDA(cudaDeviceSynchronize());
  std::vector<uint16_t> out(static_cast<size_t>(4 * d_v));
  std::vector<float> lse(4);
  FLASHMLA_ASSERT_CUDA(d_out.download(out));
  FLASHMLA_ASSERT_CUDA(d_lse.download(lse));
  for (uint16_t v : out) ASSERT_EQ(v, 0) << "empty rows must be exactly 0";
  for (float v : lse) ASSERT_EQ(v, -kInf);
}

}  // namespace
}  // namespace flashmla
