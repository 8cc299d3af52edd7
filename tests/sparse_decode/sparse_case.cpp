#include "sparse_decode/sparse_case.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <sstream>
#include <utility>

#include "common/compare.h"
#include "common/random_values.h"
#include "flashmla_ref/reference.h"

namespace flashmla::test::sd {
namespace {

// Reference time, per test (property "reference_seconds") and in total.
double g_total_reference_seconds = 0.0;
const ::testing::TestInfo* g_timed_test = nullptr;
double g_test_reference_seconds = 0.0;

class ReferenceTimeReport : public ::testing::Environment {
 public:
  void TearDown() override {
    if (g_total_reference_seconds > 0.0) {
      std::printf("[ sparse decode ] CPU reference time, all tests: %.1f s\n", g_total_reference_seconds);
    }
  }
};
::testing::Environment* const g_reference_time_report =
    ::testing::AddGlobalTestEnvironment(new ReferenceTimeReport);

void add_reference_time(double seconds) {
  const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
  if (test != g_timed_test) {
    g_timed_test = test;
    g_test_reference_seconds = 0.0;
  }
  g_test_reference_seconds += seconds;
  g_total_reference_seconds += seconds;
  if (test != nullptr) {
    char text[32];
    std::snprintf(text, sizeof(text), "%.2f", g_test_reference_seconds);
    ::testing::Test::RecordProperty("reference_seconds", text);
  }
}

bool all_minus_inf(const std::vector<double>& lse) {
  for (double v : lse) {
    if (v != -std::numeric_limits<double>::infinity()) return false;
  }
  return true;
}

bool all_exact_zero(const std::vector<double>& values) {
  for (double v : values) {
    if (v != 0.0) return false;
  }
  return true;
}

// Re-lays `kv` (num_blocks pages of `old_stride` bytes) with `new_stride`.
void widen_pages(std::vector<uint8_t>& kv, int64_t num_blocks, int64_t old_stride, int64_t new_stride) {
  if (new_stride == old_stride || kv.empty()) return;
  std::vector<uint8_t> wide(size_t(num_blocks * new_stride), kNaNByte);
  for (int64_t p = 0; p < num_blocks; ++p) {
    std::memcpy(wide.data() + p * new_stride, kv.data() + p * old_stride, size_t(old_stride));
  }
  kv = std::move(wide);
}

}  // namespace

SparseDecodeConfig sparse_config(KVFormat format, int64_t b, int64_t s_q, int64_t h_q, int64_t topk,
                                 int64_t page_block_size) {
  SparseDecodeConfig c;
  c.kv_format = format;
  c.b = b;
  c.s_q = s_q;
  c.h_q = h_q;
  c.topk = topk;
  c.page_block_size = page_block_size;
  c.softmax_scale = kSpreadScale;
  return c;
}

std::vector<float> sink_pattern(int64_t h_q, const std::vector<float>& pattern) {
  std::vector<float> sinks(static_cast<size_t>(h_q));
  for (int64_t h = 0; h < h_q; ++h) sinks[size_t(h)] = pattern[size_t(h) % pattern.size()];
  return sinks;
}

int64_t aligned_page_stride(KVFormat format, int64_t page_block_size, int64_t pad) {
  const int64_t packed = page_block_size * kv_format_token_bytes(format) + 16 * pad;
  return (packed + 15) / 16 * 16;
}

SparseDecodeProblem make_sparse_case_problem(const SparseDecodeConfig& config) {
  SparseDecodeProblem p = make_sparse_decode_problem(config);
  SparseDecodeArgs& a = p.args;
  const int64_t main_stride = aligned_page_stride(a.kv_format, a.page_block_size, config.pad);
  widen_pages(p.kv, a.num_blocks, a.stride_kv_block, main_stride);
  a.stride_kv_block = main_stride;
  if (!p.extra_kv.empty()) {
    const int64_t extra_stride = aligned_page_stride(a.kv_format, a.extra_page_block_size, config.pad);
    widen_pages(p.extra_kv, a.extra_num_blocks, a.stride_extra_kv_block, extra_stride);
    a.stride_extra_kv_block = extra_stride;
  }
  return p;
}

void make_main_indices_all_invalid(SparseDecodeProblem& problem) {
  const SparseDecodeArgs& a = problem.args;
  const std::vector<int32_t> zoo = invalid_index_zoo(a.num_blocks * a.page_block_size);
  for (int64_t i = 0; i < a.b; ++i)
    for (int64_t j = 0; j < a.s_q; ++j)
      for (int64_t k = 0; k < a.topk; ++k)
        problem.indices[size_t(i * a.stride_indices_b + j * a.stride_indices_s + k)] =
            zoo[size_t((i + j + k) % int64_t(zoo.size()))];
}

SparseDecodeProblem make_case_problem(const SparseCase& c) {
  SparseDecodeProblem p = make_sparse_case_problem(c.config);
  if (c.main_all_invalid) make_main_indices_all_invalid(p);
  return p;
}

Stream::Stream() {
  if (cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking) != cudaSuccess) {
    cudaGetLastError();
    stream_ = nullptr;
  }
}

Stream::~Stream() {
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

int32_t device_sm_count() {
  int device = 0;
  int count = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}

PlanDecodeArgs sparse_plan_args(const SparseDecodeArgs& args, int32_t num_sms) {
  PlanDecodeArgs p;
  p.kind = DecodeKind::kSparse;
  p.b = args.b;
  p.s_q = args.s_q;
  p.h_q = args.h_q;
  p.h_kv = 1;
  p.lengths = args.topk_length;
  p.topk = args.topk;
  p.extra_topk = args.extra_kv != nullptr ? args.extra_topk : 0;
  p.extra_lengths = args.extra_kv != nullptr ? args.extra_topk_length : nullptr;
  p.num_sms = num_sms;
  return p;
}

void prepare_plan(SparseDecodeArgs& args, int32_t num_sms, SparsePlan* plan) {
  const int32_t sms = num_sms > 0 ? num_sms : device_sm_count();
  ASSERT_GT(sms, 0) << "no SM count";
  PlanDecodeArgs& p = plan->plan;
  p = sparse_plan_args(args, sms);
  const int64_t schedule_bytes = workspace_size(p);
  ASSERT_GE(schedule_bytes, 0);
  ASSERT_TRUE(plan->schedule_buffer.allocate(size_t(std::max<int64_t>(schedule_bytes, 16))))
      << "cudaMalloc of the schedule (" << schedule_bytes << " bytes)";
  FLASHMLA_ASSERT_CUDA(plan->schedule_buffer.fill_bytes(0xCD));  // stale garbage
  p.schedule = plan->schedule_buffer.get();
  const Status plan_valid = validate(p);
  ASSERT_TRUE(plan_valid.ok()) << "plan_decode: " << plan_valid.what();
  plan->schedule = describe_schedule(p);
  args.schedule = plan->schedule;
  plan->workspace_bytes = workspace_size(args);
  ASSERT_GE(plan->workspace_bytes, 0);
  if (plan->workspace_bytes > 0) {
    ASSERT_TRUE(plan->workspace.allocate(size_t(plan->workspace_bytes)))
        << "cudaMalloc of the workspace (" << plan->workspace_bytes << " bytes)";
    // Partials the kernel does not write must never be read: NaN them.
    FLASHMLA_ASSERT_CUDA(plan->workspace.fill_bytes(0xFF));
  }
  const Status valid = validate(args);
  ASSERT_TRUE(valid.ok()) << "sparse_decode: " << valid.what();
  // Uploads and fills ran on the legacy default stream; the tests launch on
  // non-blocking streams.
  FLASHMLA_ASSERT_CUDA(cudaDeviceSynchronize());
}

std::string enqueue_plan_and_decode(const SparseDecodeArgs& args, const SparsePlan& plan, cudaStream_t stream) {
  const Status planned = run(plan.plan, nullptr, 0, stream);
  if (!planned.ok()) {
    return std::string("plan_decode: ") + to_string(planned.code) + ": " + planned.what();
  }
  const Status decoded = run(args, plan.workspace.get(), plan.workspace_bytes, stream);
  if (!decoded.ok()) {
    return std::string("sparse_decode: ") + to_string(decoded.code) + ": " + decoded.what();
  }
  return "";
}

void poison_outputs(const DeviceMirror<SparseDecodeArgs>& mirror, cudaStream_t stream) {
  FLASHMLA_ASSERT_CUDA(cudaMemsetAsync(mirror.out, 0xFF, mirror.host_shape.out.size() * sizeof(uint16_t), stream));
  FLASHMLA_ASSERT_CUDA(cudaMemsetAsync(mirror.lse, 0xFF, mirror.host_shape.lse.size() * sizeof(float), stream));
}

void download_outputs(const DeviceMirror<SparseDecodeArgs>& mirror, HostOutputs* got) {
  *got = mirror.host_shape;
  FLASHMLA_ASSERT_CUDA(mirror.arena.download_bytes(mirror.out, got->out.data(), got->out.size() * sizeof(uint16_t)));
  FLASHMLA_ASSERT_CUDA(mirror.arena.download_bytes(mirror.lse, got->lse.data(), got->lse.size() * sizeof(float)));
}

void plan_and_run(DeviceMirror<SparseDecodeArgs>& mirror, int32_t num_sms, HostOutputs* got, SparsePlan* plan_out) {
  SparsePlan local;
  SparsePlan& plan = plan_out != nullptr ? *plan_out : local;
  ASSERT_NO_FATAL_FAILURE(prepare_plan(mirror.args, num_sms, &plan));
  Stream stream;
  ASSERT_TRUE(stream.ok()) << "cudaStreamCreate failed";
  ASSERT_NO_FATAL_FAILURE(poison_outputs(mirror, stream.get()));
  const std::string error = enqueue_plan_and_decode(mirror.args, plan, stream.get());
  ASSERT_TRUE(error.empty()) << error;
  FLASHMLA_ASSERT_CUDA(cudaStreamSynchronize(stream.get()));
  FLASHMLA_ASSERT_CUDA(cudaGetLastError());
  ASSERT_NO_FATAL_FAILURE(download_outputs(mirror, got));
}

void reference_outputs(const SparseDecodeProblem& problem, HostOutputs* expected) {
  *expected = problem.make_outputs();
  const auto start = std::chrono::steady_clock::now();
  const Status status = ref::sparse_decode(problem.host_args(*expected));
  add_reference_time(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  ASSERT_TRUE(status.ok()) << "reference: " << status.what();
}

void expect_matches(const StridedView& out_view, const StridedView& lse_view, const HostOutputs& got,
                    const HostOutputs& expected, const std::vector<float>& attn_sink, const std::string& what) {
  const std::vector<double> expected_out = gather(out_view, expected.out.data());
  const std::vector<double> expected_lse = gather(lse_view, expected.lse.data());
  const std::vector<double> got_out = gather(out_view, got.out.data());

  CompareOptions out_options;
  out_options.name = what + ": out";
  out_options.shape = out_view.shape;
  // All-zero is right when every row is empty or every head's sink is +inf.
  out_options.expect_empty = all_minus_inf(expected_lse) || all_exact_zero(expected_out);
  EXPECT_TRUE(compare_out(got_out, expected_out, out_options).assertion());
  EXPECT_TRUE(compare_lse(gather(lse_view, got.lse.data()), expected_lse, lse_options(what + ": lse", lse_view.shape))
                  .assertion());

  // out view [b, s_q, h_q, d_v], lse view [b, h_q, s_q].
  const int64_t b = out_view.shape[0], s_q = out_view.shape[1], h_q = out_view.shape[2], d_v = out_view.shape[3];
  int64_t bad_empty = 0, bad_sink = 0;
  std::ostringstream first_empty, first_sink;
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t j = 0; j < s_q; ++j) {
      for (int64_t h = 0; h < h_q; ++h) {
        const bool empty =
            expected_lse[size_t((i * h_q + h) * s_q + j)] == -std::numeric_limits<double>::infinity();
        const bool sink_inf = !attn_sink.empty() && attn_sink[size_t(h)] == std::numeric_limits<float>::infinity();
        if (!empty && !sink_inf) continue;
        const int64_t base = i * out_view.strides[0] + j * out_view.strides[1] + h * out_view.strides[2];
        for (int64_t d = 0; d < d_v; ++d) {
          const uint16_t bits = got.out[size_t(base + d)];
          if (empty && bits != 0) {
            if (bad_empty++ == 0) {
              first_empty << "first at request " << i << ", token " << j << ", head " << h << ", dim " << d
                          << ": bits 0x" << std::hex << bits;
            }
            break;
          }
          if (!empty && (bits & 0x7FFF) != 0) {  // +-0 both are zero
            if (bad_sink++ == 0) {
              first_sink << "first at request " << i << ", token " << j << ", head " << h << ", dim " << d
                         << ": bits 0x" << std::hex << bits;
            }
            break;
          }
        }
      }
    }
  }
  EXPECT_EQ(bad_empty, 0) << what << ": empty rows whose out is not exactly +0 (" << first_empty.str() << ")";
  EXPECT_EQ(bad_sink, 0) << what << ": rows of a +inf-sink head whose out is not zero (" << first_sink.str() << ")";
  EXPECT_EQ(written_padding(out_view, got.out.data()), 0) << what << ": out padding was written";
  EXPECT_EQ(written_padding(lse_view, got.lse.data()), 0) << what << ": lse padding was written";
}

void expect_matches_reference(const SparseDecodeProblem& problem, const HostOutputs& got,
                              const HostOutputs& expected, const std::string& what) {
  expect_matches(problem.out_view(), problem.lse_view(), got, expected, problem.attn_sink, what);
}

void expect_bitwise_equal(const HostOutputs& a, const HostOutputs& b, const std::string& what) {
  ASSERT_EQ(a.out.size(), b.out.size());
  ASSERT_EQ(a.lse.size(), b.lse.size());
  int64_t out_diffs = 0, first_out = -1;
  for (size_t k = 0; k < a.out.size(); ++k) {
    if (a.out[k] != b.out[k] && out_diffs++ == 0) first_out = int64_t(k);
  }
  int64_t lse_diffs = 0, first_lse = -1;
  for (size_t k = 0; k < a.lse.size(); ++k) {
    if (std::memcmp(&a.lse[k], &b.lse[k], sizeof(float)) != 0 && lse_diffs++ == 0) first_lse = int64_t(k);
  }
  EXPECT_EQ(out_diffs, 0) << what << ": out differs in " << out_diffs << " of " << a.out.size()
                          << " elements, first at storage index " << first_out;
  EXPECT_EQ(lse_diffs, 0) << what << ": lse differs in " << lse_diffs << " of " << a.lse.size()
                          << " elements, first at storage index " << first_lse;
}

void run_sparse_problem(const SparseDecodeProblem& problem, int32_t num_sms_for_plan) {
  DeviceMirror<SparseDecodeArgs> mirror = to_device(problem);
  ASSERT_TRUE(mirror.ok()) << mirror.error();
  HostOutputs got;
  ASSERT_NO_FATAL_FAILURE(plan_and_run(mirror, num_sms_for_plan, &got));
  HostOutputs expected;
  ASSERT_NO_FATAL_FAILURE(reference_outputs(problem, &expected));
  expect_matches_reference(problem, got, expected, "gpu");
}

void run_sparse_case(const SparseDecodeConfig& config, int32_t num_sms_for_plan) {
  run_sparse_problem(make_sparse_case_problem(config), num_sms_for_plan);
}

int64_t reference_cost(const SparseDecodeConfig& c) {
  return c.b * c.s_q * c.h_q * (c.topk + c.extra_topk);
}

}  // namespace flashmla::test::sd
