#include "common/device_mirror.h"

namespace flashmla::test {

void* DeviceArena::upload_bytes(const void* host, size_t bytes) {
  DeviceBuffer buffer;
  if (!buffer.allocate(bytes)) {
    error_ += "cudaMalloc of " + std::to_string(bytes) + " bytes failed; ";
    return nullptr;
  }
  const cudaError_t status = cudaMemcpy(buffer.get(), host, bytes, cudaMemcpyHostToDevice);
  if (status != cudaSuccess) error_ += std::string("upload: ") + cudaGetErrorString(status) + "; ";
  void* ptr = buffer.get();
  buffers_.push_back(std::move(buffer));
  return ptr;
}

void* DeviceArena::poisoned(size_t bytes) {
  DeviceBuffer buffer;
  if (!buffer.allocate(bytes > 0 ? bytes : 16)) {
    error_ += "cudaMalloc of " + std::to_string(bytes) + " bytes failed; ";
    return nullptr;
  }
  const cudaError_t status = buffer.fill_bytes(0xFF);
  if (status != cudaSuccess) error_ += std::string("poison: ") + cudaGetErrorString(status) + "; ";
  void* ptr = buffer.get();
  buffers_.push_back(std::move(buffer));
  return ptr;
}

cudaError_t DeviceArena::download_bytes(const void* device, void* host, size_t bytes) const {
  if (bytes == 0 || device == nullptr) return cudaSuccess;
  return cudaMemcpy(host, device, bytes, cudaMemcpyDeviceToHost);
}

namespace {

template <typename Args, typename Problem>
void add_outputs(const Problem& problem, DeviceMirror<Args>& mirror) {
  mirror.host_shape = problem.make_outputs();
  mirror.out = mirror.arena.poisoned(mirror.host_shape.out.size() * sizeof(uint16_t));
  mirror.lse = static_cast<float*>(mirror.arena.poisoned(mirror.host_shape.lse.size() * sizeof(float)));
  mirror.args.out = mirror.out;
  mirror.args.lse = mirror.lse;
}

}  // namespace

DeviceMirror<DenseDecodeArgs> to_device(const DenseDecodeProblem& problem) {
  DeviceMirror<DenseDecodeArgs> mirror;
  mirror.args = problem.args;
  mirror.args.q = mirror.arena.upload(problem.q);
  mirror.args.kv = mirror.arena.upload(problem.kv);
  mirror.args.block_table = mirror.arena.upload(problem.block_table);
  mirror.args.cache_seqlens = mirror.arena.upload(problem.cache_seqlens);
  add_outputs(problem, mirror);
  return mirror;
}

DeviceMirror<SparseDecodeArgs> to_device(const SparseDecodeProblem& problem) {
  DeviceMirror<SparseDecodeArgs> mirror;
  mirror.args = problem.args;
  mirror.args.q = mirror.arena.upload(problem.q);
  mirror.args.kv = mirror.arena.upload(problem.kv);
  mirror.args.indices = mirror.arena.upload(problem.indices);
  mirror.args.topk_length = mirror.arena.upload(problem.topk_length);
  mirror.args.attn_sink = mirror.arena.upload(problem.attn_sink);
  mirror.args.extra_kv = mirror.arena.upload(problem.extra_kv);
  mirror.args.extra_indices = mirror.arena.upload(problem.extra_indices);
  mirror.args.extra_topk_length = mirror.arena.upload(problem.extra_topk_length);
  add_outputs(problem, mirror);
  return mirror;
}

DeviceMirror<SparsePrefillArgs> to_device(const SparsePrefillProblem& problem) {
  DeviceMirror<SparsePrefillArgs> mirror;
  mirror.args = problem.args;
  mirror.args.q = mirror.arena.upload(problem.q);
  mirror.args.kv = mirror.arena.upload(problem.kv);
  mirror.args.indices = mirror.arena.upload(problem.indices);
  mirror.args.topk_length = mirror.arena.upload(problem.topk_length);
  mirror.args.attn_sink = mirror.arena.upload(problem.attn_sink);
  add_outputs(problem, mirror);
  mirror.max_logits =
      static_cast<float*>(mirror.arena.poisoned(mirror.host_shape.max_logits.size() * sizeof(float)));
  mirror.args.max_logits = mirror.max_logits;
  return mirror;
}

}  // namespace flashmla::test
