#include "run_case.h"

#include <algorithm>
#include <cstdio>
#include <future>
#include <limits>
#include <string>

#include "backend.h"
#include "flashmla/flashmla.h"
#include "flashmla_ref/reference.h"
#include "op_args.h"
#include "verify.h"

namespace flashmla::bench {

namespace {

std::string cuda_message(const char* what, cudaError_t err) {
  return std::string(what) + ": " + cudaGetErrorString(err);
}

Status cuda_status(const std::string& message) {
  Status s;
  s.code = StatusCode::kCudaError;
  std::snprintf(s.message, sizeof(s.message), "%s", message.c_str());
  return s;
}

// One operation of this library bound to a device workload: planned once,
// then called on any of the workload's KV pools. All calls share the
// schedule, the workspace and the outputs, as the layers of one decode step do.
class OpInstance : public Backend {
 public:
  Status prepare(const Case& c, const IndexData& index, DeviceWorkload* dw, int32_t num_sms,
                 cudaStream_t stream) override {
    c_ = c;
    dw_ = dw;
    const Tensors t = device_tensors(*dw, 0);
    DecodeSchedule schedule;
    if (c.op != Op::kSparsePrefill) {
      PlanDecodeArgs plan = make_plan_args(c, t, num_sms);
      const int64_t bytes = std::max<int64_t>(workspace_size(plan), 0);
      const cudaError_t err = schedule_.allocate(size_t(bytes));
      if (err != cudaSuccess) return cuda_status(cuda_message("schedule allocation", err));
      plan.schedule = schedule_.get();
      const Status planned = run(plan, nullptr, 0, stream);
      if (!planned.ok()) return planned;
      schedule = describe_schedule(plan);
    }
    int64_t workspace_bytes = 0;
    switch (c.op) {
      case Op::kDenseDecode:
        dense_ = make_dense_decode_args(c, index, t);
        dense_.schedule = schedule;
        workspace_bytes = workspace_size(dense_);
        break;
      case Op::kSparseDecode:
        sparse_ = make_sparse_decode_args(c, index, t);
        sparse_.schedule = schedule;
        workspace_bytes = workspace_size(sparse_);
        break;
      case Op::kSparsePrefill:
        prefill_ = make_sparse_prefill_args(c, t);
        workspace_bytes = workspace_size(prefill_);
        break;
    }
    workspace_bytes_ = std::max<int64_t>(workspace_bytes, 0);
    const cudaError_t err = workspace_.allocate(size_t(workspace_bytes_));
    if (err != cudaSuccess) return cuda_status(cuda_message("workspace allocation", err));
    return Status{};
  }

  Status call(int64_t pool, cudaStream_t stream) override {
    const void* kv = dw_->kv_pools[size_t(pool)].get();
    void* ws = workspace_bytes_ > 0 ? workspace_.get() : nullptr;
    switch (c_.op) {
      case Op::kDenseDecode: {
        DenseDecodeArgs a = dense_;
        a.kv = kv;
        return run(a, ws, workspace_bytes_, stream);
      }
      case Op::kSparseDecode: {
        SparseDecodeArgs a = sparse_;
        a.kv = kv;
        return run(a, ws, workspace_bytes_, stream);
      }
      case Op::kSparsePrefill: {
        SparsePrefillArgs a = prefill_;
        a.kv = kv;
        return run(a, ws, workspace_bytes_, stream);
      }
    }
    return cuda_status("unknown op");
  }

 private:
  Case c_;
  DeviceWorkload* dw_ = nullptr;
  DeviceBuffer schedule_;
  DeviceBuffer workspace_;
  int64_t workspace_bytes_ = 0;
  DenseDecodeArgs dense_;
  SparseDecodeArgs sparse_;
  SparsePrefillArgs prefill_;
};

std::unique_ptr<Backend> make_backend(const GpuContext& ctx) {
  return ctx.backend == BackendKind::kFlashMla ? make_flashmla_backend() : make_library_backend();
}

Status no_backend() {
  Status s;
  s.code = StatusCode::kNotSupported;
  std::snprintf(s.message, sizeof(s.message), "flashmla-bench was built without FlashMLA (-DFLASHMLA_PEER_SOURCE)");
  return s;
}

// Records a non-ok library status on the result: "not supported" is a
// normal outcome (the kernel is not built yet), anything else an error.
void record_status(const Status& s, const char* stage, CaseResult* r) {
  if (s.code == StatusCode::kNotSupported) {
    r->status = "not supported";
  } else {
    r->status = "error";
  }
  r->message = std::string(stage) + ": " + to_string(s.code) + (s.message[0] ? std::string(": ") + s.what() : "");
}

template <typename T>
cudaError_t download(const DeviceBuffer& src, std::vector<T>* dst) {
  if (dst->empty()) return cudaSuccess;
  return cudaMemcpy(dst->data(), src.get(), dst->size() * sizeof(T), cudaMemcpyDeviceToHost);
}

// The kernel's results on a reduced workload, to compare with the reference.
struct KernelResults {
  std::vector<uint16_t> out;
  std::vector<float> lse;
  std::vector<float> max_logits;
};

// Runs the kernel on the reduced copy. Returns false (with r updated) when
// the case cannot go on to verification.
bool run_reduced(HostWorkload& hw, const GpuContext& ctx, KernelResults* got, CaseResult* r) {
  DeviceWorkload vw;
  std::string error = upload_host_workload(hw, &vw);
  if (error.empty()) error = poison_device_outputs(&vw);
  if (!error.empty()) {
    r->status = "error";
    r->message = "verification upload: " + error;
    return false;
  }
  std::unique_ptr<Backend> op = make_backend(ctx);
  Status s = op ? op->prepare(hw.shape, hw.index, &vw, ctx.num_sms, ctx.stream) : no_backend();
  if (s.ok()) s = op->call(0, ctx.stream);
  if (s.ok()) s = op->collect(ctx.stream);
  if (!s.ok()) {
    record_status(s, "verification run", r);
    return false;
  }
  cudaError_t err = cudaStreamSynchronize(ctx.stream);
  got->out.resize(hw.out.size());
  got->lse.resize(hw.lse.size());
  got->max_logits.resize(hw.max_logits.size());
  if (err == cudaSuccess) err = download(vw.out, &got->out);
  if (err == cudaSuccess) err = download(vw.lse, &got->lse);
  if (err == cudaSuccess) err = download(vw.max_logits, &got->max_logits);
  if (err != cudaSuccess) {
    r->status = "error";
    r->message = cuda_message("verification run", err);
    return false;
  }
  return true;
}

// Bytes the timed workload needs on the device besides the KV pools.
int64_t side_bytes(const Case& c, const IndexData& index) {
  const TensorSizes s = tensor_sizes(c, index);
  return s.q * 2 + s.out * 2 + (s.lse + s.max_logits) * 4 +
         int64_t(index.block_table.size() + index.lengths.size() + index.indices.size()) * 4;
}

void time_full_size(const Case& c, const GpuContext& ctx, CaseResult* r) {
  const IndexData index = make_index_data(c);
  size_t free_bytes = 0;
  size_t total_bytes = 0;
  cudaMemGetInfo(&free_bytes, &total_bytes);
  const int64_t needed = r->pools * r->pool_bytes + side_bytes(c, index) + (int64_t(256) << 20);
  if (needed > int64_t(free_bytes)) {
    r->status = "error";
    r->message = "needs " + std::to_string(needed >> 20) + " MiB of device memory, " +
                 std::to_string(free_bytes >> 20) + " MiB free";
    return;
  }
  DeviceWorkload dw;
  const std::string error = make_device_workload(c, index, r->pools, &dw);
  if (!error.empty()) {
    r->status = "error";
    r->message = error;
    return;
  }
  std::unique_ptr<Backend> op = make_backend(ctx);
  Status s = op ? op->prepare(c, index, &dw, ctx.num_sms, ctx.stream) : no_backend();
  // One eager call outside the graph: finds "not supported" before capture
  // and loads the kernel's module.
  if (s.ok()) s = op->call(0, ctx.stream);
  if (!s.ok()) {
    record_status(s, "run", r);
    return;
  }
  const cudaError_t err = cudaStreamSynchronize(ctx.stream);
  if (err != cudaSuccess) {
    r->status = "error";
    r->message = cuda_message("eager call", err);
    return;
  }
  const int64_t n = std::max<int64_t>(10, r->pools);
  const int64_t pools = r->pools;
  Status call_status;
  const std::string timing_error = time_calls_in_graph(
      n, [&](int64_t k, cudaStream_t stream) { return op->call(k % pools, stream); }, ctx.stream, &r->timing,
      &call_status);
  if (!timing_error.empty()) {
    r->status = "error";
    r->message = timing_error;
  } else if (!call_status.ok()) {
    record_status(call_status, "captured call", r);
  } else {
    r->timed = true;
  }
}

}  // namespace

std::unique_ptr<Backend> make_library_backend() { return std::make_unique<OpInstance>(); }

Status run_reference(HostWorkload* hw) {
  const Tensors t = host_tensors(*hw);
  switch (hw->shape.op) {
    case Op::kDenseDecode: return ref::dense_decode(make_dense_decode_args(hw->shape, hw->index, t));
    case Op::kSparseDecode: return ref::sparse_decode(make_sparse_decode_args(hw->shape, hw->index, t));
    case Op::kSparsePrefill: return ref::sparse_prefill(make_sparse_prefill_args(hw->shape, t));
  }
  return cuda_status("unknown op");
}

CaseResult run_case_on_gpu(const Case& c, double anchor_us, const GpuContext& ctx) {
  CaseResult r;
  r.shape = c;
  r.verify_shape = reduced_for_verification(c);
  r.flops = case_flops(c);
  r.bytes = case_bytes(c);
  r.anchor_us = anchor_us;
  r.pool_bytes = kv_pool_bytes(c);
  r.pools = num_kv_pools(r.pool_bytes);
  r.verified = ctx.verify ? Verified::kNotApplicable : Verified::kSkipped;

  // 1. The kernel on the reduced copy; the reference then runs on a host
  //    thread while the GPU times the full-size workload.
  HostWorkload hw;
  KernelResults got;
  std::future<Status> reference;
  std::string generator_error;
  if (ctx.verify) {
    hw = make_host_workload(r.verify_shape);
    if (!run_reduced(hw, ctx, &got, &r)) return r;
    generator_error = check_device_generator(hw);
    reference = std::async(std::launch::async, [&hw] { return run_reference(&hw); });
  }

  // 2. Timing.
  if (ctx.time) time_full_size(c, ctx, &r);

  // 3. The comparison.
  if (reference.valid()) {
    const Status s = reference.get();
    if (!s.ok()) {
      r.verified = Verified::kFail;
      r.verify_detail = std::string("CPU reference: ") + to_string(s.code) + ": " + s.what();
    } else {
      const Comparison cmp = compare_results(got.out, hw.out, got.lse, hw.lse, got.max_logits, hw.max_logits);
      r.verified = cmp.ok ? Verified::kPass : Verified::kFail;
      r.verify_detail = cmp.detail;
    }
    if (!generator_error.empty()) {
      r.verified = Verified::kFail;
      r.verify_detail += "; timed workload generator: " + generator_error;
    }
  }
  return r;
}

}  // namespace flashmla::bench
