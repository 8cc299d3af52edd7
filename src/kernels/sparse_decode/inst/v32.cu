// sparse decode and dense decode over a V32 cache (656-byte tokens, d_qk 576).
#include "kernels/sparse_decode/launch_impl.cuh"

namespace flashmla::kernels::sparse_decode {
template Status launch_typed<KVFormat::kFp8V32, SparseDecodeArgs>(
    const SparseDecodeArgs&, float*, float*, cudaStream_t);
template Status launch_typed<KVFormat::kFp8V32, DenseDecodeArgs>(
    const DenseDecodeArgs&, float*, float*, cudaStream_t);
}  // namespace flashmla::kernels::sparse_decode
