// Split-KV against the unsplit path, and run-to-run determinism.
//
// Planning with num_sms = 1 gives one worker, so no request is split and
// every result is written directly; planning for more SMs cuts long requests
// over workers whose partials are merged. Both must match the reference and
// each other within the spec's bounds (spec section 2, last sentence).
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/decode_schedule.h"
#include "dense_decode/dense_case.h"
#include "flashmla_ref/reference.h"

namespace flashmla::test {
namespace {

constexpr DType kBf16 = DType::kBFloat16;
constexpr DType kFp16 = DType::kFloat16;

// The same case over an FP8 (V32) cache: the sparse decode kernels, one per
// kernel class below (fp8_test.cpp has the rest of the FP8 grid).
DenseDecodeConfig fp8(DenseDecodeConfig c) {
  c.kv_format = KVFormat::kFp8V32;
  return c;
}

struct SplitCase {
  std::string name;
  DenseDecodeConfig config;
  // One request holds nearly all the work, so a plan with more than one
  // worker cuts it (checked on the planned schedule).
  bool one_dominant_request = false;
  // Planned for 132 SMs, one request is cut into more than kManyPartials
  // pieces and the batch has more than kCombineFewRows rows (times heads):
  // single warps merge that request's rows in several round trips.
  bool many_partials = false;
  friend void PrintTo(const SplitCase& c, std::ostream* os) { *os << c.name; }
};

// One long request (the second) among short ones of up to short_max keys:
// D15's shape, smaller.
std::vector<int32_t> one_long(int64_t b, int32_t long_length, int32_t short_max, uint64_t seed) {
  std::vector<int32_t> lengths = mixed_lengths(b, 0, short_max, seed);
  lengths[1] = long_length;
  return lengths;
}

std::vector<SplitCase> split_cases() {
  std::vector<SplitCase> cases;
  auto add = [&](std::string name, DenseDecodeConfig c, bool dominant, bool many = false) {
    c.seed = 2000 + cases.size();
    cases.push_back({std::move(name), std::move(c), dominant, many});
  };
  add("B1Sq1H9Kv1Bf16_Len65536", dense_config(1, 1, 9, 1, {65536}), true);
  add("B2Sq2H128Kv1Fp16Causal_Len8000And3", dense_config(2, 2, 128, 1, {8000, 3}, kFp16, true), true);
  add("B2Sq1H128Kv8Bf16_Len20000And64", dense_config(2, 1, 128, 8, {20000, 64}), true);
  add("B6Sq4H16Kv2Fp16Causal_MixWith4096", dense_config(6, 4, 16, 2, {0, 1, 63, 4096, 65, 140}, kFp16, true), false);
  add("B64Sq1H128Kv1Bf16_Len200To1200", dense_config(64, 1, 128, 1, mixed_lengths(64, 200, 1200, 21, false)), false);
  add("B133Sq2H64Kv8Bf16Causal_Mixed", dense_config(133, 2, 64, 8, mixed_lengths(133, 0, 600, 22), kBf16, true),
      false);
  add("B2Sq2H16Kv1Bf16_SharpSoftmax_Len30000And7", [] {
    auto c = dense_config(2, 2, 16, 1, {30000, 7});
    c.softmax_scale = kSharpScale;  // partials with very different maxima
    return c;
  }(), true);
  add("B2Sq2H16Fp8Causal_Len30000And7", fp8(dense_config(2, 2, 16, 1, {30000, 7}, kBf16, true)), true);
  add("B2Sq1H64Fp8_Len20000And64", fp8(dense_config(2, 1, 64, 1, {20000, 64})), true);
  add("B2Sq2H128Fp8Causal_Len8000And3", fp8(dense_config(2, 2, 128, 1, {8000, 3}, kBf16, true)), true);
  add("B2Sq1H128Kv1Bf16Dqk512_Len20000And64", [] {
    auto c = dense_config(2, 1, 128, 1, {20000, 64});
    c.d_qk = 512;
    return c;
  }(), true);
  add("B16Sq1H128Kv1Bf16_OneLongAmongShort", dense_config(16, 1, 128, 1, one_long(16, 20000, 600, 23)), true, true);
  add("B12Sq2H64Kv1Fp16Causal_OneLongAmongShort",
      dense_config(12, 2, 64, 1, one_long(12, 12000, 300, 24), kFp16, true), true, true);
  add("B80Sq1H16Kv1Bf16_OneLongAmongShort", dense_config(80, 1, 16, 1, one_long(80, 30000, 200, 25)), true, true);
  add("B16Sq1H128Fp8_OneLongAmongShort", fp8(dense_config(16, 1, 128, 1, one_long(16, 20000, 600, 26))), true,
      true);
  return cases;
}

class GpuDenseDecodeSplit : public ::testing::TestWithParam<SplitCase> {};

TEST_P(GpuDenseDecodeSplit, SplitAndUnsplitAgreeWithReferenceAndEachOther) {
  FLASHMLA_REQUIRE_GPU();
  const SplitCase& c = GetParam();
  const DenseDecodeProblem problem = make_dense_decode_problem(c.config);
  HostOutputs expected;
  ASSERT_NO_FATAL_FAILURE(reference_outputs(problem, &expected));
  DeviceMirror<DenseDecodeArgs> mirror = to_device(problem);
  ASSERT_TRUE(mirror.ok()) << mirror.error();

  HostOutputs unsplit;
  DensePlan one;
  ASSERT_NO_FATAL_FAILURE(plan_and_run(mirror, 1, &unsplit, &one));
  ASSERT_EQ(one.schedule.num_workers, 1) << "num_sms = 1 must plan exactly one worker";
  expect_matches_reference(problem, unsplit, expected, "num_sms 1 (one worker, unsplit)");

  const int32_t device_sms = device_sm_count();
  ASSERT_GT(device_sms, 1);
  // An odd count that divides nothing, and the device's own.
  for (int32_t num_sms : {37, device_sms}) {
    const std::string what = "num_sms " + std::to_string(num_sms);
    HostOutputs split;
    DensePlan plan;
    ASSERT_NO_FATAL_FAILURE(plan_and_run(mirror, num_sms, &split, &plan));
    if (c.one_dominant_request) {
      ASSERT_NO_FATAL_FAILURE(
          expect_split_path_ran(plan, c.config.b, c.many_partials && num_sms == device_sms, what));
    }
    expect_matches_reference(problem, split, expected, what);
    expect_within_spec_of_each_other(problem, split, unsplit, what + " vs num_sms 1");
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, GpuDenseDecodeSplit, ::testing::ValuesIn(split_cases()),
                         [](const auto& info) { return info.param.name; });

// CPU check of the premise (the reference planner runs the same partition
// as the GPU one): one worker never splits; 37 SMs and an H100's 132 cut
// every dominant request.
TEST(DenseDecodeSplitCases, PlansSplitWhereExpected) {
  for (const SplitCase& c : split_cases()) {
    for (int32_t num_sms : {1, 37, 132}) {
      PlanDecodeArgs plan;
      plan.kind = DecodeKind::kDense;
      plan.b = c.config.b;
      plan.s_q = c.config.s_q;
      plan.h_q = c.config.h_q;
      plan.h_kv = c.config.h_kv;
      plan.lengths = c.config.seqlens.data();
      plan.num_sms = num_sms;
      std::vector<unsigned char> schedule(size_t(workspace_size(plan)) + 16);
      plan.schedule = schedule.data();
      ASSERT_TRUE(ref::plan_decode(plan).ok()) << c.name;
      ScheduleHeader header{};
      std::memcpy(&header, schedule.data(), sizeof(header));
      if (num_sms == 1) {
        EXPECT_EQ(header.num_workers, 1) << c.name;
        EXPECT_EQ(header.num_partials, header.b) << c.name << ": one worker must not split";
      } else if (c.one_dominant_request) {
        EXPECT_GT(header.num_partials, header.b) << c.name << ", num_sms " << num_sms;
      }
      if (c.many_partials && num_sms == 132) {
        const ScheduleView view = schedule_view(schedule.data(), header.num_workers);
        EXPECT_GT(max_partials_of_a_request(view.split_begin, header.b), kManyPartials) << c.name;
        EXPECT_GT(c.config.b * c.config.s_q * c.config.h_q, kCombineFewRows) << c.name;
      }
    }
  }
}

// ----------------------------------------------------------------------------
// The same input twice gives the same bits: with the same schedule and
// workspace (outputs re-poisoned in between), and with a fresh plan in fresh
// buffers. No atomics-order or uninitialized-memory dependence.

class GpuDenseDecodeDeterminism : public ::testing::TestWithParam<SplitCase> {};

TEST_P(GpuDenseDecodeDeterminism, SameInputTwiceIsBitwiseIdentical) {
  FLASHMLA_REQUIRE_GPU();
  const DenseDecodeProblem problem = make_dense_decode_problem(GetParam().config);
  DeviceMirror<DenseDecodeArgs> mirror = to_device(problem);
  ASSERT_TRUE(mirror.ok()) << mirror.error();

  HostOutputs first;
  DensePlan plan;
  ASSERT_NO_FATAL_FAILURE(plan_and_run(mirror, 0, &first, &plan));

  // Again with the same plan, schedule and workspace.
  {
    Stream stream;
    ASSERT_TRUE(stream.ok());
    ASSERT_NO_FATAL_FAILURE(poison_outputs(mirror, stream.get()));
    const std::string error = enqueue_plan_and_decode(mirror.args, plan, stream.get());
    ASSERT_TRUE(error.empty()) << error;
    FLASHMLA_ASSERT_CUDA(cudaStreamSynchronize(stream.get()));
    HostOutputs second;
    ASSERT_NO_FATAL_FAILURE(download_outputs(mirror, &second));
    expect_bitwise_equal(first, second, "second run, same schedule and workspace");
  }
  // Again with a fresh plan in new buffers.
  HostOutputs third;
  DensePlan fresh;
  ASSERT_NO_FATAL_FAILURE(plan_and_run(mirror, 0, &third, &fresh));
  expect_bitwise_equal(first, third, "third run, fresh schedule and workspace");
}

std::vector<SplitCase> determinism_cases() {
  std::vector<SplitCase> cases;
  auto add = [&](std::string name, DenseDecodeConfig c) {
    c.seed = 3000 + cases.size();
    cases.push_back({std::move(name), std::move(c), false});
  };
  add("B2Sq2H128Kv1Bf16_SplitLen20000And300", dense_config(2, 2, 128, 1, {20000, 300}));
  add("B64Sq1H128Kv1Fp16_Mixed", dense_config(64, 1, 128, 1, mixed_lengths(64, 0, 3000, 31), kFp16));
  add("B6Sq4H16Kv2Bf16Causal_MixWith4096", dense_config(6, 4, 16, 2, {4096, 0, 1, 63, 64, 65}, kBf16, true));
  add("B2Sq2H16Fp8Causal_Len30000And7", fp8(dense_config(2, 2, 16, 1, {30000, 7}, kBf16, true)));
  add("B2Sq1H64Fp8_Len20000And64", fp8(dense_config(2, 1, 64, 1, {20000, 64})));
  add("B2Sq2H128Fp8Causal_Len8000And3", fp8(dense_config(2, 2, 128, 1, {8000, 3}, kBf16, true)));
  // The long request's rows are merged by single warps over several round trips.
  add("B16Sq1H128Kv1Bf16_OneLongAmongShort", dense_config(16, 1, 128, 1, one_long(16, 20000, 600, 32)));
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Cases, GpuDenseDecodeDeterminism, ::testing::ValuesIn(determinism_cases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace flashmla::test
