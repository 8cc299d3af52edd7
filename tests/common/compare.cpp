#include "common/compare.h"

#include <cmath>
#include <sstream>

namespace flashmla::test {
namespace {

std::string index_text(int64_t index, const std::vector<int64_t>& shape) {
  if (shape.empty()) return std::to_string(index);
  std::vector<int64_t> coords(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    coords[d] = shape[d] > 0 ? index % shape[d] : 0;
    index = shape[d] > 0 ? index / shape[d] : 0;
  }
  std::string text = "[";
  for (size_t d = 0; d < coords.size(); ++d) text += (d ? ", " : "") + std::to_string(coords[d]);
  return text + "]";
}

// NaN and +-inf must sit at the same positions; an inf must have the same
// sign. Returns true when the pair is an anomaly mismatch.
bool anomaly_mismatch(double a, double e) {
  const bool a_finite = std::isfinite(a), e_finite = std::isfinite(e);
  if (a_finite && e_finite) return false;
  if (std::isnan(a) || std::isnan(e)) return !(std::isnan(a) && std::isnan(e));
  return a != e;  // at least one inf: equal only if both are the same inf
}

CompareResult compare(const std::vector<double>& actual, const std::vector<double>& expected,
                      const CompareOptions& options, bool check_tensor) {
  CompareResult r;
  std::ostringstream why;
  r.num_elements = int64_t(expected.size());
  if (actual.size() != expected.size()) {
    r.ok = false;
    why << options.name << ": size " << actual.size() << " != reference size " << expected.size();
    r.report = why.str();
    return r;
  }
  double dot = 0.0, norm_a = 0.0, norm_e = 0.0;
  bool all_zero = true, expected_zero = true;
  int64_t first_nonzero = -1;
  for (size_t n = 0; n < expected.size(); ++n) {
    const double a = actual[n], e = expected[n];
    if (a != 0.0) {
      all_zero = false;
      if (first_nonzero < 0) first_nonzero = int64_t(n);
    }
    if (e != 0.0) expected_zero = false;
    bool bad = false;
    if (anomaly_mismatch(a, e)) {
      ++r.num_anomaly_mismatch;
      bad = true;
    } else if (std::isfinite(e)) {
      const double err = std::fabs(a - e);
      r.max_abs_error = std::fmax(r.max_abs_error, err);
      if (err > options.abs_tol + options.rel_tol * std::fabs(e)) {
        ++r.num_out_of_bounds;
        bad = true;
      }
      dot += a * e;
      norm_a += a * a;
      norm_e += e * e;
    }
    if (bad && r.first_bad < 0) {
      r.first_bad = int64_t(n);
      why << options.name << ": first bad element " << index_text(int64_t(n), options.shape)
          << " (flat " << n << "): got " << a << ", expected " << e << "\n";
    }
  }
  r.actual_all_zero = all_zero;
  if (r.num_out_of_bounds > 0 || r.num_anomaly_mismatch > 0) {
    r.ok = false;
    why << options.name << ": " << r.num_out_of_bounds << " of " << r.num_elements
        << " elements out of bounds (|err| <= " << options.abs_tol << " + " << options.rel_tol
        << "|ref|), " << r.num_anomaly_mismatch << " NaN/inf position mismatches, max |err| "
        << r.max_abs_error << "\n";
  }
  if (check_tensor) {
    // Cosine distance over the finite elements; two zero tensors are equal.
    if (norm_a == 0.0 && norm_e == 0.0) {
      r.cos_distance = 0.0;
    } else if (norm_a == 0.0 || norm_e == 0.0) {
      r.cos_distance = 1.0;
    } else {
      r.cos_distance = 1.0 - dot / std::sqrt(norm_a * norm_e);
    }
    if (options.max_cos_distance >= 0.0 && r.cos_distance > options.max_cos_distance) {
      r.ok = false;
      why << options.name << ": cosine distance " << r.cos_distance << " > " << options.max_cos_distance << "\n";
    }
    if (options.expect_empty && !all_zero) {
      r.ok = false;
      why << options.name << ": expected an empty result (all exactly 0), first nonzero at "
          << index_text(first_nonzero, options.shape) << "\n";
    }
    if (!options.expect_empty && all_zero && r.num_elements > 0) {
      r.ok = false;
      why << options.name << ": output is all zero"
          << (expected_zero ? " (and so is the reference: is the case accidentally empty?)" : "") << "\n";
    }
  }
  r.report = why.str();
  return r;
}

}  // namespace

CompareOptions lse_options(std::string name, std::vector<int64_t> shape) {
  CompareOptions options;
  options.name = std::move(name);
  options.shape = std::move(shape);
  options.abs_tol = 1e-5;
  options.rel_tol = 1.3e-4;
  options.max_cos_distance = -1.0;
  return options;
}

::testing::AssertionResult CompareResult::assertion() const {
  if (ok) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << report;
}

CompareResult compare_out(const std::vector<double>& actual, const std::vector<double>& expected,
                          const CompareOptions& options) {
  return compare(actual, expected, options, /*check_tensor=*/true);
}

CompareResult compare_lse(const std::vector<double>& actual, const std::vector<double>& expected,
                          const CompareOptions& options) {
  return compare(actual, expected, options, /*check_tensor=*/false);
}

}  // namespace flashmla::test
