// sparse prefill, d_qk 576 (V3.2: 512 NoPE + 64 RoPE).
#include "kernels/sparse_prefill/launch_impl.cuh"

namespace flashmla::kernels::sparse_prefill {
template Status launch_typed<576>(const SparsePrefillArgs&, cudaStream_t);
}  // namespace flashmla::kernels::sparse_prefill
