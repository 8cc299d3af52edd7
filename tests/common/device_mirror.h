// Device copies of a problem of problems.h: every input buffer uploaded,
// outputs allocated and NaN-poisoned, and the same Args with device
// pointers. The schedule is left empty: a GPU test plans it with the
// library (plan_decode) and sets args.schedule itself.
//
//   auto problem = make_dense_decode_problem(config);
//   DeviceMirror<DenseDecodeArgs> device = to_device(problem);
//   ASSERT_TRUE(device.ok()) << device.error;
//   ... run(device.args, ...) ...
//   HostOutputs got = device.download();  // compare with out_view()/lse_view()
#pragma once

#include <string>
#include <vector>

#include "common/gpu.h"
#include "common/outputs.h"
#include "common/problems.h"

namespace flashmla::test {

// Owns device buffers; every allocation or copy failure is remembered.
class DeviceArena {
 public:
  // Uploads `host`; an empty vector gives nullptr (an absent optional input).
  template <typename T>
  T* upload(const std::vector<T>& host) {
    if (host.empty()) return nullptr;
    return static_cast<T*>(upload_bytes(host.data(), host.size() * sizeof(T)));
  }
  // `bytes` of device memory filled with 0xFF (NaN in every output dtype).
  void* poisoned(size_t bytes);
  cudaError_t download_bytes(const void* device, void* host, size_t bytes) const;
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  void* upload_bytes(const void* host, size_t bytes);
  std::vector<DeviceBuffer> buffers_;
  std::string error_;
};

template <typename Args>
struct DeviceMirror {
  DeviceArena arena;
  Args args;                    // device pointers; schedule empty
  HostOutputs host_shape;       // sizes of the outputs (contents unused)
  void* out = nullptr;
  float* lse = nullptr;
  float* max_logits = nullptr;  // sparse prefill only

  bool ok() const { return arena.ok(); }
  std::string error() const { return arena.error(); }
  // Copies the device outputs back into host vectors of the problem's sizes.
  HostOutputs download() const {
    HostOutputs result = host_shape;
    arena.download_bytes(out, result.out.data(), result.out.size() * sizeof(uint16_t));
    arena.download_bytes(lse, result.lse.data(), result.lse.size() * sizeof(float));
    if (!result.max_logits.empty()) {
      arena.download_bytes(max_logits, result.max_logits.data(), result.max_logits.size() * sizeof(float));
    }
    return result;
  }
};

DeviceMirror<DenseDecodeArgs> to_device(const DenseDecodeProblem& problem);
DeviceMirror<SparseDecodeArgs> to_device(const SparseDecodeProblem& problem);
DeviceMirror<SparsePrefillArgs> to_device(const SparsePrefillProblem& problem);

}  // namespace flashmla::test
