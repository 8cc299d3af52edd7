#include "verify.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "values.h"

namespace flashmla::bench {

namespace {

constexpr double kOutAbs = 1e-3;
constexpr double kOutRel = 2.0 / 128.0;
constexpr double kMaxCosDist = 5e-6;
constexpr double kLseAbs = 1e-5;
constexpr double kLseRel = 1.3e-4;

// Same class of value: both NaN, both the same infinity, or both finite.
bool same_special(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return true;
}

void note_first(std::string* first, const char* what, size_t i, double got, double want) {
  if (!first->empty()) return;
  char buf[160];
  std::snprintf(buf, sizeof(buf), "first bad %s[%zu]: got %.6g, want %.6g", what, i, got, want);
  *first = buf;
}

// Per-element check of an fp32 vector (lse, max_logits); returns the number of bad elements.
int64_t compare_scalars(const std::vector<float>& got, const std::vector<float>& want, const char* what,
                        double* max_err, std::string* first) {
  int64_t bad = 0;
  if (got.size() != want.size()) {
    note_first(first, what, 0, double(got.size()), double(want.size()));
    return int64_t(std::max(got.size(), want.size()));
  }
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i];
    const double w = want[i];
    bool good = same_special(g, w);
    if (good && std::isfinite(w)) {
      const double err = std::fabs(g - w);
      *max_err = std::max(*max_err, err);
      good = err <= kLseAbs + kLseRel * std::fabs(w);
    }
    if (!good) {
      ++bad;
      note_first(first, what, i, g, w);
    }
  }
  return bad;
}

}  // namespace

Comparison compare_results(const std::vector<uint16_t>& out, const std::vector<uint16_t>& ref_out,
                           const std::vector<float>& lse, const std::vector<float>& ref_lse,
                           const std::vector<float>& max_logits, const std::vector<float>& ref_max_logits) {
  Comparison c;
  std::string first;
  if (out.size() != ref_out.size()) {
    c.ok = false;
    c.detail = "out sizes differ";
    return c;
  }
  double dot = 0.0;
  double norm_got = 0.0;
  double norm_want = 0.0;
  for (size_t i = 0; i < out.size(); ++i) {
    const double g = bf16_bits_to_float(out[i]);
    const double w = bf16_bits_to_float(ref_out[i]);
    bool good = same_special(g, w);
    if (good && std::isfinite(w)) {
      const double err = std::fabs(g - w);
      c.max_abs_err = std::max(c.max_abs_err, err);
      good = err <= kOutAbs + kOutRel * std::fabs(w);
      dot += g * w;
      norm_got += g * g;
      norm_want += w * w;
    }
    if (!good) {
      ++c.bad_out;
      note_first(&first, "out", i, g, w);
    }
  }
  // Two all-zero tensors agree exactly; one zero tensor against a nonzero one is distance 1.
  if (norm_got == 0.0 && norm_want == 0.0) {
    c.cos_dist = 0.0;
  } else if (norm_got == 0.0 || norm_want == 0.0) {
    c.cos_dist = 1.0;
  } else {
    c.cos_dist = 1.0 - dot / (std::sqrt(norm_got) * std::sqrt(norm_want));
  }
  c.bad_lse = compare_scalars(lse, ref_lse, "lse", &c.max_lse_err, &first);
  c.bad_lse += compare_scalars(max_logits, ref_max_logits, "max_logits", &c.max_lse_err, &first);
  c.ok = c.bad_out == 0 && c.bad_lse == 0 && c.cos_dist <= kMaxCosDist;
  // Failing with every element in bounds can only be the cosine distance.
  if (!c.ok && first.empty()) first = "cosine distance above 5e-6";
  char buf[256];
  std::snprintf(buf, sizeof(buf), "max|err| %.3g, cos dist %.3g, max lse err %.3g, bad out %lld, bad lse %lld",
                c.max_abs_err, c.cos_dist, c.max_lse_err, static_cast<long long>(c.bad_out),
                static_cast<long long>(c.bad_lse));
  c.detail = buf;
  if (!first.empty()) c.detail += "; " + first;
  return c;
}

}  // namespace flashmla::bench
