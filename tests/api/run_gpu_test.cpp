// run() on a real device with real buffers: bad input is refused without
// launching anything; the device is taken from the tensors and the caller's
// current device is restored. (Every operation has a kernel now; each
// kernel's suite runs it on real data.)
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "api/status_matchers.h"
#include "api/valid_args.h"
#include "common/gpu.h"

namespace flashmla::test {
namespace {

// Real device buffers for dense_decode_args(): every tensor sized from its
// shape, the schedule and the workspace included.
struct DenseDecodeBuffers {
  DeviceBuffer q, kv, block_table, cache_seqlens, schedule, out, lse, workspace;

  bool allocate(DenseDecodeArgs& a) {
    const size_t e = 2;  // bf16
    bool ok = q.allocate(size_t(a.b * a.stride_q_b) * e) &&
              kv.allocate(size_t(a.num_blocks * a.stride_kv_block) * e) &&
              block_table.allocate(size_t(a.b * a.stride_block_table_b) * 4) &&
              cache_seqlens.allocate(size_t(a.b) * 4) &&
              schedule.allocate(size_t(a.schedule.bytes)) &&
              out.allocate(size_t(a.b * a.stride_out_b) * e) &&
              lse.allocate(size_t(a.b * a.stride_lse_b) * 4) &&
              workspace.allocate(size_t(workspace_size(a)));
    a.q = q.get();
    a.kv = kv.get();
    a.block_table = block_table.as<const int32_t>();
    a.cache_seqlens = cache_seqlens.as<const int32_t>();
    a.schedule.data = schedule.get();
    a.out = out.get();
    a.lse = lse.as<float>();
    return ok;
  }

  // Every request empty (length 0), and a schedule planned for that on the
  // device, so the kernel runs on well-defined inputs.
  bool plan_empty_batch(const DenseDecodeArgs& a) {
    if (cache_seqlens.fill_bytes(0) != cudaSuccess || block_table.fill_bytes(0xFF) != cudaSuccess) return false;
    PlanDecodeArgs plan;
    plan.kind = DecodeKind::kDense;
    plan.b = a.b;
    plan.s_q = a.s_q;
    plan.h_q = a.h_q;
    plan.h_kv = a.h_kv;
    plan.lengths = a.cache_seqlens;
    plan.num_sms = kFakeSmCount;  // what dense_decode_args planned its schedule for
    plan.schedule = schedule.get();
    return run(plan, nullptr, 0, nullptr).ok();
  }
};

int current_device() {
  int device = -1;
  cudaGetDevice(&device);
  return device;
}

TEST(GpuRun, ValidDenseDecodeRunsAndWritesEmptyRows) {
  FLASHMLA_REQUIRE_GPU();
  DenseDecodeArgs a = dense_decode_args();
  DenseDecodeBuffers buffers;
  ASSERT_TRUE(buffers.allocate(a));
  ASSERT_TRUE(buffers.plan_empty_batch(a));
  FLASHMLA_ASSERT_CUDA(buffers.out.fill_bytes(0xFF));
  const int before = current_device();
  const Status status = run(a, buffers.workspace.get(), int64_t(buffers.workspace.bytes()), nullptr);
  EXPECT_TRUE(is_ok(status)) << status.what();
  EXPECT_EQ(current_device(), before);
  FLASHMLA_ASSERT_CUDA(cudaDeviceSynchronize());
  // Every row of this dense [b, s_q, h_q, d_v] out is empty: exactly 0.
  std::vector<uint16_t> out(buffers.out.bytes() / 2);
  FLASHMLA_ASSERT_CUDA(buffers.out.download(out));
  for (uint16_t v : out) ASSERT_EQ(v, 0);
}

TEST(GpuRun, BadInputIsInvalidAndLaunchesNothing) {
  FLASHMLA_REQUIRE_GPU();
  DenseDecodeArgs a = dense_decode_args();
  DenseDecodeBuffers buffers;
  ASSERT_TRUE(buffers.allocate(a));
  FLASHMLA_ASSERT_CUDA(buffers.out.fill_bytes(0xFF));
  a.h_kv = 3;  // h_q = 16 is not a multiple
  EXPECT_TRUE(is_invalid(run(a, buffers.workspace.get(), int64_t(buffers.workspace.bytes()), nullptr),
                         "h_q: expected a multiple of h_kv = 3, got 16"));
  FLASHMLA_ASSERT_CUDA(cudaDeviceSynchronize());
  std::vector<uint8_t> out(buffers.out.bytes());
  FLASHMLA_ASSERT_CUDA(buffers.out.download(out));
  for (uint8_t byte : out) ASSERT_EQ(byte, 0xFF) << "out was written: something was launched";
}

// The host work of run() (pointer attributes, device queries, the guard)
// must be legal while a stream is captured in the strictest mode, or engines
// could not put run() in a CUDA graph.
TEST(GpuRun, HostPathIsLegalDuringStreamCapture) {
  FLASHMLA_REQUIRE_GPU();
  DenseDecodeArgs a = dense_decode_args();
  DenseDecodeBuffers buffers;
  ASSERT_TRUE(buffers.allocate(a));
  ASSERT_TRUE(buffers.plan_empty_batch(a));
  FLASHMLA_ASSERT_CUDA(cudaDeviceSynchronize());
  cudaStream_t stream = nullptr;
  FLASHMLA_ASSERT_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  FLASHMLA_ASSERT_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  const Status status =
      run(a, buffers.workspace.get(), int64_t(buffers.workspace.bytes()), stream);
  cudaGraph_t graph = nullptr;
  const cudaError_t end = cudaStreamEndCapture(stream, &graph);
  EXPECT_TRUE(is_ok(status)) << status.what();
  EXPECT_EQ(end, cudaSuccess) << cudaGetErrorString(end);
  if (graph != nullptr) cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

TEST(GpuRun, HostMemoryIsInvalid) {
  FLASHMLA_REQUIRE_GPU();
  DenseDecodeArgs a = dense_decode_args();
  DenseDecodeBuffers buffers;
  ASSERT_TRUE(buffers.allocate(a));
  std::vector<uint16_t> host_q(size_t(a.b * a.stride_q_b) + 8);
  // 16-byte aligned host address, so validation passes and run() has to ask
  // the runtime where the memory lives.
  const uintptr_t aligned = (reinterpret_cast<uintptr_t>(host_q.data()) + 15) / 16 * 16;
  a.q = reinterpret_cast<const void*>(aligned);
  EXPECT_TRUE(is_invalid(run(a, buffers.workspace.get(), int64_t(buffers.workspace.bytes()), nullptr),
                         "q: expected device memory, got unregistered host memory"));
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

TEST(GpuRun, RunsOnTheDeviceOfQAndRestoresTheCurrentDevice) {
  FLASHMLA_REQUIRE_GPU();
  int count = 0;
  FLASHMLA_ASSERT_CUDA(cudaGetDeviceCount(&count));
  if (count < 2) GTEST_SKIP() << "needs two GPUs";
  DenseDecodeArgs a = dense_decode_args();
  DenseDecodeBuffers buffers;
  FLASHMLA_ASSERT_CUDA(cudaSetDevice(1));
  ASSERT_TRUE(buffers.allocate(a));
  ASSERT_TRUE(buffers.plan_empty_batch(a));
  FLASHMLA_ASSERT_CUDA(buffers.out.fill_bytes(0xFF));
  FLASHMLA_ASSERT_CUDA(cudaDeviceSynchronize());
  FLASHMLA_ASSERT_CUDA(cudaSetDevice(0));
  // Device 0 is current, every tensor lives on device 1: the call runs there.
  const Status status = run(a, buffers.workspace.get(), int64_t(buffers.workspace.bytes()), nullptr);
  EXPECT_TRUE(is_ok(status)) << status.what();
  EXPECT_EQ(current_device(), 0);
  FLASHMLA_ASSERT_CUDA(cudaSetDevice(1));
  FLASHMLA_ASSERT_CUDA(cudaDeviceSynchronize());
  std::vector<uint16_t> out(buffers.out.bytes() / 2);
  FLASHMLA_ASSERT_CUDA(buffers.out.download(out));
  for (uint16_t v : out) ASSERT_EQ(v, 0) << "out of the empty batch, written on device 1";
  FLASHMLA_ASSERT_CUDA(cudaSetDevice(0));
}

TEST(GpuRun, TensorsOnTwoDevicesAreInvalid) {
  FLASHMLA_REQUIRE_GPU();
  int count = 0;
  FLASHMLA_ASSERT_CUDA(cudaGetDeviceCount(&count));
  if (count < 2) GTEST_SKIP() << "needs two GPUs";
  DenseDecodeArgs a = dense_decode_args();
  DenseDecodeBuffers buffers;
  ASSERT_TRUE(buffers.allocate(a));
  FLASHMLA_ASSERT_CUDA(cudaSetDevice(1));
  DeviceBuffer out_elsewhere(buffers.out.bytes());
  FLASHMLA_ASSERT_CUDA(cudaSetDevice(0));
  ASSERT_NE(out_elsewhere.get(), nullptr);
  a.out = out_elsewhere.get();
  EXPECT_TRUE(is_invalid(run(a, buffers.workspace.get(), int64_t(buffers.workspace.bytes()), nullptr),
                         "out: expected memory of device 0 (the device of q), got device 1"));
}

TEST(GpuDevice, InfoAndSupportOfDeviceZero) {
  FLASHMLA_REQUIRE_GPU();
  DeviceInfo info;
  ASSERT_TRUE(is_ok(get_device_info(0, &info)));
  EXPECT_EQ(info.device, 0);
  EXPECT_EQ(info.cc_major, 9);
  EXPECT_GT(info.sm_count, 0);
  EXPECT_GT(info.smem_per_block_optin, 0);
  EXPECT_GT(info.global_memory_bytes, 0);
  EXPECT_NE(info.name[0], '\0');
  EXPECT_TRUE(is_ok(check_device_supported(0)));
  EXPECT_TRUE(is_invalid(check_device_supported(1000), "device: expected 0.."));
}

}  // namespace
}  // namespace flashmla::test
