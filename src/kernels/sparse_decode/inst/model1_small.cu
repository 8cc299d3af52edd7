// sparse decode, MODEL1 cache, the small-head kernel (N = 8, 16, 32 heads).
#include "kernels/sparse_decode/launch_impl.cuh"

namespace flashmla::kernels::sparse_decode {
template Status launch_small<KVFormat::kFp8Model1, 8, SparseDecodeArgs>(
    const SparseDecodeArgs&, float*, float*, cudaStream_t);
template Status launch_small<KVFormat::kFp8Model1, 16, SparseDecodeArgs>(
    const SparseDecodeArgs&, float*, float*, cudaStream_t);
template Status launch_small<KVFormat::kFp8Model1, 32, SparseDecodeArgs>(
    const SparseDecodeArgs&, float*, float*, cudaStream_t);
}  // namespace flashmla::kernels::sparse_decode
