// Launching a kernel with programmatic dependent launch allowed: it may be
// scheduled while the kernel before it on the stream drains, and waits on
// the grid dependency itself (device/pdl.cuh) before it reads that kernel's
// outputs. Every launcher of the library launches this way.
#pragma once

#include <cstddef>

#include <cuda_runtime.h>

namespace flashmla::kernels {

template <typename... KernelArgs, typename... Args>
cudaError_t launch_pdl(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem_bytes,
                       cudaStream_t stream, const Args&... args) {
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem_bytes;
  config.stream = stream;
  cudaLaunchAttribute attribute;
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  config.attrs = &attribute;
  config.numAttrs = 1;
  return cudaLaunchKernelEx(&config, kernel, args...);
}

}  // namespace flashmla::kernels
