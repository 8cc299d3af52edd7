// flashmla._core: the C++ API for Python, torch-free.
//
// Every tensor argument is a DLPack array (PyTorch, CuPy, JAX, NumPy), read
// without a copy. Each call
//   1. reads shapes, dtypes and strides into the operation's Args struct,
//      checking what only the arrays can tell (rank, dtype, one extent agreed
//      by every array that has it, a contiguous last dimension);
//   2. runs flashmla::validate, so the library's messages reach the caller;
//   3. checks that the arrays are device memory;
//   4. releases the GIL and calls flashmla::run on `stream` (a cudaStream_t
//      as an int, 0 = the legacy default stream), which runs on the device
//      that owns the arrays, not the current one.
// Nothing here allocates device memory: out, lse, the schedule and the
// workspace come from the caller. Status codes become exceptions:
// invalid argument -> ValueError, not supported -> NotImplementedError,
// CUDA error -> RuntimeError.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "arrays.h"
#include "flashmla/flashmla.h"

namespace flashmla::python {
namespace {

using namespace nb::literals;

using Meta = std::vector<int64_t>;

// The host description of a schedule travels as 8 integers, in this order,
// so that it can cross torch.library op boundaries as an int list.
constexpr const char* kMetaFields[] = {"kind", "b",    "s_q",        "h_q",
                                       "h_kv", "topk", "extra_topk", "num_workers"};
constexpr size_t kMetaSize = sizeof(kMetaFields) / sizeof(kMetaFields[0]);

cudaStream_t to_stream(uintptr_t stream) { return reinterpret_cast<cudaStream_t>(stream); }

DecodeKind parse_kind(const std::string& kind) {
  if (kind == "dense") return DecodeKind::kDense;
  if (kind == "sparse") return DecodeKind::kSparse;
  raise_value_error("kind: expected 'dense' or 'sparse', got '%s'", kind.c_str());
}

int32_t to_int32(const char* name, int64_t value) {
  if (value < INT32_MIN || value > INT32_MAX) {
    raise_value_error("%s: expected a value that fits in int32, got %lld", name, (long long)value);
  }
  return int32_t(value);
}

Meta meta_of(const DecodeSchedule& s) {
  return {int64_t(s.kind), s.b, s.s_q, s.h_q, s.h_kv, s.topk, s.extra_topk, s.num_workers};
}

DecodeSchedule schedule_of(const ArrayView& schedule, const Meta& meta) {
  if (meta.size() != kMetaSize) {
    raise_value_error(
        "schedule_meta: expected %zu integers (kind, b, s_q, h_q, h_kv, topk, extra_topk, "
        "num_workers), got %zu",
        kMetaSize, meta.size());
  }
  DecodeSchedule s;
  s.data = schedule.data;
  s.bytes = schedule.nbytes;
  s.kind = DecodeKind(to_int32("schedule_meta kind", meta[0]));
  s.b = meta[1];
  s.s_q = meta[2];
  s.h_q = meta[3];
  s.h_kv = meta[4];
  s.topk = meta[5];
  s.extra_topk = meta[6];
  s.num_workers = to_int32("schedule_meta num_workers", meta[7]);
  return s;
}

PlanDecodeArgs plan_args(const std::string& kind, int64_t b, int64_t s_q, int64_t h_q, int64_t h_kv,
                         int64_t topk, int64_t extra_topk, int64_t num_sms) {
  PlanDecodeArgs args;
  args.kind = parse_kind(kind);
  args.b = b;
  args.s_q = s_q;
  args.h_q = h_q;
  args.h_kv = h_kv;
  args.topk = topk;
  args.extra_topk = extra_topk;
  args.num_sms = to_int32("num_sms", num_sms);
  return args;
}

// Bytes a decode call needs as workspace for a schedule with these shapes.
int64_t decode_workspace_bytes(const DecodeSchedule& s, int64_t d_v) {
  if (s.kind == DecodeKind::kSparse) {
    SparseDecodeArgs args;
    args.b = s.b;
    args.s_q = s.s_q;
    args.h_q = s.h_q;
    args.d_v = d_v;
    args.schedule = s;
    return workspace_size(args);
  }
  DenseDecodeArgs args;
  args.b = s.b;
  args.s_q = s.s_q;
  args.h_q = s.h_q;
  args.d_v = d_v;
  args.schedule = s;
  return workspace_size(args);
}

// The workspace argument of a decode call: nullptr and 0 bytes when absent.
ArrayView workspace_view(const std::optional<OutArray>& workspace) {
  if (!workspace) return absent("workspace");
  ArrayView view = view_of("workspace", *workspace, 1, "[bytes]");
  expect_byte_buffer(view);
  return view;
}

void expect_workspace(const ArrayView& workspace, int64_t needed) {
  if (workspace.nbytes >= needed) return;
  raise_value_error("workspace: expected at least %lld bytes (the workspace size of this call), got %lld",
                    (long long)needed, (long long)workspace.nbytes);
}

template <typename Args>
void run_released(const Args& args, const ArrayView& workspace, uintptr_t stream) {
  Status status;
  {
    nb::gil_scoped_release release;
    status = run(args, const_cast<void*>(workspace.data), workspace.nbytes, to_stream(stream));
  }
  raise_if_error(status);
}

// q [b, s_q, h_q, d_qk] of a decode call (dense or sparse: their Args name
// these fields alike); q's dtype is the caller's check.
template <typename DecodeArgs>
void bind_decode_q(DecodeArgs& a, const ArrayView& q) {
  a.b = q.shape[0];
  a.s_q = q.shape[1];
  a.h_q = q.shape[2];
  a.d_qk = q.shape[3];
  a.q = q.data;
  a.stride_q_b = q.strides[0];
  a.stride_q_s = q.strides[1];
  a.stride_q_h = q.strides[2];
}

// out [b, s_q, h_q, d_v] of a decode or combine call, its first three
// extents checked against `source` (the array b, s_q and h_q came from);
// d_v and out's dtype are the caller's.
template <typename Args>
void bind_out(Args& a, const ArrayView& out, const std::string& source) {
  expect_extent(out, 0, a.b, ("b of " + source).c_str());
  expect_extent(out, 1, a.s_q, ("s_q of " + source).c_str());
  expect_extent(out, 2, a.h_q, ("h_q of " + source).c_str());
  a.out = const_cast<void*>(out.data);
  a.stride_out_b = out.strides[0];
  a.stride_out_s = out.strides[1];
  a.stride_out_h = out.strides[2];
}

// lse [b, h_q, s_q] fp32 of a decode or combine call.
template <typename Args>
void bind_lse(Args& a, const ArrayView& lse, const std::string& source) {
  expect_dtype(lse, dtype_of(lse) == DType::kFloat32, "float32");
  expect_extent(lse, 0, a.b, ("b of " + source).c_str());
  expect_extent(lse, 1, a.h_q, ("h_q of " + source).c_str());
  expect_extent(lse, 2, a.s_q, ("s_q of " + source).c_str());
  a.lse = static_cast<float*>(const_cast<void*>(lse.data));
  a.stride_lse_b = lse.strides[0];
  a.stride_lse_h = lse.strides[1];
}

ArrayView optional_view(const char* name, const std::optional<InArray>& array, int ndim,
                        const char* dims) {
  return array ? view_of(name, *array, ndim, dims) : absent(name);
}

// ----- device ---------------------------------------------------------------------

nb::dict device_info(int32_t device) {
  DeviceInfo info;
  raise_if_error(get_device_info(device, &info));
  nb::dict d;
  d["device"] = info.device;
  d["name"] = std::string(info.name);
  d["sm_count"] = info.sm_count;
  d["cc_major"] = info.cc_major;
  d["cc_minor"] = info.cc_minor;
  d["smem_per_block_optin"] = info.smem_per_block_optin;
  d["l2_bytes"] = info.l2_bytes;
  d["global_memory_bytes"] = info.global_memory_bytes;
  return d;
}

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error of the runtime
    return 0;
  }
  return count;
}

// ----- plan_decode ------------------------------------------------------------------

nb::dict plan_decode_sizes(const std::string& kind, int64_t b, int64_t s_q, int64_t h_q,
                           int64_t h_kv, int64_t topk, int64_t extra_topk, int64_t num_sms,
                           int64_t d_v) {
  const PlanDecodeArgs args = plan_args(kind, b, s_q, h_q, h_kv, topk, extra_topk, num_sms);
  const DecodeSchedule s = describe_schedule(args);
  nb::dict d;
  d["num_workers"] = s.num_workers;
  d["schedule_bytes"] = workspace_size(args);
  d["workspace_bytes"] = decode_workspace_bytes(s, d_v);
  return d;
}

Meta describe(const std::string& kind, int64_t b, int64_t s_q, int64_t h_q, int64_t h_kv,
              int64_t topk, int64_t extra_topk, int64_t num_sms) {
  return meta_of(describe_schedule(plan_args(kind, b, s_q, h_q, h_kv, topk, extra_topk, num_sms)));
}

Meta plan_decode(const OutArray& schedule_array, const std::optional<InArray>& lengths_array,
                 const std::optional<InArray>& extra_lengths_array, const std::string& kind,
                 int64_t b, int64_t s_q, int64_t h_q, int64_t h_kv, int64_t topk,
                 int64_t extra_topk, int64_t num_sms, uintptr_t stream) {
  PlanDecodeArgs args = plan_args(kind, b, s_q, h_q, h_kv, topk, extra_topk, num_sms);
  ArrayView schedule = view_of("schedule", schedule_array, 1, "[bytes]");
  expect_byte_buffer(schedule);
  ArrayView lengths = optional_view("lengths", lengths_array, 1, "[b]");
  ArrayView extra_lengths = optional_view("extra_lengths", extra_lengths_array, 1, "[b]");
  for (const ArrayView* v : {&lengths, &extra_lengths}) {
    if (!v->present()) continue;
    expect_dtype(*v, is_int32(*v), "int32");
    expect_extent(*v, 0, b, "b");
  }
  args.lengths = static_cast<const int32_t*>(lengths.data);
  args.extra_lengths = static_cast<const int32_t*>(extra_lengths.data);
  args.schedule = const_cast<void*>(schedule.data);
  raise_if_error(validate(args));
  const int64_t needed = workspace_size(args);
  if (b > 0 && schedule.nbytes < needed) {
    raise_value_error("schedule: expected at least %lld bytes (plan_decode_sizes), got %lld",
                      (long long)needed, (long long)schedule.nbytes);
  }
  if (b > 0) {
    expect_device_memory({&schedule, &lengths, &extra_lengths});
    Status status;
    {
      nb::gil_scoped_release release;
      status = run(args, nullptr, 0, to_stream(stream));
    }
    raise_if_error(status);
  }
  DecodeSchedule described = describe_schedule(args);
  described.bytes = schedule.nbytes;
  return meta_of(described);
}

// ----- dense_decode ---------------------------------------------------------------

void dense_decode(const InArray& q_array, const InArray& kv_array, const InArray& block_table_array,
                  const InArray& cache_seqlens_array, const InArray& schedule_array,
                  const Meta& schedule_meta, double softmax_scale, bool causal,
                  const OutArray& out_array, const OutArray& lse_array,
                  const std::optional<OutArray>& workspace_array, uintptr_t stream) {
  const ArrayView q = view_of("q", q_array, 4, "[b, s_q, h_q, d_qk]");
  const ArrayView kv = view_of("kv", kv_array, 4, "[num_blocks, page_block_size, h_kv, d_qk]");
  const ArrayView block_table = view_of("block_table", block_table_array, 2, "[b, max_blocks_per_seq]");
  const ArrayView cache_seqlens = view_of("cache_seqlens", cache_seqlens_array, 1, "[b]");
  const ArrayView schedule = view_of("schedule", schedule_array, 1, "[bytes]");
  const ArrayView out = view_of("out", out_array, 4, "[b, s_q, h_q, d_v]");
  const ArrayView lse = view_of("lse", lse_array, 3, "[b, h_q, s_q]");
  const ArrayView workspace = workspace_view(workspace_array);

  const std::optional<DType> dtype = dtype_of(q);
  expect_dtype(q, dtype.has_value(), "bfloat16 or float16");
  DenseDecodeArgs a;
  bind_decode_q(a, q);
  a.dtype = *dtype;

  const std::string q_dtype = dtype_name(q.dtype);
  if (is_byte(kv)) {
    // An FP8 cache arrives as bytes: [num_blocks, page_block_size, 1, 656].
    a.kv_format = KVFormat::kFp8V32;
    expect_extent(kv, 3, kv_format_token_bytes(KVFormat::kFp8V32), "bytes of an fp8_v32 token");
  } else {
    expect_dtype(kv, kv.dtype == q.dtype, (q_dtype + " (the dtype of q) or uint8 (fp8_v32 bytes)").c_str());
    expect_extent(kv, 3, a.d_qk, "d_qk of q");
  }
  a.num_blocks = kv.shape[0];
  a.page_block_size = kv.shape[1];
  a.h_kv = kv.shape[2];
  a.kv = kv.data;
  a.stride_kv_block = kv.strides[0];
  a.stride_kv_row = kv.strides[1];
  a.stride_kv_h = kv.strides[2];

  expect_dtype(block_table, is_int32(block_table), "int32");
  expect_extent(block_table, 0, a.b, "b of q");
  a.max_blocks_per_seq = block_table.shape[1];
  a.block_table = static_cast<const int32_t*>(block_table.data);
  a.stride_block_table_b = block_table.strides[0];

  expect_dtype(cache_seqlens, is_int32(cache_seqlens), "int32");
  expect_extent(cache_seqlens, 0, a.b, "b of q");
  a.cache_seqlens = static_cast<const int32_t*>(cache_seqlens.data);

  expect_byte_buffer(schedule);
  a.schedule = schedule_of(schedule, schedule_meta);
  a.softmax_scale = float(softmax_scale);
  a.causal = causal;

  expect_dtype(out, out.dtype == q.dtype, (q_dtype + " (the dtype of q)").c_str());
  bind_out(a, out, "q");
  a.d_v = out.shape[3];
  bind_lse(a, lse, "q");

  raise_if_error(validate(a));
  expect_workspace(workspace, workspace_size(a));
  if (a.b == 0) return;
  expect_device_memory({&q, &kv, &block_table, &cache_seqlens, &schedule, &out, &lse, &workspace});
  run_released(a, workspace, stream);
}

// ----- sparse_decode --------------------------------------------------------------

KVFormat fp8_format_of(const ArrayView& kv) {
  expect_dtype(kv, is_byte(kv), "uint8 or float8_e4m3fn (an FP8 cache as bytes)");
  const int64_t token_bytes = kv.shape[3];
  if (token_bytes == kv_format_token_bytes(KVFormat::kFp8V32)) return KVFormat::kFp8V32;
  if (token_bytes == kv_format_token_bytes(KVFormat::kFp8Model1)) return KVFormat::kFp8Model1;
  raise_value_error("%s: expected shape[3] = 656 (fp8_v32) or 584 (fp8_model1) bytes per token, got %lld",
                    kv.name, (long long)token_bytes);
}

// FP8 pages are byte blobs of page_block_size packed tokens; only the page
// stride is free.
void expect_packed_pages(const ArrayView& kv) {
  expect_extent(kv, 2, 1, "one KV head");
  if (kv.shape[1] > 1 && kv.strides[1] != kv.shape[3]) {
    raise_value_error("%s: expected the tokens of a page packed back to back (stride[1] = %lld bytes), got %lld",
                      kv.name, (long long)kv.shape[3], (long long)kv.strides[1]);
  }
}

void sparse_decode(const InArray& q_array, const InArray& kv_array, const InArray& indices_array,
                   const std::optional<InArray>& topk_length_array,
                   const std::optional<InArray>& attn_sink_array,
                   const std::optional<InArray>& extra_kv_array,
                   const std::optional<InArray>& extra_indices_array,
                   const std::optional<InArray>& extra_topk_length_array,
                   const InArray& schedule_array, const Meta& schedule_meta, double softmax_scale,
                   const OutArray& out_array, const OutArray& lse_array,
                   const std::optional<OutArray>& workspace_array, uintptr_t stream) {
  const ArrayView q = view_of("q", q_array, 4, "[b, s_q, h_q, d_qk]");
  const ArrayView kv = view_of("kv", kv_array, 4, "[num_blocks, page_block_size, 1, token_bytes]");
  const ArrayView indices = view_of("indices", indices_array, 3, "[b, s_q, topk]");
  const ArrayView topk_length = optional_view("topk_length", topk_length_array, 1, "[b]");
  const ArrayView attn_sink = optional_view("attn_sink", attn_sink_array, 1, "[h_q]");
  const ArrayView extra_kv = optional_view("extra_kv", extra_kv_array, 4,
                                           "[extra_num_blocks, extra_page_block_size, 1, token_bytes]");
  const ArrayView extra_indices = optional_view("extra_indices", extra_indices_array, 3,
                                                "[b, s_q, extra_topk]");
  const ArrayView extra_topk_length = optional_view("extra_topk_length", extra_topk_length_array, 1, "[b]");
  const ArrayView schedule = view_of("schedule", schedule_array, 1, "[bytes]");
  const ArrayView out = view_of("out", out_array, 4, "[b, s_q, h_q, d_v]");
  const ArrayView lse = view_of("lse", lse_array, 3, "[b, h_q, s_q]");
  const ArrayView workspace = workspace_view(workspace_array);

  expect_dtype(q, dtype_of(q) == DType::kBFloat16, "bfloat16");
  SparseDecodeArgs a;
  bind_decode_q(a, q);

  a.kv_format = fp8_format_of(kv);
  expect_packed_pages(kv);
  a.num_blocks = kv.shape[0];
  a.page_block_size = kv.shape[1];
  a.kv = kv.data;
  a.stride_kv_block = kv.strides[0];

  expect_dtype(indices, is_int32(indices), "int32");
  expect_extent(indices, 0, a.b, "b of q");
  expect_extent(indices, 1, a.s_q, "s_q of q");
  a.topk = indices.shape[2];
  a.indices = static_cast<const int32_t*>(indices.data);
  a.stride_indices_b = indices.strides[0];
  a.stride_indices_s = indices.strides[1];

  for (const ArrayView* v : {&topk_length, &extra_topk_length}) {
    if (!v->present()) continue;
    expect_dtype(*v, is_int32(*v), "int32");
    expect_extent(*v, 0, a.b, "b of q");
  }
  a.topk_length = static_cast<const int32_t*>(topk_length.data);
  if (attn_sink.present()) {
    expect_dtype(attn_sink, dtype_of(attn_sink) == DType::kFloat32, "float32");
    expect_extent(attn_sink, 0, a.h_q, "h_q of q");
  }
  a.attn_sink = static_cast<const float*>(attn_sink.data);

  if (extra_kv.present()) {
    if (fp8_format_of(extra_kv) != a.kv_format) {
      raise_value_error("extra_kv: expected shape[3] = %lld (the token bytes of kv), got %lld",
                        (long long)kv.shape[3], (long long)extra_kv.shape[3]);
    }
    expect_packed_pages(extra_kv);
    a.extra_kv = extra_kv.data;
    a.extra_num_blocks = extra_kv.shape[0];
    a.extra_page_block_size = extra_kv.shape[1];
    a.stride_extra_kv_block = extra_kv.strides[0];
  }
  if (extra_indices.present()) {
    expect_dtype(extra_indices, is_int32(extra_indices), "int32");
    expect_extent(extra_indices, 0, a.b, "b of q");
    expect_extent(extra_indices, 1, a.s_q, "s_q of q");
    a.extra_indices = static_cast<const int32_t*>(extra_indices.data);
    a.extra_topk = extra_indices.shape[2];
    a.stride_extra_indices_b = extra_indices.strides[0];
    a.stride_extra_indices_s = extra_indices.strides[1];
  }
  a.extra_topk_length = static_cast<const int32_t*>(extra_topk_length.data);

  expect_byte_buffer(schedule);
  a.schedule = schedule_of(schedule, schedule_meta);
  a.softmax_scale = float(softmax_scale);

  expect_dtype(out, dtype_of(out) == DType::kBFloat16, "bfloat16");
  bind_out(a, out, "q");
  a.d_v = out.shape[3];
  bind_lse(a, lse, "q");

  raise_if_error(validate(a));
  expect_workspace(workspace, workspace_size(a));
  if (a.b == 0) return;
  expect_device_memory({&q, &kv, &indices, &topk_length, &attn_sink, &extra_kv, &extra_indices,
                        &extra_topk_length, &schedule, &out, &lse, &workspace});
  run_released(a, workspace, stream);
}

// ----- sparse_prefill -------------------------------------------------------------

void sparse_prefill(const InArray& q_array, const InArray& kv_array, const InArray& indices_array,
                    const std::optional<InArray>& attn_sink_array,
                    const std::optional<InArray>& topk_length_array, double softmax_scale,
                    const OutArray& out_array, const OutArray& max_logits_array,
                    const OutArray& lse_array, uintptr_t stream) {
  const ArrayView q = view_of("q", q_array, 3, "[s_q, h_q, d_qk]");
  const ArrayView kv = view_of("kv", kv_array, 3, "[s_kv, h_kv, d_qk]");
  const ArrayView indices = view_of("indices", indices_array, 3, "[s_q, h_kv, topk]");
  const ArrayView attn_sink = optional_view("attn_sink", attn_sink_array, 1, "[h_q]");
  const ArrayView topk_length = optional_view("topk_length", topk_length_array, 1, "[s_q]");
  const ArrayView out = view_of("out", out_array, 3, "[s_q, h_q, d_v]");
  const ArrayView max_logits = view_of("max_logits", max_logits_array, 2, "[s_q, h_q]");
  const ArrayView lse = view_of("lse", lse_array, 2, "[s_q, h_q]");

  expect_dtype(q, dtype_of(q) == DType::kBFloat16, "bfloat16");
  SparsePrefillArgs a;
  a.s_q = q.shape[0];
  a.h_q = q.shape[1];
  a.d_qk = q.shape[2];
  a.q = q.data;
  a.stride_q_s = q.strides[0];
  a.stride_q_h = q.strides[1];

  expect_dtype(kv, dtype_of(kv) == DType::kBFloat16, "bfloat16");
  expect_extent(kv, 2, a.d_qk, "d_qk of q");
  a.s_kv = kv.shape[0];
  a.h_kv = kv.shape[1];
  a.kv = kv.data;
  a.stride_kv_s = kv.strides[0];
  a.stride_kv_h = kv.strides[1];

  expect_dtype(indices, is_int32(indices), "int32");
  expect_extent(indices, 0, a.s_q, "s_q of q");
  expect_extent(indices, 1, a.h_kv, "h_kv of kv");
  a.topk = indices.shape[2];
  a.indices = static_cast<const int32_t*>(indices.data);
  a.stride_indices_s = indices.strides[0];
  a.stride_indices_h = indices.strides[1];

  if (attn_sink.present()) {
    expect_dtype(attn_sink, dtype_of(attn_sink) == DType::kFloat32, "float32");
    expect_extent(attn_sink, 0, a.h_q, "h_q of q");
  }
  a.attn_sink = static_cast<const float*>(attn_sink.data);
  if (topk_length.present()) {
    expect_dtype(topk_length, is_int32(topk_length), "int32");
    expect_extent(topk_length, 0, a.s_q, "s_q of q");
  }
  a.topk_length = static_cast<const int32_t*>(topk_length.data);
  a.softmax_scale = float(softmax_scale);

  expect_dtype(out, dtype_of(out) == DType::kBFloat16, "bfloat16");
  expect_extent(out, 0, a.s_q, "s_q of q");
  expect_extent(out, 1, a.h_q, "h_q of q");
  a.d_v = out.shape[2];
  a.out = const_cast<void*>(out.data);
  a.stride_out_s = out.strides[0];
  a.stride_out_h = out.strides[1];

  for (const ArrayView* v : {&max_logits, &lse}) {
    expect_dtype(*v, dtype_of(*v) == DType::kFloat32, "float32");
    expect_extent(*v, 0, a.s_q, "s_q of q");
    expect_extent(*v, 1, a.h_q, "h_q of q");
  }
  a.max_logits = static_cast<float*>(const_cast<void*>(max_logits.data));
  a.stride_max_logits_s = max_logits.strides[0];
  a.lse = static_cast<float*>(const_cast<void*>(lse.data));
  a.stride_lse_s = lse.strides[0];

  raise_if_error(validate(a));
  if (a.s_q == 0) return;
  expect_device_memory({&q, &kv, &indices, &attn_sink, &topk_length, &out, &max_logits, &lse});
  run_released(a, absent("workspace"), stream);
}

// ----- combine --------------------------------------------------------------------

void combine(const InArray& out_partial_array, const InArray& lse_partial_array,
             const std::optional<InArray>& attn_sink_array, const OutArray& out_array,
             const OutArray& lse_array, uintptr_t stream) {
  const ArrayView out_partial =
      view_of("out_partial", out_partial_array, 5, "[num_splits, b, s_q, h_q, d_v]");
  const ArrayView lse_partial = view_of("lse_partial", lse_partial_array, 4, "[num_splits, b, h_q, s_q]");
  const ArrayView attn_sink = optional_view("attn_sink", attn_sink_array, 1, "[h_q]");
  const ArrayView out = view_of("out", out_array, 4, "[b, s_q, h_q, d_v]");
  const ArrayView lse = view_of("lse", lse_array, 3, "[b, h_q, s_q]");

  const std::optional<DType> partial_dtype = dtype_of(out_partial);
  expect_dtype(out_partial, partial_dtype.has_value(), "float32, bfloat16 or float16");
  CombineArgs a;
  a.num_splits = out_partial.shape[0];
  a.b = out_partial.shape[1];
  a.s_q = out_partial.shape[2];
  a.h_q = out_partial.shape[3];
  a.d_v = out_partial.shape[4];
  a.partial_dtype = *partial_dtype;
  a.out_partial = out_partial.data;
  a.stride_out_partial_split = out_partial.strides[0];
  a.stride_out_partial_b = out_partial.strides[1];
  a.stride_out_partial_s = out_partial.strides[2];
  a.stride_out_partial_h = out_partial.strides[3];

  expect_dtype(lse_partial, dtype_of(lse_partial) == DType::kFloat32, "float32");
  expect_extent(lse_partial, 0, a.num_splits, "num_splits of out_partial");
  expect_extent(lse_partial, 1, a.b, "b of out_partial");
  expect_extent(lse_partial, 2, a.h_q, "h_q of out_partial");
  expect_extent(lse_partial, 3, a.s_q, "s_q of out_partial");
  a.lse_partial = static_cast<const float*>(lse_partial.data);
  a.stride_lse_partial_split = lse_partial.strides[0];
  a.stride_lse_partial_b = lse_partial.strides[1];
  a.stride_lse_partial_h = lse_partial.strides[2];

  if (attn_sink.present()) {
    expect_dtype(attn_sink, dtype_of(attn_sink) == DType::kFloat32, "float32");
    expect_extent(attn_sink, 0, a.h_q, "h_q of out_partial");
  }
  a.attn_sink = static_cast<const float*>(attn_sink.data);

  const std::optional<DType> dtype = dtype_of(out);
  expect_dtype(out, dtype.has_value(), "bfloat16, float16 or float32");
  bind_out(a, out, "out_partial");
  expect_extent(out, 3, a.d_v, "d_v of out_partial");
  a.dtype = *dtype;
  bind_lse(a, lse, "out_partial");

  raise_if_error(validate(a));
  if (a.b == 0) return;
  expect_device_memory({&out_partial, &lse_partial, &attn_sink, &out, &lse});
  run_released(a, absent("workspace"), stream);
}

}  // namespace
}  // namespace flashmla::python

NB_MODULE(_core, m) {
  using namespace flashmla::python;
  m.doc() = "FlashMLA-cpp core: MLA kernels for Hopper on DLPack arrays (torch-free).";
  m.attr("__version__") = FLASHMLA_VERSION;
  m.attr("CUDA_RUNTIME_VERSION") = CUDART_VERSION;
  nb::list fields;
  for (const char* field : kMetaFields) fields.append(field);
  m.attr("SCHEDULE_META_FIELDS") = nb::tuple(fields);

  m.def("device_count", &device_count,
        "Number of CUDA devices the runtime sees (0 without a driver or GPU).");
  m.def("device_info", &device_info, "device"_a,
        "Properties of CUDA device `device` as a dict (RuntimeError without a GPU).");
  m.def(
      "check_device_supported",
      [](int32_t device) { raise_if_error(flashmla::check_device_supported(device)); }, "device"_a,
      "Returns when `device` can run the kernels (sm_90); NotImplementedError otherwise.");

  m.def("plan_decode_sizes", &plan_decode_sizes, "kind"_a, nb::kw_only(), "b"_a, "s_q"_a, "h_q"_a,
        "h_kv"_a = 1, "topk"_a = 0, "extra_topk"_a = 0, "num_sms"_a, "d_v"_a = 512,
        "Bytes of the schedule and of a decode call's workspace, and the number of workers, for a "
        "decode of these shapes. Both sizes grow with b: sized at the largest batch, the buffers "
        "serve every smaller one.");
  m.def("describe_schedule", &describe, "kind"_a, nb::kw_only(), "b"_a, "s_q"_a, "h_q"_a,
        "h_kv"_a = 1, "topk"_a = 0, "extra_topk"_a = 0, "num_sms"_a,
        "The schedule description (SCHEDULE_META_FIELDS) that plan_decode returns, computed on "
        "the host without planning.");
  m.def("plan_decode", &plan_decode, "schedule"_a, "lengths"_a.none(), "extra_lengths"_a.none(),
        "kind"_a, nb::kw_only(), "b"_a, "s_q"_a, "h_q"_a, "h_kv"_a = 1, "topk"_a = 0,
        "extra_topk"_a = 0, "num_sms"_a, "stream"_a = 0,
        "Plans a decode step into `schedule` (a device byte buffer) on `stream`, from the "
        "device-resident lengths (cache_seqlens for dense; topk_length or None for sparse). "
        "Returns the schedule description to pass to every decode call of the step.");
  m.def("dense_decode", &dense_decode, "q"_a, "kv"_a, "block_table"_a, "cache_seqlens"_a,
        "schedule"_a, "schedule_meta"_a, "softmax_scale"_a, "causal"_a, "out"_a, "lse"_a,
        "workspace"_a.none(), "stream"_a = 0,
        "Dense paged decode into out [b, s_q, h_q, d_v] and lse [b, h_q, s_q] (natural log, -inf "
        "for rows with no key).");
  m.def("sparse_decode", &sparse_decode, "q"_a, "kv"_a, "indices"_a, "topk_length"_a.none(),
        "attn_sink"_a.none(), "extra_kv"_a.none(), "extra_indices"_a.none(),
        "extra_topk_length"_a.none(), "schedule"_a, "schedule_meta"_a, "softmax_scale"_a, "out"_a,
        "lse"_a, "workspace"_a.none(), "stream"_a = 0,
        "Sparse decode over an FP8 paged cache (kv as bytes).");
  m.def("sparse_prefill", &sparse_prefill, "q"_a, "kv"_a, "indices"_a, "attn_sink"_a.none(),
        "topk_length"_a.none(), "softmax_scale"_a, "out"_a, "max_logits"_a, "lse"_a,
        "stream"_a = 0, "Sparse prefill over a bf16 kv with top-k indices.");
  m.def("combine", &combine, "out_partial"_a, "lse_partial"_a, "attn_sink"_a.none(), "out"_a,
        "lse"_a, "stream"_a = 0, "Merges split partial results into out and lse.");
}
