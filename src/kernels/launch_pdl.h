// Launching a kernel with programmatic dependent launch allowed: it may be
// scheduled while the kernel before it on the stream drains, and waits on
// the grid dependency itself (device/pdl.cuh) before it reads that kernel's
// outputs. Every launcher of the library launches this way.
#pragma once

#include <cstddef>

#include <cuda_runtime.h>

namespace flashmla::kernels {

// `cluster` is the thread-block cluster shape; (1, 1, 1) launches without one.
template <typename... KernelArgs, typename... Args>
cudaError_t launch_pdl_cluster(void (*kernel)(KernelArgs...), dim3 grid, dim3 cluster, dim3 block, size_t smem_bytes,
                       cudaStream_t stream, const Args&... args) {
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem_bytes;
  config.stream = stream;
  cudaLaunchAttribute attributes[2];
  attributes[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attributes[0].val.programmaticStreamSerializationAllowed = 1;
  attributes[1].id = cudaLaunchAttributeClusterDimension;
  attributes[1].val.clusterDim.x = cluster.x;
  attributes[1].val.clusterDim.y = cluster.y;
  attributes[1].val.clusterDim.z = cluster.z;
  config.attrs = attributes;
  config.numAttrs = (cluster.x * cluster.y * cluster.z > 1) ? 2 : 1;
  return cudaLaunchKernelEx(&config, kernel, args...);
}

template <typename... KernelArgs, typename... Args>
cudaError_t launch_pdl(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem_bytes,
                       cudaStream_t stream, const Args&... args) {
  return launch_pdl_cluster(kernel, grid, dim3(1, 1, 1), block, smem_bytes, stream, args...);
}

}  // namespace flashmla::kernels
