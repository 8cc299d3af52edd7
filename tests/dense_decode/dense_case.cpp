#include "dense_decode/dense_case.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <utility>

#include "common/compare.h"
#include "common/strided.h"
#include "flashmla_ref/reference.h"

namespace flashmla::test {
namespace {

// Reference time, per test (recorded as the property "reference_seconds")
// and for the whole binary (printed at the end).
double g_total_reference_seconds = 0.0;
const ::testing::TestInfo* g_timed_test = nullptr;
double g_test_reference_seconds = 0.0;

class ReferenceTimeReport : public ::testing::Environment {
 public:
  void TearDown() override {
    if (g_total_reference_seconds > 0.0) {
      std::printf("[ dense decode ] CPU reference time, all tests: %.1f s\n", g_total_reference_seconds);
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

std::vector<double> logical(const StridedView& view, const void* data) { return gather(view, data); }

bool all_minus_inf(const std::vector<double>& lse) {
  for (double v : lse) {
    if (v != -std::numeric_limits<double>::infinity()) return false;
  }
  return true;
}

}  // namespace

DenseDecodeConfig dense_config(int64_t b, int64_t s_q, int64_t h_q, int64_t h_kv,
                               std::vector<int32_t> seqlens, DType dtype, bool causal) {
  DenseDecodeConfig c;
  c.b = b;
  c.s_q = s_q;
  c.h_q = h_q;
  c.h_kv = h_kv;
  c.seqlens = std::move(seqlens);
  c.dtype = dtype;
  c.causal = causal;
  c.softmax_scale = kSpreadScale;
  return c;
}

std::vector<int32_t> mixed_lengths(int64_t b, int32_t lo, int32_t hi, uint64_t seed, bool with_boundaries) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> length(lo, hi);
  std::vector<int32_t> lengths(static_cast<size_t>(b), 0);
  for (auto& v : lengths) v = length(rng);
  if (with_boundaries) {
    const int32_t boundaries[] = {0, 1, 63, 64, 65, 140};
    const int64_t n = std::min<int64_t>(b, 6);
    for (int64_t k = 0; k < n; ++k) lengths[size_t(k * b / n)] = boundaries[k];
  }
  return lengths;
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

void prepare_plan(DenseDecodeArgs& args, int32_t num_sms, DensePlan* plan) {
  const int32_t sms = num_sms > 0 ? num_sms : device_sm_count();
  ASSERT_GT(sms, 0) << "no SM count";
  PlanDecodeArgs& p = plan->plan;
  p = PlanDecodeArgs{};
  p.kind = DecodeKind::kDense;
  p.b = args.b;
  p.s_q = args.s_q;
  p.h_q = args.h_q;
  p.h_kv = args.h_kv;
  p.lengths = args.cache_seqlens;
  p.num_sms = sms;
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
  ASSERT_TRUE(valid.ok()) << "dense_decode: " << valid.what();
  // The uploads and fills so far ran on the legacy default stream (cudaMemcpy
  // from pageable memory and cudaMemset may return before they finish), and
  // the tests launch on non-blocking streams: finish them first.
  FLASHMLA_ASSERT_CUDA(cudaDeviceSynchronize());
}

std::string enqueue_plan_and_decode(const DenseDecodeArgs& args, const DensePlan& plan, cudaStream_t stream) {
  const Status planned = run(plan.plan, nullptr, 0, stream);
  if (!planned.ok()) {
    return std::string("plan_decode: ") + to_string(planned.code) + ": " + planned.what();
  }
  const Status decoded = run(args, plan.workspace.get(), plan.workspace_bytes, stream);
  if (!decoded.ok()) {
    return std::string("dense_decode: ") + to_string(decoded.code) + ": " + decoded.what();
  }
  return "";
}

void poison_outputs(const DeviceMirror<DenseDecodeArgs>& mirror, cudaStream_t stream) {
  FLASHMLA_ASSERT_CUDA(cudaMemsetAsync(mirror.out, 0xFF, mirror.host_shape.out.size() * sizeof(uint16_t), stream));
  FLASHMLA_ASSERT_CUDA(cudaMemsetAsync(mirror.lse, 0xFF, mirror.host_shape.lse.size() * sizeof(float), stream));
}

void download_outputs(const DeviceMirror<DenseDecodeArgs>& mirror, HostOutputs* got) {
  *got = mirror.host_shape;
  FLASHMLA_ASSERT_CUDA(mirror.arena.download_bytes(mirror.out, got->out.data(), got->out.size() * sizeof(uint16_t)));
  FLASHMLA_ASSERT_CUDA(mirror.arena.download_bytes(mirror.lse, got->lse.data(), got->lse.size() * sizeof(float)));
}

void plan_and_run(DeviceMirror<DenseDecodeArgs>& mirror, int32_t num_sms, HostOutputs* got, DensePlan* plan_out) {
  DensePlan local;
  DensePlan& plan = plan_out != nullptr ? *plan_out : local;
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

void reference_outputs(const DenseDecodeProblem& problem, HostOutputs* expected) {
  *expected = problem.make_outputs();
  const auto start = std::chrono::steady_clock::now();
  const Status status = ref::dense_decode(problem.host_args(*expected));
  add_reference_time(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  ASSERT_TRUE(status.ok()) << "reference: " << status.what();
}

void expect_matches_reference(const DenseDecodeProblem& problem, const HostOutputs& got,
                              const HostOutputs& expected, const std::string& what) {
  const StridedView out_view = problem.out_view();
  const StridedView lse_view = problem.lse_view();
  const std::vector<double> expected_lse = logical(lse_view, expected.lse.data());
  const bool all_empty = all_minus_inf(expected_lse);

  CompareOptions out_options;
  out_options.name = what + ": out";
  out_options.shape = out_view.shape;
  out_options.expect_empty = all_empty;
  EXPECT_TRUE(compare_out(logical(out_view, got.out.data()), logical(out_view, expected.out.data()), out_options)
                  .assertion());
  EXPECT_TRUE(compare_lse(logical(lse_view, got.lse.data()), expected_lse, lse_options(what + ": lse", lse_view.shape))
                  .assertion());

  // Empty rows (reference lse = -inf): out exactly +0, bit for bit.
  const DenseDecodeArgs& a = problem.args;
  int64_t bad_rows = 0;
  std::ostringstream first;
  for (int64_t i = 0; i < a.b; ++i) {
    for (int64_t h = 0; h < a.h_q; ++h) {
      for (int64_t j = 0; j < a.s_q; ++j) {
        if (expected_lse[size_t((i * a.h_q + h) * a.s_q + j)] != -std::numeric_limits<double>::infinity()) continue;
        const int64_t base = i * a.stride_out_b + j * a.stride_out_s + h * a.stride_out_h;
        for (int64_t d = 0; d < a.d_v; ++d) {
          const uint16_t bits = got.out[size_t(base + d)];
          if (bits != 0) {
            if (bad_rows++ == 0) {
              first << "first at request " << i << ", token " << j << ", head " << h << ", dim " << d
                    << ": bits 0x" << std::hex << bits;
            }
            break;
          }
        }
      }
    }
  }
  EXPECT_EQ(bad_rows, 0) << what << ": empty rows whose out is not exactly +0 (" << first.str() << ")";
  EXPECT_EQ(written_padding(out_view, got.out.data()), 0) << what << ": out padding was written";
  EXPECT_EQ(written_padding(lse_view, got.lse.data()), 0) << what << ": lse padding was written";
}

void expect_within_spec_of_each_other(const DenseDecodeProblem& problem, const HostOutputs& a,
                                      const HostOutputs& b, const std::string& what) {
  const StridedView out_view = problem.out_view();
  const StridedView lse_view = problem.lse_view();
  const std::vector<double> b_lse = logical(lse_view, b.lse.data());
  CompareOptions out_options;
  out_options.name = what + ": out";
  out_options.shape = out_view.shape;
  out_options.expect_empty = all_minus_inf(b_lse);
  EXPECT_TRUE(compare_out(logical(out_view, a.out.data()), logical(out_view, b.out.data()), out_options).assertion());
  EXPECT_TRUE(compare_lse(logical(lse_view, a.lse.data()), b_lse, lse_options(what + ": lse", lse_view.shape))
                  .assertion());
}

void expect_bitwise_equal(const HostOutputs& a, const HostOutputs& b, const std::string& what) {
  ASSERT_EQ(a.out.size(), b.out.size());
  ASSERT_EQ(a.lse.size(), b.lse.size());
  int64_t out_diffs = 0, first_out = -1;
  for (size_t k = 0; k < a.out.size(); ++k) {
    if (a.out[k] != b.out[k]) {
      if (out_diffs++ == 0) first_out = int64_t(k);
    }
  }
  int64_t lse_diffs = 0, first_lse = -1;
  for (size_t k = 0; k < a.lse.size(); ++k) {
    if (std::memcmp(&a.lse[k], &b.lse[k], sizeof(float)) != 0) {
      if (lse_diffs++ == 0) first_lse = int64_t(k);
    }
  }
  EXPECT_EQ(out_diffs, 0) << what << ": out differs in " << out_diffs << " of " << a.out.size()
                          << " elements, first at storage index " << first_out;
  EXPECT_EQ(lse_diffs, 0) << what << ": lse differs in " << lse_diffs << " of " << a.lse.size()
                          << " elements, first at storage index " << first_lse;
}

void run_dense_problem(const DenseDecodeProblem& problem, int32_t num_sms_for_plan) {
  DeviceMirror<DenseDecodeArgs> mirror = to_device(problem);
  ASSERT_TRUE(mirror.ok()) << mirror.error();
  HostOutputs got;
  ASSERT_NO_FATAL_FAILURE(plan_and_run(mirror, num_sms_for_plan, &got));
  HostOutputs expected;
  ASSERT_NO_FATAL_FAILURE(reference_outputs(problem, &expected));
  expect_matches_reference(problem, got, expected, "gpu");
}

void run_dense_case(const DenseDecodeConfig& config, int32_t num_sms_for_plan) {
  run_dense_problem(make_dense_decode_problem(config), num_sms_for_plan);
}

}  // namespace flashmla::test
