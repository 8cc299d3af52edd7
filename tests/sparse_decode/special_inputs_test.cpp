// Inputs the grid's random generator reaches only by chance, made certain:
// every zoo value in every index row (inside topk_length), garbage
// topk_length values, every position selecting one token, a -inf sink
// against no sink, very sharp logits, and b = 0.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/random_values.h"
#include "sparse_decode/sparse_case.h"

namespace flashmla::test::sd {
namespace {

constexpr KVFormat kV32 = KVFormat::kFp8V32;
constexpr KVFormat kModel1 = KVFormat::kFp8Model1;
constexpr float kInf = std::numeric_limits<float>::infinity();

// Writes the zoo of `capacity` at spread positions below `length` of an
// index row (the other positions keep the generator's values).
void plant_zoo(int32_t* row, int64_t length, int64_t capacity) {
  const std::vector<int32_t> zoo = invalid_index_zoo(capacity);
  const int64_t n = std::min<int64_t>(length, int64_t(zoo.size()));
  for (int64_t z = 0; z < n; ++z) row[z * length / n] = zoo[size_t(z)];
}

void plant_zoo_everywhere(SparseDecodeProblem& p) {
  const SparseDecodeArgs& a = p.args;
  for (int64_t i = 0; i < a.b; ++i) {
    for (int64_t j = 0; j < a.s_q; ++j) {
      const int64_t len = p.topk_length.empty() ? a.topk : std::clamp<int64_t>(p.topk_length[size_t(i)], 0, a.topk);
      plant_zoo(p.indices.data() + i * a.stride_indices_b + j * a.stride_indices_s, len,
                a.num_blocks * a.page_block_size);
      if (!p.extra_indices.empty()) {
        const int64_t extra_len = p.extra_topk_length.empty()
                                      ? a.extra_topk
                                      : std::clamp<int64_t>(p.extra_topk_length[size_t(i)], 0, a.extra_topk);
        plant_zoo(p.extra_indices.data() + i * a.stride_extra_indices_b + j * a.stride_extra_indices_s, extra_len,
                  a.extra_num_blocks * a.extra_page_block_size);
      }
    }
  }
}

TEST(GpuSparseDecode, EveryZooValueInEveryRowIsMasked) {
  FLASHMLA_REQUIRE_GPU();
  for (KVFormat format : {kV32, kModel1}) {
    SparseDecodeConfig c = sparse_config(format, 4, 2, 16, 128, format == kV32 ? 53 : 64);
    c.extra_topk = 64;
    c.extra_page_block_size = format == kV32 ? 2 : 69;
    c.with_topk_length = true;
    c.topk_length = {128, 6, 100, 64};
    c.seed = 9700 + int(format);
    SparseDecodeProblem p = make_sparse_case_problem(c);
    plant_zoo_everywhere(p);
    SCOPED_TRACE(to_string(format));
    ASSERT_NO_FATAL_FAILURE(run_sparse_problem(p));
  }
}

// topk_length and extra_topk_length are device data: negative values mean
// no position, values past topk mean all of them (the reference clamps to
// [0, topk]). Nothing faults and nothing is read past topk.
TEST(GpuSparseDecode, GarbageTopkLengthsAreClampedNotTrusted) {
  FLASHMLA_REQUIRE_GPU();
  for (KVFormat format : {kV32, kModel1}) {
    SparseDecodeConfig c = sparse_config(format, 6, 2, 32, 128, 64);
    c.with_topk_length = true;
    c.topk_length = {-5, INT32_MIN, 129, INT32_MAX, 7, 128};
    c.extra_topk = 64;
    c.extra_page_block_size = 53;
    c.with_extra_topk_length = true;
    c.extra_topk_length = {INT32_MAX, -1, 65, 0, INT32_MIN, 3};
    c.seed = 9710 + int(format);
    SCOPED_TRACE(to_string(format));
    ASSERT_NO_FATAL_FAILURE(run_sparse_case(c));
  }
}

// Every position selects the same token: duplicates are attended as
// duplicates, so out is that token's v (uniform weights).
TEST(GpuSparseDecode, EveryPositionSelectsOneToken) {
  FLASHMLA_REQUIRE_GPU();
  for (KVFormat format : {kV32, kModel1}) {
    SparseDecodeConfig c = sparse_config(format, 2, 1, 8, 2048, 64);
    c.invalid_fraction = 0.0;
    c.duplicate_fraction = 1.0;  // position 0 valid, every later one repeats an earlier one
    c.seed = 9720 + int(format);
    SCOPED_TRACE(to_string(format));
    ASSERT_NO_FATAL_FAILURE(run_sparse_case(c));
  }
}

// A -inf sink has no effect: the result with sink -inf on every head is the
// result without a sink, within the spec's bounds (and both the reference's).
TEST(GpuSparseDecode, MinusInfinitySinkEqualsNoSink) {
  FLASHMLA_REQUIRE_GPU();
  SparseDecodeConfig c = sparse_config(kV32, 4, 2, 64, 128, 64);
  c.with_topk_length = true;
  c.topk_length = {128, 0, 50, 1};
  c.seed = 9730;
  const SparseDecodeProblem without = make_sparse_case_problem(c);
  SparseDecodeProblem with_sink = without;
  with_sink.attn_sink.assign(size_t(c.h_q), -kInf);

  HostOutputs got_without, got_with;
  {
    DeviceMirror<SparseDecodeArgs> mirror = to_device(without);
    ASSERT_TRUE(mirror.ok()) << mirror.error();
    ASSERT_NO_FATAL_FAILURE(plan_and_run(mirror, 0, &got_without));
  }
  {
    DeviceMirror<SparseDecodeArgs> mirror = to_device(with_sink);
    ASSERT_TRUE(mirror.ok()) << mirror.error();
    ASSERT_NO_FATAL_FAILURE(plan_and_run(mirror, 0, &got_with));
  }
  HostOutputs expected;
  ASSERT_NO_FATAL_FAILURE(reference_outputs(without, &expected));
  expect_matches_reference(without, got_without, expected, "no sink");
  expect_matches_reference(with_sink, got_with, expected, "sink -inf");
  expect_matches(without.out_view(), without.lse_view(), got_with, got_without, {}, "sink -inf vs no sink");
}

// Logits of std ~16 (log2 units): the running max moves by more than the
// small-head kernel's lazy slack (8) on later blocks of many rows and by
// less on others, so both of its paths (exchange the maxima and rescale, or
// keep the max and let P reach 2^8) meet the reference. h_q 16 takes the
// small-head kernel, 64 the 64-row one; 2048 positions are 32 blocks.
TEST(GpuSparseDecode, VerySharpLogitsMoveTheRunningMaxLate) {
  FLASHMLA_REQUIRE_GPU();
  for (KVFormat format : {kV32, kModel1}) {
    for (int64_t h_q : {16, 64}) {
      SparseDecodeConfig c = sparse_config(format, 2, 1, h_q, 2048, 64);
      c.softmax_scale = 48.0f;
      c.seed = 9740 + int(format) * 2 + (h_q == 64);
      SCOPED_TRACE(std::string(to_string(format)) + " h_q " + std::to_string(h_q));
      ASSERT_NO_FATAL_FAILURE(run_sparse_case(c));
    }
  }
}

// b = 0 is legal: plan and decode return ok and launch nothing.
TEST(GpuSparseDecode, EmptyBatchIsANoOp) {
  FLASHMLA_REQUIRE_GPU();
  SparseDecodeArgs args = make_sparse_case_problem(sparse_config(kV32, 1, 1, 16, 64, 64)).args;
  args.b = 0;
  args.num_blocks = 0;  // nothing may be read, so null pointers are fine
  PlanDecodeArgs plan = sparse_plan_args(args, device_sm_count());
  Stream stream;
  ASSERT_TRUE(stream.ok());
  const Status planned = run(plan, nullptr, 0, stream.get());
  EXPECT_TRUE(planned.ok()) << planned.what();
  args.schedule = describe_schedule(plan);
  const Status decoded = run(args, nullptr, 0, stream.get());
  EXPECT_TRUE(decoded.ok()) << decoded.what();
  FLASHMLA_ASSERT_CUDA(cudaStreamSynchronize(stream.get()));
  FLASHMLA_ASSERT_CUDA(cudaGetLastError());
}

// CPU check: the zoo planting really puts every zoo value inside the used
// positions of every row of both caches.
TEST(SparseDecodeSpecialInputs, ZooPlantedInsideUsedPositions) {
  SparseDecodeConfig c = sparse_config(kModel1, 4, 2, 4, 128, 64);
  c.extra_topk = 64;
  c.extra_page_block_size = 69;
  c.with_topk_length = true;
  c.topk_length = {128, 6, 100, 64};
  SparseDecodeProblem p = make_sparse_case_problem(c);
  plant_zoo_everywhere(p);
  const SparseDecodeArgs& a = p.args;
  const std::vector<int32_t> zoo = invalid_index_zoo(a.num_blocks * a.page_block_size);
  const std::vector<int32_t> extra_zoo = invalid_index_zoo(a.extra_num_blocks * a.extra_page_block_size);
  for (int64_t i = 0; i < a.b; ++i) {
    for (int64_t j = 0; j < a.s_q; ++j) {
      const int32_t* row = p.indices.data() + i * a.stride_indices_b + j * a.stride_indices_s;
      const int32_t* extra = p.extra_indices.data() + i * a.stride_extra_indices_b + j * a.stride_extra_indices_s;
      for (int32_t z : zoo) {
        EXPECT_NE(std::find(row, row + c.topk_length[size_t(i)], z), row + c.topk_length[size_t(i)])
            << "request " << i << ", token " << j << ", zoo value " << z;
      }
      for (int32_t z : extra_zoo) {
        EXPECT_NE(std::find(extra, extra + a.extra_topk, z), extra + a.extra_topk)
            << "extra, request " << i << ", token " << j << ", zoo value " << z;
      }
    }
  }
}

}  // namespace
}  // namespace flashmla::test::sd
