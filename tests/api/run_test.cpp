// run() and the device queries on the CPU: bad input is refused before any
// CUDA call, the workspace is checked, an empty batch returns without CUDA,
// and with no usable GPU (or fake pointers) every call returns an error
// Status instead of crashing.
#include <cstring>

#include <gtest/gtest.h>

#include "api/status_matchers.h"
#include "api/valid_args.h"

namespace flashmla::test {
namespace {

bool is_runtime_error(const Status& status) {
  // No GPU: the CUDA runtime fails. A GPU: the fake pointers are not device
  // memory. Either way an error with words, never ok and never a crash.
  return (status.code == StatusCode::kCudaError || status.code == StatusCode::kInvalidArgument) &&
         std::strlen(status.message) > 0;
}

TEST(Run, BadInputIsRejectedBeforeAnyCudaCall) {
  DenseDecodeArgs dense = dense_decode_args();
  dense.q = nullptr;
  EXPECT_TRUE(is_invalid(run(dense, nullptr, 0, nullptr), "q: expected a non-null pointer, got nullptr"));
  SparseDecodeArgs sparse = sparse_decode_args();
  sparse.topk = 0;
  EXPECT_TRUE(is_invalid(run(sparse, nullptr, 0, nullptr), "topk: expected >= 1, got 0"));
  SparsePrefillArgs prefill = sparse_prefill_args();
  prefill.softmax_scale = 0.0f;
  EXPECT_TRUE(is_invalid(run(prefill, nullptr, 0, nullptr), "softmax_scale"));
  CombineArgs combine = combine_args();
  combine.num_splits = 0;
  EXPECT_TRUE(is_invalid(run(combine, nullptr, 0, nullptr), "num_splits: expected >= 1, got 0"));
  PlanDecodeArgs plan = plan_decode_args();
  plan.num_sms = -1;
  EXPECT_TRUE(is_invalid(run(plan, nullptr, 0, nullptr), "num_sms: expected >= 1, got -1"));
}

TEST(Run, NotSupportedInputIsReportedBeforeAnyCudaCall) {
  EXPECT_TRUE(is_not_supported(run(dense_decode_args({.page_block_size = 16}), nullptr, 0, nullptr),
                               "page_block_size: expected 64"));
}

TEST(Run, WorkspaceSmallerThanWorkspaceSize) {
  const DenseDecodeArgs a = dense_decode_args();
  EXPECT_TRUE(is_invalid(run(a, fake_address(0x9000000), 100, nullptr),
                         "workspace_bytes: expected >= 8930304 (workspace_size(args)), got 100"));
}

TEST(Run, NullWorkspace) {
  const SparseDecodeArgs a = sparse_decode_args();
  const int64_t bytes = workspace_size(a);
  EXPECT_TRUE(is_invalid(run(a, nullptr, bytes, nullptr),
                         "workspace: expected a non-null pointer of 18123264 bytes, got nullptr"));
}

TEST(Run, MisalignedWorkspace) {
  const DenseDecodeArgs a = dense_decode_args();
  EXPECT_TRUE(is_invalid(run(a, fake_address(0x9000004), workspace_size(a), nullptr),
                         "workspace: expected a 16-byte aligned pointer, got 0x9000004"));
}

TEST(Run, EmptyBatchReturnsOkWithoutLaunching) {
  // No CUDA call is made: this passes on a machine without a GPU.
  EXPECT_TRUE(is_ok(run(dense_decode_args({.b = 0}), nullptr, 0, nullptr)));
  EXPECT_TRUE(is_ok(run(sparse_decode_args({.b = 0}), nullptr, 0, nullptr)));
  EXPECT_TRUE(is_ok(run(sparse_prefill_args({.s_q = 0}), nullptr, 0, nullptr)));
  EXPECT_TRUE(is_ok(run(combine_args({.b = 0}), nullptr, 0, nullptr)));
  EXPECT_TRUE(is_ok(run(plan_decode_args({.b = 0}), nullptr, 0, nullptr)));
}

TEST(Run, FakePointersGiveAnErrorNotACrash) {
  const DenseDecodeArgs dense = dense_decode_args();
  EXPECT_TRUE(is_runtime_error(run(dense, fake_address(0x9000000), workspace_size(dense), nullptr)));
  const SparseDecodeArgs sparse = sparse_decode_args();
  EXPECT_TRUE(is_runtime_error(run(sparse, fake_address(0x9000000), workspace_size(sparse), nullptr)));
  EXPECT_TRUE(is_runtime_error(run(sparse_prefill_args(), nullptr, 0, nullptr)));
  EXPECT_TRUE(is_runtime_error(run(combine_args(), nullptr, 0, nullptr)));
  EXPECT_TRUE(is_runtime_error(run(plan_decode_args(), nullptr, 0, nullptr)));
}

TEST(DeviceQueries, NullInfoIsInvalid) {
  EXPECT_TRUE(is_invalid(get_device_info(0, nullptr), "info: expected a non-null pointer, got nullptr"));
}

TEST(DeviceQueries, MissingDeviceIsAnErrorNotACrash) {
  DeviceInfo info;
  const Status status = get_device_info(1000, &info);
  EXPECT_TRUE(status.code == StatusCode::kCudaError || status.code == StatusCode::kInvalidArgument)
      << status.message;
  EXPECT_FALSE(check_device_supported(-1).ok());
}

TEST(StatusNames, EveryCodeHasAName) {
  EXPECT_STREQ(to_string(StatusCode::kOk), "ok");
  EXPECT_STREQ(to_string(StatusCode::kInvalidArgument), "invalid argument");
  EXPECT_STREQ(to_string(StatusCode::kNotSupported), "not supported");
  EXPECT_STREQ(to_string(StatusCode::kCudaError), "CUDA error");
}

}  // namespace
}  // namespace flashmla::test
