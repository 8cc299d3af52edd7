// Comparison of a kernel's results with the CPU reference, with the bounds
// of spec section 2: every element |out - ref| <= 1e-3 + (2/128) |ref|,
// cosine distance of the whole tensor <= 5e-6, lse (and max_logits) within
// 1e-5 + 1.3e-4 |ref|, and NaN / inf at identical positions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace flashmla::bench {

struct Comparison {
  bool ok = true;
  int64_t bad_out = 0;        // out elements outside the bound (NaN/inf mismatches included)
  double max_abs_err = 0.0;   // over finite pairs
  double cos_dist = 0.0;
  int64_t bad_lse = 0;        // lse / max_logits elements outside the bound
  double max_lse_err = 0.0;
  std::string detail;         // one line: the figures, and the first failure if any
};

// out / ref_out are bf16 bits; lse and max_logits fp32 (max_logits may be empty).
Comparison compare_results(const std::vector<uint16_t>& out, const std::vector<uint16_t>& ref_out,
                           const std::vector<float>& lse, const std::vector<float>& ref_lse,
                           const std::vector<float>& max_logits, const std::vector<float>& ref_max_logits);

}  // namespace flashmla::bench
