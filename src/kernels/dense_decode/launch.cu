#include "kernels/dense_decode/launch.h"

#include <cutlass/numeric_types.h>

#include "common/status_util.h"
#include "kernels/sparse_decode/launch.h"

namespace flashmla::kernels {
namespace dense_decode {
template <typename Element, int kDimQK>
Status launch_typed(const DenseDecodeArgs& a, float* out_partial, float* lse_partial, cudaStream_t stream);
extern template Status launch_typed<cutlass::bfloat16_t, 576>(const DenseDecodeArgs&, float*, float*, cudaStream_t);
extern template Status launch_typed<cutlass::half_t, 576>(const DenseDecodeArgs&, float*, float*, cudaStream_t);
extern template Status launch_typed<cutlass::bfloat16_t, 512>(const DenseDecodeArgs&, float*, float*, cudaStream_t);
extern template Status launch_typed<cutlass::half_t, 512>(const DenseDecodeArgs&, float*, float*, cudaStream_t);
}  // namespace dense_decode

Status dense_decode_supported(const DenseDecodeArgs& a) {
  // A V32 cache runs the sparse decode kernels (sparse_decode/params.h).
  if (a.kv_format == KVFormat::kFp8V32) return dense_decode_fp8_supported(a);
  if (a.d_qk != 576 && a.d_qk != 512) {
    return make_status(StatusCode::kNotSupported,
                       "d_qk: expected 576 or 512 (the dense kernel's head dims), got %lld", (long long)a.d_qk);
  }
  return Status{};
}

Status launch_dense_decode(const DenseDecodeArgs& args, float* out_partial, float* lse_partial, cudaStream_t stream) {
  if (args.kv_format == KVFormat::kFp8V32) return launch_dense_decode_fp8(args, out_partial, lse_partial, stream);
  switch (args.dtype) {
    case DType::kBFloat16:
      return args.d_qk == 512
                 ? dense_decode::launch_typed<cutlass::bfloat16_t, 512>(args, out_partial, lse_partial, stream)
                 : dense_decode::launch_typed<cutlass::bfloat16_t, 576>(args, out_partial, lse_partial, stream);
    case DType::kFloat16:
      return args.d_qk == 512
                 ? dense_decode::launch_typed<cutlass::half_t, 512>(args, out_partial, lse_partial, stream)
                 : dense_decode::launch_typed<cutlass::half_t, 576>(args, out_partial, lse_partial, stream);
    case DType::kFloat32:
      break;
  }
  return make_status(StatusCode::kNotSupported, "dtype: expected bfloat16 or float16, got %s",
                                   to_string(args.dtype));
}

}  // namespace flashmla::kernels
