#include "common/decode_run.h"

#include <algorithm>
#include <vector>

#include "common/decode_schedule.h"

namespace flashmla::test {
namespace {

const char* operation_name(const DenseDecodeArgs&) { return "dense_decode"; }
const char* operation_name(const SparseDecodeArgs&) { return "sparse_decode"; }

PlanDecodeArgs plan_args_of(const DenseDecodeArgs& args, int32_t num_sms) { return dense_plan_args(args, num_sms); }
PlanDecodeArgs plan_args_of(const SparseDecodeArgs& args, int32_t num_sms) { return sparse_plan_args(args, num_sms); }

template <typename Args>
void prepare(Args& args, int32_t num_sms, DecodePlan<Args>* plan) {
  const int32_t sms = num_sms > 0 ? num_sms : device_sm_count();
  ASSERT_GT(sms, 0) << "no SM count";
  PlanDecodeArgs& p = plan->plan;
  p = plan_args_of(args, sms);
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
  ASSERT_TRUE(valid.ok()) << operation_name(args) << ": " << valid.what();
  // The uploads and fills so far ran on the legacy default stream (cudaMemcpy
  // from pageable memory and cudaMemset may return before they finish), and
  // the tests launch on non-blocking streams: finish them first.
  FLASHMLA_ASSERT_CUDA(cudaDeviceSynchronize());
}

template <typename Args>
std::string enqueue(const Args& args, const DecodePlan<Args>& plan, cudaStream_t stream) {
  const Status planned = run(plan.plan, nullptr, 0, stream);
  if (!planned.ok()) {
    return std::string("plan_decode: ") + to_string(planned.code) + ": " + planned.what();
  }
  const Status decoded = run(args, plan.workspace.get(), plan.workspace_bytes, stream);
  if (!decoded.ok()) {
    return std::string(operation_name(args)) + ": " + to_string(decoded.code) + ": " + decoded.what();
  }
  return "";
}

template <typename Args>
void poison(const DeviceMirror<Args>& mirror, cudaStream_t stream) {
  FLASHMLA_ASSERT_CUDA(cudaMemsetAsync(mirror.out, 0xFF, mirror.host_shape.out.size() * sizeof(uint16_t), stream));
  FLASHMLA_ASSERT_CUDA(cudaMemsetAsync(mirror.lse, 0xFF, mirror.host_shape.lse.size() * sizeof(float), stream));
}

template <typename Args>
void download(const DeviceMirror<Args>& mirror, HostOutputs* got) {
  *got = mirror.host_shape;
  FLASHMLA_ASSERT_CUDA(mirror.arena.download_bytes(mirror.out, got->out.data(), got->out.size() * sizeof(uint16_t)));
  FLASHMLA_ASSERT_CUDA(mirror.arena.download_bytes(mirror.lse, got->lse.data(), got->lse.size() * sizeof(float)));
}

template <typename Args>
void run_all(DeviceMirror<Args>& mirror, int32_t num_sms, HostOutputs* got, DecodePlan<Args>* plan_out) {
  DecodePlan<Args> local;
  DecodePlan<Args>& plan = plan_out != nullptr ? *plan_out : local;
  ASSERT_NO_FATAL_FAILURE(prepare(mirror.args, num_sms, &plan));
  Stream stream;
  ASSERT_TRUE(stream.ok()) << "cudaStreamCreate failed";
  ASSERT_NO_FATAL_FAILURE(poison(mirror, stream.get()));
  const std::string error = enqueue(mirror.args, plan, stream.get());
  ASSERT_TRUE(error.empty()) << error;
  FLASHMLA_ASSERT_CUDA(cudaStreamSynchronize(stream.get()));
  FLASHMLA_ASSERT_CUDA(cudaGetLastError());
  ASSERT_NO_FATAL_FAILURE(download(mirror, got));
}

template <typename Args>
void plan_and_call_validate(Args& args, const std::string& name) {
  alignas(16) static unsigned char schedule_storage[16];
  PlanDecodeArgs plan = plan_args_of(args, 132);
  plan.schedule = schedule_storage;  // never written: validate() only
  const Status plan_status = validate(plan);
  EXPECT_TRUE(plan_status.ok()) << name << ": plan_decode: " << plan_status.what();
  args.schedule = describe_schedule(plan);
  const Status status = validate(args);
  EXPECT_TRUE(status.ok()) << name << ": " << status.what();
}

template <typename Args>
void split_path_ran(const DecodePlan<Args>& plan, int64_t b, bool many_partials, const std::string& what) {
  ASSERT_GT(plan.schedule.num_workers, 1) << what;
  ScheduleHeader header{};
  FLASHMLA_ASSERT_CUDA(cudaMemcpy(&header, plan.schedule_buffer.get(), sizeof(header), cudaMemcpyDeviceToHost));
  EXPECT_GT(header.num_partials, header.b) << what << ": expected the long request to be split";
  EXPECT_EQ(header.b, b) << what;
  if (many_partials) {
    const ScheduleView view = schedule_view(plan.schedule_buffer.get(), header.num_workers);
    std::vector<int32_t> split_begin(size_t(header.b) + 1);
    FLASHMLA_ASSERT_CUDA(cudaMemcpy(split_begin.data(), view.split_begin, split_begin.size() * sizeof(int32_t),
                                    cudaMemcpyDeviceToHost));
    EXPECT_GT(max_partials_of_a_request(split_begin.data(), header.b), kManyPartials) << what;
  }
}

}  // namespace

void expect_plan_and_call_validate(DenseDecodeArgs args, const std::string& name) {
  plan_and_call_validate(args, name);
}
void expect_plan_and_call_validate(SparseDecodeArgs args, const std::string& name) {
  plan_and_call_validate(args, name);
}

void expect_split_path_ran(const DensePlan& plan, int64_t b, bool many_partials, const std::string& what) {
  split_path_ran(plan, b, many_partials, what);
}
void expect_split_path_ran(const SparsePlan& plan, int64_t b, bool many_partials, const std::string& what) {
  split_path_ran(plan, b, many_partials, what);
}

int32_t max_partials_of_a_request(const int32_t* split_begin, int64_t b) {
  int32_t most = 0;
  for (int64_t i = 0; i < b; ++i) most = std::max(most, split_begin[i + 1] - split_begin[i]);
  return most;
}

PlanDecodeArgs dense_plan_args(const DenseDecodeArgs& args, int32_t num_sms) {
  PlanDecodeArgs p;
  p.kind = DecodeKind::kDense;
  p.b = args.b;
  p.s_q = args.s_q;
  p.h_q = args.h_q;
  p.h_kv = args.h_kv;
  p.lengths = args.cache_seqlens;
  p.num_sms = num_sms;
  return p;
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

void prepare_plan(DenseDecodeArgs& args, int32_t num_sms, DensePlan* plan) { prepare(args, num_sms, plan); }
void prepare_plan(SparseDecodeArgs& args, int32_t num_sms, SparsePlan* plan) { prepare(args, num_sms, plan); }

std::string enqueue_plan_and_decode(const DenseDecodeArgs& args, const DensePlan& plan, cudaStream_t stream) {
  return enqueue(args, plan, stream);
}
std::string enqueue_plan_and_decode(const SparseDecodeArgs& args, const SparsePlan& plan, cudaStream_t stream) {
  return enqueue(args, plan, stream);
}

void poison_outputs(const DeviceMirror<DenseDecodeArgs>& mirror, cudaStream_t stream) { poison(mirror, stream); }
void poison_outputs(const DeviceMirror<SparseDecodeArgs>& mirror, cudaStream_t stream) { poison(mirror, stream); }

void download_outputs(const DeviceMirror<DenseDecodeArgs>& mirror, HostOutputs* got) { download(mirror, got); }
void download_outputs(const DeviceMirror<SparseDecodeArgs>& mirror, HostOutputs* got) { download(mirror, got); }

void plan_and_run(DeviceMirror<DenseDecodeArgs>& mirror, int32_t num_sms, HostOutputs* got, DensePlan* plan_out) {
  run_all(mirror, num_sms, got, plan_out);
}
void plan_and_run(DeviceMirror<SparseDecodeArgs>& mirror, int32_t num_sms, HostOutputs* got, SparsePlan* plan_out) {
  run_all(mirror, num_sms, got, plan_out);
}

}  // namespace flashmla::test
