#include "kernels/trace.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <vector>

#include <cuda_runtime_api.h>

#include "device/trace.cuh"

namespace flashmla::kernels {
namespace {

constexpr int kTracedKernels = 2;
constexpr size_t kStampsPerKernel = size_t(device::kTraceCtas) * device::kTraceSlots;
uint64_t* g_stamps = nullptr;
std::once_flag g_once;

// At exit: the stamps the last calls left, as CSV, to $FLASHMLA_TRACE_DUMP.
void dump() {
  const char* path = std::getenv("FLASHMLA_TRACE_DUMP");
  if (path == nullptr || g_stamps == nullptr) return;
  std::vector<uint64_t> host(kStampsPerKernel * kTracedKernels);
  if (cudaDeviceSynchronize() != cudaSuccess ||
      cudaMemcpy(host.data(), g_stamps, host.size() * sizeof(uint64_t), cudaMemcpyDeviceToHost) != cudaSuccess) {
    std::fprintf(stderr, "flashmla trace: could not read the stamps back\n");
    return;
  }
  FILE* f = std::fopen(path, "w");
  if (f == nullptr) {
    std::fprintf(stderr, "flashmla trace: cannot write %s\n", path);
    return;
  }
  std::fprintf(f, "kernel,cta,slot,ns\n");
  for (int k = 0; k < kTracedKernels; ++k) {
    for (int cta = 0; cta < device::kTraceCtas; ++cta) {
      for (int slot = 0; slot < device::kTraceSlots; ++slot) {
        const uint64_t ns = host[k * kStampsPerKernel + size_t(cta) * device::kTraceSlots + slot];
        if (ns != 0) std::fprintf(f, "%d,%d,%d,%llu\n", k, cta, slot, static_cast<unsigned long long>(ns));
      }
    }
  }
  std::fclose(f);
}

}  // namespace

uint64_t* trace_stamps(TraceKernel kernel) {
  std::call_once(g_once, [] {
    void* p = nullptr;
    const size_t bytes = kStampsPerKernel * kTracedKernels * sizeof(uint64_t);
    if (cudaMalloc(&p, bytes) != cudaSuccess || cudaMemset(p, 0, bytes) != cudaSuccess) return;
    g_stamps = static_cast<uint64_t*>(p);
    std::atexit(dump);
  });
  return g_stamps == nullptr ? nullptr : g_stamps + size_t(kernel) * kStampsPerKernel;
}

}  // namespace flashmla::kernels
