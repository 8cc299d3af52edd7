// plan_decode + dense_decode captured in a CUDA graph with every buffer fixed,
// then replayed after the device contents of cache_seqlens and block_table
// change, as an engine does between decode steps: the schedule must be
// recomputed inside the replay from the new lengths, and the result must be
// the reference of the new inputs. Padding rows (length 0, block-table row
// of -1) are included.
#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/random_values.h"
#include "dense_decode/dense_case.h"

namespace flashmla::test {
namespace {

constexpr int64_t kPadding = -1;  // source_of value: a CUDA-graph padding row

// New inputs over the same pool: request i reads request source_of[i]'s
// pages of `base` (so its keys are real data) for new_lengths[i] <=
// base.cache_seqlens[source_of[i]] tokens. Columns past the pages a request
// uses keep the source's ids on even rows (finite keys of a longer request:
// reading them changes the result) and hold garbage ids on odd rows. Padding
// rows get length 0 and a row of -1.
DenseDecodeProblem remap(const DenseDecodeProblem& base, const std::vector<int64_t>& source_of,
                         const std::vector<int32_t>& new_lengths) {
  DenseDecodeProblem next = base;
  const DenseDecodeArgs& a = base.args;
  const std::vector<int32_t> zoo = invalid_page_zoo(a.num_blocks);
  for (int64_t i = 0; i < a.b; ++i) {
    int32_t* row = next.block_table.data() + i * a.stride_block_table_b;
    const int64_t src = source_of[size_t(i)];
    if (src == kPadding) {
      std::fill(row, row + a.stride_block_table_b, -1);
      next.cache_seqlens[size_t(i)] = 0;
      continue;
    }
    const int32_t* src_row = base.block_table.data() + src * a.stride_block_table_b;
    std::copy(src_row, src_row + a.stride_block_table_b, row);
    const int32_t len = new_lengths[size_t(i)];
    next.cache_seqlens[size_t(i)] = len;
    if (i % 2 == 1) {
      const int64_t used = (len + a.page_block_size - 1) / a.page_block_size;
      for (int64_t c = used; c < a.stride_block_table_b; ++c) row[c] = zoo[size_t(c % int64_t(zoo.size()))];
    }
  }
  return next;
}

// Captured inputs: 8 requests of a causal s_q = 2, GQA (16 heads over 2 KV
// heads) decode.
DenseDecodeConfig graph_config() {
  DenseDecodeConfig config = dense_config(8, 2, 16, 2, {300, 200, 140, 65, 64, 63, 1, 400}, DType::kBFloat16, true);
  config.seed = 4000;
  return config;
}

// Each replay's new inputs: request i reads request source_of[i]'s pages.
struct GraphStep {
  std::string name;
  std::vector<int64_t> source_of;
  std::vector<int32_t> lengths;
};

std::vector<GraphStep> graph_steps() {
  return {
      {"shuffled, shorter, with padding rows",
       {7, 0, 1, kPadding, 2, 6, kPadding, 3},
       {333, 299, 200, 0, 100, 1, 0, 65}},
      // Short requests become long: a very different schedule.
      {"grown onto the longest request, half padding",
       {7, 7, 7, 7, kPadding, kPadding, kPadding, kPadding},
       {400, 399, 257, 64, 0, 0, 0, 0}},
      {"all padding", std::vector<int64_t>(8, kPadding), std::vector<int32_t>(8, 0)},
  };
}

struct GraphExec {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  ~GraphExec() {
    if (exec != nullptr) cudaGraphExecDestroy(exec);
    if (graph != nullptr) cudaGraphDestroy(graph);
  }
};

// The same inputs over an FP8 (V32) cache (h_kv 1: the format has one KV head).
DenseDecodeConfig graph_config_fp8() {
  DenseDecodeConfig config = graph_config();
  config.h_kv = 1;
  config.kv_format = KVFormat::kFp8V32;
  return config;
}

void replay_with_changed_inputs(const DenseDecodeConfig& config) {
  const DenseDecodeProblem base = make_dense_decode_problem(config);
  const std::vector<GraphStep> steps = graph_steps();

  DeviceMirror<DenseDecodeArgs> mirror = to_device(base);
  ASSERT_TRUE(mirror.ok()) << mirror.error();
  int32_t* device_lengths = const_cast<int32_t*>(mirror.args.cache_seqlens);
  int32_t* device_table = const_cast<int32_t*>(mirror.args.block_table);

  // An eager run of the base inputs first: the replay must give the same bits.
  HostOutputs eager;
  DensePlan eager_plan;
  ASSERT_NO_FATAL_FAILURE(plan_and_run(mirror, 0, &eager, &eager_plan));

  DensePlan plan;
  ASSERT_NO_FATAL_FAILURE(prepare_plan(mirror.args, 0, &plan));
  Stream stream;
  ASSERT_TRUE(stream.ok());
  GraphExec graph;
  FLASHMLA_ASSERT_CUDA(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeGlobal));
  const std::string enqueue_error = enqueue_plan_and_decode(mirror.args, plan, stream.get());
  const cudaError_t end_error = cudaStreamEndCapture(stream.get(), &graph.graph);  // always end the capture
  ASSERT_TRUE(enqueue_error.empty()) << "during capture: " << enqueue_error;
  FLASHMLA_ASSERT_CUDA(end_error);
  ASSERT_NE(graph.graph, nullptr);
  FLASHMLA_ASSERT_CUDA(cudaGraphInstantiate(&graph.exec, graph.graph, 0));

  auto replay = [&](HostOutputs* got) {
    ASSERT_NO_FATAL_FAILURE(poison_outputs(mirror, stream.get()));
    FLASHMLA_ASSERT_CUDA(cudaGraphLaunch(graph.exec, stream.get()));
    FLASHMLA_ASSERT_CUDA(cudaStreamSynchronize(stream.get()));
    FLASHMLA_ASSERT_CUDA(cudaGetLastError());
    ASSERT_NO_FATAL_FAILURE(download_outputs(mirror, got));
  };
  auto upload_inputs = [&](const DenseDecodeProblem& p) {
    FLASHMLA_ASSERT_CUDA(cudaMemcpy(device_lengths, p.cache_seqlens.data(), p.cache_seqlens.size() * sizeof(int32_t),
                                    cudaMemcpyHostToDevice));
    FLASHMLA_ASSERT_CUDA(cudaMemcpy(device_table, p.block_table.data(), p.block_table.size() * sizeof(int32_t),
                                    cudaMemcpyHostToDevice));
    FLASHMLA_ASSERT_CUDA(cudaDeviceSynchronize());  // the replay stream is non-blocking
  };

  // Replay of the captured inputs.
  HostOutputs base_expected;
  ASSERT_NO_FATAL_FAILURE(reference_outputs(base, &base_expected));
  HostOutputs first;
  ASSERT_NO_FATAL_FAILURE(replay(&first));
  expect_matches_reference(base, first, base_expected, "replay of the captured inputs");
  expect_bitwise_equal(eager, first, "replay vs eager run");

  for (const GraphStep& step : steps) {
    SCOPED_TRACE(step.name);
    const DenseDecodeProblem next = remap(base, step.source_of, step.lengths);
    ASSERT_NO_FATAL_FAILURE(upload_inputs(next));
    HostOutputs expected;
    ASSERT_NO_FATAL_FAILURE(reference_outputs(next, &expected));
    HostOutputs got;
    ASSERT_NO_FATAL_FAILURE(replay(&got));
    expect_matches_reference(next, got, expected, "replay: " + step.name);
  }

  // Back to the captured inputs: the same bits as the first replay.
  ASSERT_NO_FATAL_FAILURE(upload_inputs(base));
  HostOutputs again;
  ASSERT_NO_FATAL_FAILURE(replay(&again));
  expect_bitwise_equal(first, again, "replay after restoring the captured inputs");
}

TEST(GpuDenseDecodeGraph, ReplayWithChangedLengthsAndBlockTables) {
  FLASHMLA_REQUIRE_GPU();
  ASSERT_NO_FATAL_FAILURE(replay_with_changed_inputs(graph_config()));
}

TEST(GpuDenseDecodeGraph, Fp8ReplayWithChangedLengthsAndBlockTables) {
  FLASHMLA_REQUIRE_GPU();
  ASSERT_NO_FATAL_FAILURE(replay_with_changed_inputs(graph_config_fp8()));
}

}  // namespace
}  // namespace flashmla::test

namespace flashmla::test {
namespace {

// CPU check of the steps: every row reads real keys of its source (lengths
// within the source's), padding rows are empty, the rest are not.
TEST(DenseDecodeGraphSteps, RemappedInputsAreWellFormed) {
  const DenseDecodeProblem base = make_dense_decode_problem(graph_config());
  for (const GraphStep& step : graph_steps()) {
    SCOPED_TRACE(step.name);
    ASSERT_EQ(int64_t(step.source_of.size()), base.args.b);
    for (size_t i = 0; i < step.source_of.size(); ++i) {
      if (step.source_of[i] != kPadding) {
        ASSERT_LE(step.lengths[i], base.cache_seqlens[size_t(step.source_of[i])]) << "row " << i;
      }
    }
    const DenseDecodeProblem next = remap(base, step.source_of, step.lengths);
    HostOutputs expected;
    ASSERT_NO_FATAL_FAILURE(reference_outputs(next, &expected));
    const DenseDecodeArgs& a = next.args;
    for (int64_t i = 0; i < a.b; ++i) {
      // The last query token sees the whole length.
      const float lse = expected.lse[size_t(i * a.stride_lse_b + (a.s_q - 1))];
      if (step.source_of[size_t(i)] == kPadding) {
        EXPECT_EQ(lse, -std::numeric_limits<float>::infinity()) << "row " << i;
        for (int64_t c = 0; c < a.max_blocks_per_seq; ++c) {
          EXPECT_EQ(next.block_table[size_t(i * a.stride_block_table_b + c)], -1);
        }
      } else {
        EXPECT_TRUE(std::isfinite(lse)) << "row " << i;
      }
    }
  }
}

}  // namespace
}  // namespace flashmla::test
