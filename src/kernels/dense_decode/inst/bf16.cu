// dense decode, bf16 q / KV / out.
#include "kernels/dense_decode/launch_impl.cuh"

namespace flashmla::kernels::dense_decode {
template Status launch_typed<cutlass::bfloat16_t, 576>(const DenseDecodeArgs&, float*, float*, cudaStream_t);
}  // namespace flashmla::kernels::dense_decode
