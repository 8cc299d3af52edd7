// dense decode, fp16 q / KV / out, d_qk 512 (MODEL1: V is all of K).
#include "kernels/dense_decode/launch_impl.cuh"

namespace flashmla::kernels::dense_decode {
template Status launch_typed<cutlass::half_t, 512>(const DenseDecodeArgs&, float*, float*, cudaStream_t);
}  // namespace flashmla::kernels::dense_decode
