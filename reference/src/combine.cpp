// combine on the CPU: the exact attention over the union of disjoint key
// sets from their partial (out_i, lse_i), with an optional sink on the union.
#include <cmath>
#include <limits>
#include <vector>

#include "attention_row.h"
#include "flashmla_ref/reference.h"
#include "parallel.h"
#include "status_util.h"

namespace flashmla::ref {

Status combine(const CombineArgs& a, const Options& options) {
  if (a.num_splits < 0 || a.b < 0 || a.s_q < 0 || a.h_q < 0 || a.d_v < 0) {
    return invalid_argument("num_splits, b, s_q, h_q, d_v: expected >= 0");
  }
  FLASHMLA_REF_REQUIRE_PTR(a.out, "out");
  FLASHMLA_REF_REQUIRE_PTR(a.lse, "lse");
  if (a.num_splits > 0) {
    FLASHMLA_REF_REQUIRE_PTR(a.out_partial, "out_partial");
    FLASHMLA_REF_REQUIRE_PTR(a.lse_partial, "lse_partial");
  }
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const int64_t num_rows = a.b * a.s_q * a.h_q;

  parallel_for(num_rows, double(a.num_splits * a.d_v), [&](int64_t row) {
    const int64_t h = row % a.h_q;
    const int64_t j = (row / a.h_q) % a.s_q;
    const int64_t i = row / (a.h_q * a.s_q);
    auto partial_lse = [&](int64_t split) {
      return double(a.lse_partial[split * a.stride_lse_partial_split + i * a.stride_lse_partial_b +
                                  h * a.stride_lse_partial_h + j]);
    };
    // lse of the union: max over the non-empty partials, then log-sum-exp.
    // A partial with lse = -inf is empty: it is skipped, its out never read.
    double max_lse = -kInf;
    for (int64_t s = 0; s < a.num_splits; ++s) {
      const double lse = partial_lse(s);
      if (lse != -kInf) max_lse = std::fmax(max_lse, lse);
    }
    std::vector<double> out(size_t(a.d_v), 0.0);
    double lse_union = -kInf;
    if (max_lse != -kInf) {
      double sum = 0.0;
      for (int64_t s = 0; s < a.num_splits; ++s) {
        const double lse = partial_lse(s);
        if (lse != -kInf) sum += std::exp(lse - max_lse);
      }
      lse_union = max_lse + std::log(sum);
      // The sink joins the union's denominator: out *= 1 / (1 + exp(sink - lse)).
      double sink_factor = 1.0;
      if (a.attn_sink != nullptr) sink_factor = 1.0 / (1.0 + std::exp(double(a.attn_sink[h]) - lse_union));
      for (int64_t s = 0; s < a.num_splits; ++s) {
        const double lse = partial_lse(s);
        if (lse == -kInf) continue;
        const double weight = std::exp(lse - lse_union) * sink_factor;
        const int64_t base = s * a.stride_out_partial_split + i * a.stride_out_partial_b +
                             j * a.stride_out_partial_s + h * a.stride_out_partial_h;
        for (int64_t d = 0; d < a.d_v; ++d) {
          out[size_t(d)] += weight * load_element(a.out_partial, base + d, a.partial_dtype);
        }
      }
    }
    const int64_t out_base = i * a.stride_out_b + j * a.stride_out_s + h * a.stride_out_h;
    for (int64_t d = 0; d < a.d_v; ++d) store_element(a.out, out_base + d, a.dtype, out[size_t(d)]);
    a.lse[i * a.stride_lse_b + h * a.stride_lse_h + j] = lse_to_store(lse_union, options);
  });
  return ok_status();
}

}  // namespace flashmla::ref
