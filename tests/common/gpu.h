// GPU plumbing for tests: is there a usable sm_90 device, device buffers
// (RAII, never leaked on a failed assertion), and CUDA error checks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

namespace flashmla::test {

// True when a CUDA device of compute capability 9.x is present. Cached.
bool gpu_available();

// In a GPU test body: skip cleanly (not fail) when there is no sm_90 GPU.
#define FLASHMLA_REQUIRE_GPU()                                       \
  do {                                                               \
    if (!::flashmla::test::gpu_available()) {                        \
      GTEST_SKIP() << "no sm_90 GPU: GPU test skipped";              \
    }                                                                \
  } while (0)

#define FLASHMLA_ASSERT_CUDA(expr)                                                      \
  do {                                                                                  \
    cudaError_t flashmla_err_ = (expr);                                                 \
    ASSERT_EQ(flashmla_err_, cudaSuccess) << #expr << ": " << cudaGetErrorString(flashmla_err_); \
  } while (0)

// Multiprocessor count of the current device (0 when unknown).
int32_t device_sm_count();

// RAII CUDA stream, non-blocking, so a library that launches on the legacy
// default stream instead of the caller's is not silently ordered.
class Stream {
 public:
  Stream();
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }
  bool ok() const { return stream_ != nullptr; }

 private:
  cudaStream_t stream_ = nullptr;
};

// Owns `bytes` of device memory. Copies are explicit.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes) { allocate(bytes); }
  ~DeviceBuffer() { release(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept { *this = static_cast<DeviceBuffer&&>(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      release();
      ptr_ = other.ptr_;
      bytes_ = other.bytes_;
      other.ptr_ = nullptr;
      other.bytes_ = 0;
    }
    return *this;
  }

  // Returns false (and holds nothing) when cudaMalloc fails.
  bool allocate(size_t bytes);
  void release();

  void* get() const { return ptr_; }
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }

  // Host <-> device copies of the first src.size() elements; synchronous.
  template <typename T>
  cudaError_t upload(const std::vector<T>& src) {
    return cudaMemcpy(ptr_, src.data(), src.size() * sizeof(T), cudaMemcpyHostToDevice);
  }
  template <typename T>
  cudaError_t download(std::vector<T>& dst) const {
    return cudaMemcpy(dst.data(), ptr_, dst.size() * sizeof(T), cudaMemcpyDeviceToHost);
  }
  // Fills every byte with `value` (0xFF makes fp32/bf16/fp16 NaN: poison).
  cudaError_t fill_bytes(int value) { return cudaMemset(ptr_, value, bytes_); }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Uploads a host vector into a fresh device buffer.
template <typename T>
DeviceBuffer to_device(const std::vector<T>& host) {
  DeviceBuffer buffer(host.size() * sizeof(T) > 0 ? host.size() * sizeof(T) : 16);
  if (buffer.get() != nullptr && !host.empty()) buffer.upload(host);
  return buffer;
}

}  // namespace flashmla::test
