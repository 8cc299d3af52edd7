// sparse prefill, d_qk 512 (MODEL1: 448 NoPE + 64 RoPE).
#include "kernels/sparse_prefill/launch_impl.cuh"

namespace flashmla::kernels::sparse_prefill {
template Status launch_typed<512>(const SparsePrefillArgs&, cudaStream_t);
}  // namespace flashmla::kernels::sparse_prefill
