// Split-KV against the unsplit path, and run-to-run determinism.
//
// Planning with num_sms = 1 gives one worker, so no request is split and
// every result is written directly; planning for the device's SMs (and an
// odd 37) cuts the dominant requests over workers whose partials are merged.
// Both must match the reference and each other within the spec's bounds
// (spec section 2, last sentence).
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/decode_schedule.h"
#include "flashmla_ref/reference.h"
#include "sparse_decode/sparse_case.h"

namespace flashmla::test::sd {
namespace {

constexpr KVFormat kV32 = KVFormat::kFp8V32;
constexpr KVFormat kModel1 = KVFormat::kFp8Model1;
constexpr float kInf = std::numeric_limits<float>::infinity();

struct SplitCase {
  std::string name;
  SparseDecodeConfig config;
  // One request holds nearly all the work, so a plan with more than one
  // worker cuts it (checked on the planned schedule, and on the CPU below).
  bool one_dominant_request = false;
  // Planned for 132 SMs, one request is cut into more than kManyPartials
  // pieces in a batch of more than kCombineFewRows rows (times heads): single
  // warps merge its rows, with their sinks, in several round trips.
  bool many_partials = false;
  friend void PrintTo(const SplitCase& c, std::ostream* os) { *os << c.name; }
};

std::vector<SplitCase> split_cases() {
  std::vector<SplitCase> cases;
  auto add = [&](std::string name, SparseDecodeConfig c, bool dominant, bool many = false) {
    c.seed = 9000 + cases.size();
    cases.push_back({std::move(name), std::move(c), dominant, many});
  };
  add("V32_B1Sq1H64K2048P64", sparse_config(kV32, 1, 1, 64, 2048, 64), true);
  add("Model1_B2Sq2H128K2048P53_Lengths2048And3_SinksMixed", [] {
    auto c = sparse_config(kModel1, 2, 2, 128, 2048, 53);
    c.with_topk_length = true;
    c.topk_length = {2048, 3};
    c.attn_sink = sink_pattern(c.h_q, {-kInf, 1.0f, kInf, 7.0f});
    return c;
  }(), true);
  add("V32_B2Sq3H16K2048P69_Extra128P2", [] {
    auto c = sparse_config(kV32, 2, 3, 16, 2048, 69);
    c.extra_topk = 128;
    c.extra_page_block_size = 2;
    return c;
  }(), false);
  add("V32_B1Sq1H8K2048P256_SharpSoftmax", [] {
    auto c = sparse_config(kV32, 1, 1, 8, 2048, 256);
    c.softmax_scale = kSharpScale;  // partials with very different maxima
    return c;
  }(), true);
  add("Model1_B74Sq1H32K128P64_RandomLengths_Extra64P256", [] {
    auto c = sparse_config(kModel1, 74, 1, 32, 128, 64);
    c.with_topk_length = true;
    c.extra_topk = 64;
    c.extra_page_block_size = 256;
    c.with_extra_topk_length = true;
    return c;
  }(), false);
  add("V32_B17Sq1H128K4096P64_OneLongAmongShort_SinksMixed", [] {
    auto c = sparse_config(kV32, 17, 1, 128, 4096, 64);
    c.with_topk_length = true;
    c.topk_length.assign(17, 64);
    c.topk_length[2] = 4096;
    c.topk_length[5] = 0;
    c.attn_sink = sink_pattern(c.h_q, {-kInf, 1.0f, kInf, 7.0f});
    return c;
  }(), true, true);
  return cases;
}

class GpuSparseDecodeSplit : public ::testing::TestWithParam<SplitCase> {};

TEST_P(GpuSparseDecodeSplit, SplitAndUnsplitAgreeWithReferenceAndEachOther) {
  FLASHMLA_REQUIRE_GPU();
  const SplitCase& c = GetParam();
  const SparseDecodeProblem problem = make_sparse_case_problem(c.config);
  HostOutputs expected;
  ASSERT_NO_FATAL_FAILURE(reference_outputs(problem, &expected));
  DeviceMirror<SparseDecodeArgs> mirror = to_device(problem);
  ASSERT_TRUE(mirror.ok()) << mirror.error();

  HostOutputs unsplit;
  SparsePlan one;
  ASSERT_NO_FATAL_FAILURE(plan_and_run(mirror, 1, &unsplit, &one));
  ASSERT_EQ(one.schedule.num_workers, 1) << "num_sms = 1 must plan exactly one worker";
  expect_matches_reference(problem, unsplit, expected, "num_sms 1 (one worker, unsplit)");

  const int32_t device_sms = device_sm_count();
  ASSERT_GT(device_sms, 1);
  for (int32_t num_sms : {37, device_sms}) {
    const std::string what = "num_sms " + std::to_string(num_sms);
    HostOutputs split;
    SparsePlan plan;
    ASSERT_NO_FATAL_FAILURE(plan_and_run(mirror, num_sms, &split, &plan));
    if (c.one_dominant_request) {
      ASSERT_NO_FATAL_FAILURE(
          expect_split_path_ran(plan, c.config.b, c.many_partials && num_sms == device_sms, what));
    }
    expect_matches_reference(problem, split, expected, what);
    expect_matches(problem.out_view(), problem.lse_view(), split, unsplit, problem.attn_sink,
                   what + " vs num_sms 1");
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, GpuSparseDecodeSplit, ::testing::ValuesIn(split_cases()),
                         [](const auto& info) { return info.param.name; });

// CPU check of the premise (the reference planner runs the same partition as
// the GPU one): one worker never splits; 37 SMs and an H100's 132 cut every
// dominant request.
TEST(SparseDecodeSplitCases, PlansSplitWhereExpected) {
  for (const SplitCase& c : split_cases()) {
    const SparseDecodeProblem problem = make_sparse_case_problem(c.config);
    HostOutputs outputs = problem.make_outputs();
    const SparseDecodeArgs args = problem.host_args(outputs);
    for (int32_t num_sms : {1, 37, 132}) {
      PlanDecodeArgs plan = sparse_plan_args(args, num_sms);
      std::vector<unsigned char> schedule(size_t(workspace_size(plan)) + 16);
      plan.schedule = schedule.data();
      const Status status = ref::plan_decode(plan);
      ASSERT_TRUE(status.ok()) << c.name << ": " << status.what();
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

class GpuSparseDecodeDeterminism : public ::testing::TestWithParam<SplitCase> {};

TEST_P(GpuSparseDecodeDeterminism, SameInputTwiceIsBitwiseIdentical) {
  FLASHMLA_REQUIRE_GPU();
  const SparseDecodeProblem problem = make_sparse_case_problem(GetParam().config);
  DeviceMirror<SparseDecodeArgs> mirror = to_device(problem);
  ASSERT_TRUE(mirror.ok()) << mirror.error();

  HostOutputs first;
  SparsePlan plan;
  ASSERT_NO_FATAL_FAILURE(plan_and_run(mirror, 0, &first, &plan));
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
  HostOutputs third;
  SparsePlan fresh;
  ASSERT_NO_FATAL_FAILURE(plan_and_run(mirror, 0, &third, &fresh));
  expect_bitwise_equal(first, third, "third run, fresh schedule and workspace");
}

std::vector<SplitCase> determinism_cases() {
  std::vector<SplitCase> cases;
  auto add = [&](std::string name, SparseDecodeConfig c) {
    c.seed = 9500 + cases.size();
    cases.push_back({std::move(name), std::move(c), false});
  };
  add("V32_B2Sq2H128K2048P64_Split", sparse_config(kV32, 2, 2, 128, 2048, 64));
  add("Model1_B74Sq1H64K128P53_RandomLengths_Extra64P64", [] {
    auto c = sparse_config(kModel1, 74, 1, 64, 128, 53);
    c.with_topk_length = true;
    c.extra_topk = 64;
    c.extra_page_block_size = 64;
    c.attn_sink = sink_pattern(c.h_q, {-kInf, 2.0f, kInf});
    return c;
  }());
  add("V32_B321Sq3H16K64P2_HeavyDuplicates", [] {
    auto c = sparse_config(kV32, 321, 3, 16, 64, 2);
    c.duplicate_fraction = 0.5;
    return c;
  }());
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Cases, GpuSparseDecodeDeterminism, ::testing::ValuesIn(determinism_cases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace flashmla::test::sd
