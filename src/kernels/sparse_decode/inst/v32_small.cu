// sparse decode and dense decode over a V32 cache, the small-head kernel (N = 8, 16, 32 heads).
#include "kernels/sparse_decode/launch_impl.cuh"

namespace flashmla::kernels::sparse_decode {
template Status launch_small<KVFormat::kFp8V32, 8, SparseDecodeArgs>(
    const SparseDecodeArgs&, float*, float*, cudaStream_t);
template Status launch_small<KVFormat::kFp8V32, 8, DenseDecodeArgs>(
    const DenseDecodeArgs&, float*, float*, cudaStream_t);
template Status launch_small<KVFormat::kFp8V32, 16, SparseDecodeArgs>(
    const SparseDecodeArgs&, float*, float*, cudaStream_t);
template Status launch_small<KVFormat::kFp8V32, 16, DenseDecodeArgs>(
    const DenseDecodeArgs&, float*, float*, cudaStream_t);
template Status launch_small<KVFormat::kFp8V32, 32, SparseDecodeArgs>(
    const SparseDecodeArgs&, float*, float*, cudaStream_t);
template Status launch_small<KVFormat::kFp8V32, 32, DenseDecodeArgs>(
    const DenseDecodeArgs&, float*, float*, cudaStream_t);
}  // namespace flashmla::kernels::sparse_decode
