// sparse decode, MODEL1 cache (584-byte tokens in two page regions, d_qk 512).
#include "kernels/sparse_decode/launch_impl.cuh"

namespace flashmla::kernels::sparse_decode {
template Status launch_typed<KVFormat::kFp8Model1, SparseDecodeArgs>(
    const SparseDecodeArgs&, float*, float*, cudaStream_t);
}  // namespace flashmla::kernels::sparse_decode
