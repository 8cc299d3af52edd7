#include "kernels/sparse_decode/launch.h"

#include "common/status_util.h"

namespace flashmla::kernels {
namespace sparse_decode {
template <KVFormat kFormat>
Status launch_typed(const SparseDecodeArgs& a, float* out_partial, float* lse_partial, cudaStream_t stream);
extern template Status launch_typed<KVFormat::kFp8V32>(const SparseDecodeArgs&, float*, float*, cudaStream_t);
extern template Status launch_typed<KVFormat::kFp8Model1>(const SparseDecodeArgs&, float*, float*, cudaStream_t);
}  // namespace sparse_decode

Status sparse_decode_supported(const SparseDecodeArgs& a) {
  if (a.d_v != 512) {
    return make_status(StatusCode::kNotSupported, "d_v: expected 512 (the sparse kernel's V width), got %lld",
                       (long long)a.d_v);
  }
  if (a.h_q < 1 || a.h_q > 128) {
    return make_status(StatusCode::kNotSupported, "h_q: expected 1..128, got %lld", (long long)a.h_q);
  }
  return Status{};
}

Status launch_sparse_decode(const SparseDecodeArgs& args, float* out_partial, float* lse_partial,
                            cudaStream_t stream) {
  switch (args.kv_format) {
    case KVFormat::kFp8V32:
      return sparse_decode::launch_typed<KVFormat::kFp8V32>(args, out_partial, lse_partial, stream);
    case KVFormat::kFp8Model1:
      return sparse_decode::launch_typed<KVFormat::kFp8Model1>(args, out_partial, lse_partial, stream);
    case KVFormat::kNative:
      break;
  }
  return make_status(StatusCode::kNotSupported, "kv_format: expected fp8_v32 or fp8_model1, got %s",
                     to_string(args.kv_format));
}

}  // namespace flashmla::kernels
