#include "kernels/sparse_decode/launch.h"

#include <cstdint>
#include <type_traits>

#include "common/status_util.h"

namespace flashmla::kernels {
namespace sparse_decode {
template <KVFormat kFormat, typename DecodeArgs>
Status launch_typed(const DecodeArgs& a, float* out_partial, float* lse_partial, cudaStream_t stream);
template <KVFormat kFormat, int kN, typename DecodeArgs>
Status launch_small(const DecodeArgs& a, float* out_partial, float* lse_partial, cudaStream_t stream);
#define FLASHMLA_SPARSE_LAUNCH(F, A)                                                                        \
  extern template Status launch_typed<KVFormat::F, A>(const A&, float*, float*, cudaStream_t);            \
  extern template Status launch_small<KVFormat::F, 8, A>(const A&, float*, float*, cudaStream_t);         \
  extern template Status launch_small<KVFormat::F, 16, A>(const A&, float*, float*, cudaStream_t);        \
  extern template Status launch_small<KVFormat::F, 32, A>(const A&, float*, float*, cudaStream_t);
FLASHMLA_SPARSE_LAUNCH(kFp8V32, SparseDecodeArgs)
FLASHMLA_SPARSE_LAUNCH(kFp8Model1, SparseDecodeArgs)
FLASHMLA_SPARSE_LAUNCH(kFp8V32, DenseDecodeArgs)
#undef FLASHMLA_SPARSE_LAUNCH

// h_q <= 32: the small-head kernel with N = h_q rounded up to 8, 16 or 32;
// larger head counts: the 64-head kernel. Dense decode with s_q > 1 packs
// the query tokens of small head counts into the 64-head kernel's tiles
// instead (the small kernel holds one token's heads), so each block is
// gathered and dequantized once for all of them.
template <KVFormat kFormat, typename DecodeArgs>
Status launch_format(const DecodeArgs& a, float* out_partial, float* lse_partial, cudaStream_t stream) {
  if constexpr (std::is_same_v<DecodeArgs, DenseDecodeArgs>) {
    if (a.s_q > 1) return launch_typed<kFormat>(a, out_partial, lse_partial, stream);
  }
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

Status dense_decode_fp8_supported(const DenseDecodeArgs& a) {
  if (a.h_q > 128) {
    return make_status(StatusCode::kNotSupported,
                       "h_q: expected 1..128 with kv_format fp8_v32 (the FP8 kernels' head tiles), got %lld",
                       (long long)a.h_q);
  }
  // Positions become int32 token indices page * 64 + row (as sparse
  // decode's indices are): 2^31 tokens is a 1.4 TB cache.
  if (a.num_blocks > INT32_MAX / a.page_block_size) {
    return make_status(StatusCode::kNotSupported,
                       "num_blocks: expected at most %lld with kv_format fp8_v32 (int32 token indices), got %lld",
                       (long long)(INT32_MAX / a.page_block_size), (long long)a.num_blocks);
  }
  return Status{};
}

Status launch_dense_decode_fp8(const DenseDecodeArgs& args, float* out_partial, float* lse_partial,
                               cudaStream_t stream) {
  return sparse_decode::launch_format<KVFormat::kFp8V32>(args, out_partial, lse_partial, stream);
}

}  // namespace flashmla::kernels
