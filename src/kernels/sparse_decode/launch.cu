#include "kernels/sparse_decode/launch.h"

#include "common/status_util.h"

namespace flashmla::kernels {
namespace sparse_decode {
template <KVFormat kFormat>
Status launch_typed(const SparseDecodeArgs& a, float* out_partial, float* lse_partial, cudaStream_t stream);
extern template Status launch_typed<KVFormat::kFp8V32>(const SparseDecodeArgs&, float*, float*, cudaStream_t);
extern template Status launch_typed<KVFormat::kFp8Model1>(const SparseDecodeArgs&, float*, float*, cudaStream_t);
template <KVFormat kFormat, int kN>
Status launch_small(const SparseDecodeArgs& a, float* out_partial, float* lse_partial, cudaStream_t stream);
#define FLASHMLA_SPARSE_SMALL(F, N) \
  extern template Status launch_small<KVFormat::F, N>(const SparseDecodeArgs&, float*, float*, cudaStream_t);
FLASHMLA_SPARSE_SMALL(kFp8V32, 8)
FLASHMLA_SPARSE_SMALL(kFp8V32, 16)
FLASHMLA_SPARSE_SMALL(kFp8V32, 32)
FLASHMLA_SPARSE_SMALL(kFp8Model1, 8)
FLASHMLA_SPARSE_SMALL(kFp8Model1, 16)
FLASHMLA_SPARSE_SMALL(kFp8Model1, 32)
#undef FLASHMLA_SPARSE_SMALL

// h_q <= 32: the small-head kernel with N = h_q rounded up to 8, 16 or 32;
// larger head counts: the 64-head kernel.
template <KVFormat kFormat>
Status launch_format(const SparseDecodeArgs& a, float* out_partial, float* lse_partial, cudaStream_t stream) {
#ifndef FLASHMLA_SPARSE_DECODE_NO_SMALL_HEADS
  if (a.h_q <= 8) return launch_small<kFormat, 8>(a, out_partial, lse_partial, stream);
  if (a.h_q <= 16) return launch_small<kFormat, 16>(a, out_partial, lse_partial, stream);
  if (a.h_q <= 32) return launch_small<kFormat, 32>(a, out_partial, lse_partial, stream);
#endif
  return launch_typed<kFormat>(a, out_partial, lse_partial, stream);
}
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
      return sparse_decode::launch_format<KVFormat::kFp8V32>(args, out_partial, lse_partial, stream);
    case KVFormat::kFp8Model1:
      return sparse_decode::launch_format<KVFormat::kFp8Model1>(args, out_partial, lse_partial, stream);
    case KVFormat::kNative:
      break;
  }
  return make_status(StatusCode::kNotSupported, "kv_format: expected fp8_v32 or fp8_model1, got %s",
                     to_string(args.kv_format));
}

}  // namespace flashmla::kernels
