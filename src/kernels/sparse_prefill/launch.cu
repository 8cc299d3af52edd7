#include "kernels/sparse_prefill/launch.h"

#include "common/status_util.h"

namespace flashmla::kernels {
namespace sparse_prefill {
template <int kDimQK>
Status launch_typed(const SparsePrefillArgs& a, cudaStream_t stream);
extern template Status launch_typed<576>(const SparsePrefillArgs&, cudaStream_t);
extern template Status launch_typed<512>(const SparsePrefillArgs&, cudaStream_t);
}  // namespace sparse_prefill

Status sparse_prefill_supported(const SparsePrefillArgs& a) {
  if (a.h_kv != 1) {
    return make_status(StatusCode::kNotSupported, "h_kv: expected 1 (the prefill kernel's KV heads), got %lld",
                       (long long)a.h_kv);
  }
  if (a.d_v != 512 || (a.d_qk != 576 && a.d_qk != 512)) {
    return make_status(StatusCode::kNotSupported,
                       "d_qk / d_v: expected 576 or 512 / 512 (the prefill kernel's head dims), got %lld / %lld",
                       (long long)a.d_qk, (long long)a.d_v);
  }
  if (a.h_q < 1 || a.h_q > 128) {
    return make_status(StatusCode::kNotSupported, "h_q: expected 1..128 (the prefill kernel's heads), got %lld",
                       (long long)a.h_q);
  }
  if (a.topk % 64 != 0) {
    return make_status(StatusCode::kNotSupported,
                       "topk: expected a multiple of 64 (the prefill kernel's key block), got %lld",
                       (long long)a.topk);
  }
  // One CTA per (token, 64 heads) on a 1-D grid.
  const int64_t ctas = a.s_q * ((a.h_q + 63) / 64);
  if (ctas > 0x7FFFFFFFLL) {
    return make_status(StatusCode::kNotSupported, "s_q: %lld query tokens exceed the prefill grid",
                       (long long)a.s_q);
  }
  return Status{};
}

Status launch_sparse_prefill(const SparsePrefillArgs& args, cudaStream_t stream) {
  if (args.s_q == 0) return Status{};
  return args.d_qk == 576 ? sparse_prefill::launch_typed<576>(args, stream)
                          : sparse_prefill::launch_typed<512>(args, stream);
}

}  // namespace flashmla::kernels
