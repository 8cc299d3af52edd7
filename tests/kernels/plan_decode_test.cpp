// plan_decode on the GPU writes, byte for byte, the schedule the CPU
// reference computes with the same pure partition; garbage lengths are
// clamped, never trusted.
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "common/decode_schedule.h"
#include "common/gpu.h"
#include "flashmla/flashmla.h"
#include "flashmla_ref/reference.h"

namespace flashmla {
namespace {

using test::DeviceBuffer;

struct PlanCase {
  DecodeKind kind;
  std::vector<int32_t> lengths;
  int64_t topk = 0;
  int64_t extra_topk = 0;
  std::vector<int32_t> extra_lengths;
  int32_t num_sms = 132;
};

void expect_gpu_plan_matches_reference(const PlanCase& c) {
  const int64_t b = int64_t(c.lengths.size());
  PlanDecodeArgs args;
  args.kind = c.kind;
  args.b = b;
  args.s_q = 1;
  args.h_q = 128;
  args.h_kv = 1;
  args.topk = c.topk;
  args.extra_topk = c.extra_topk;
  args.num_sms = c.num_sms;
  const int64_t bytes = workspace_size(args);
  ASSERT_GT(bytes, 0);

  // Reference on the host.
  std::vector<unsigned char> expected(size_t(bytes), 0);
  PlanDecodeArgs host_args = args;
  host_args.lengths = c.lengths.empty() ? nullptr : c.lengths.data();
  host_args.extra_lengths = c.extra_lengths.empty() ? nullptr : c.extra_lengths.data();
  host_args.schedule = expected.data();
  ASSERT_TRUE(ref::plan_decode(host_args).ok());

  // GPU into a poisoned buffer.
  DeviceBuffer lengths = test::to_device(c.lengths);
  DeviceBuffer extra_lengths = test::to_device(c.extra_lengths);
  DeviceBuffer schedule(static_cast<size_t>(bytes));
  ASSERT_NE(schedule.get(), nullptr);
  FLASHMLA_ASSERT_CUDA(schedule.fill_bytes(0xCD));
  args.lengths = c.lengths.empty() ? nullptr : lengths.as<int32_t>();
  args.extra_lengths = c.extra_lengths.empty() ? nullptr : extra_lengths.as<int32_t>();
  args.schedule = schedule.get();
  ASSERT_TRUE(validate(args).ok()) << validate(args).what();
  Status st = run(args, nullptr, 0, nullptr);
  ASSERT_TRUE(st.ok()) << st.what();
  FLASHMLA_ASSERT_CUDA(cudaDeviceSynchronize());
  std::vector<unsigned char> got(static_cast<size_t>(bytes));
  FLASHMLA_ASSERT_CUDA(schedule.download(got));
  // Every byte the schedule defines (the tail padding to 16 bytes is not).
  const size_t defined = sizeof(ScheduleHeader) + size_t(describe_schedule(args).num_workers) * sizeof(WorkerRange) +
                         size_t(b + 1) * sizeof(int32_t);
  ASSERT_LE(defined, got.size());
  for (size_t k = 0; k < defined; ++k) {
    ASSERT_EQ(int(got[k]), int(expected[k])) << "schedule byte " << k << " of " << defined;
  }
}

TEST(GpuPlanDecode, DenseVarlenBatchMatchesReference) {
  FLASHMLA_REQUIRE_GPU();
  std::mt19937 rng(7);
  PlanCase c{DecodeKind::kDense, {}};
  for (int i = 0; i < 133; ++i) c.lengths.push_back(int32_t(rng() % 20000));
  c.lengths[5] = 0;
  expect_gpu_plan_matches_reference(c);
}

TEST(GpuPlanDecode, OneLongRequest) {
  FLASHMLA_REQUIRE_GPU();
  expect_gpu_plan_matches_reference(PlanCase{DecodeKind::kDense, {131072}});
}

TEST(GpuPlanDecode, GarbageLengthsAreMasked) {
  FLASHMLA_REQUIRE_GPU();
  expect_gpu_plan_matches_reference(
      PlanCase{DecodeKind::kDense, {0, -1, std::numeric_limits<int32_t>::min(), 64, 65, 1}});
}

TEST(GpuPlanDecode, SparseWithTopkLengthAndExtraCache) {
  FLASHMLA_REQUIRE_GPU();
  PlanCase c{DecodeKind::kSparse, {0, 2048, 100, -5, 1 << 30, 64}, 2048, 128, {128, 0, 64, 1, -1, 7}};
  expect_gpu_plan_matches_reference(c);
}

TEST(GpuPlanDecode, LargeBatchUsesDynamicSharedMemory) {
  FLASHMLA_REQUIRE_GPU();
  PlanCase c{DecodeKind::kDense, std::vector<int32_t>(16384, 300)};
  expect_gpu_plan_matches_reference(c);
}

}  // namespace
}  // namespace flashmla
