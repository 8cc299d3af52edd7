#include "dense_decode/dense_case.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <utility>

#include "common/compare.h"
#include "common/reference_time.h"
#include "common/strided.h"
#include "flashmla_ref/reference.h"

namespace flashmla::test {
namespace {

std::vector<double> logical(const StridedView& view, const void* data) { return gather(view, data); }

bool all_minus_inf(const std::vector<double>& lse) {
  for (double v : lse) {
    if (v != -std::numeric_limits<double>::infinity()) return false;
  }
  return true;
}

}  // namespace

DenseDecodeConfig dense_config(int64_t b, int64_t s_q, int64_t h_q, int64_t h_kv,
                               std::vector<int32_t> seqlens, DType dtype, bool causal) {
  DenseDecodeConfig c;
  c.b = b;
  c.s_q = s_q;
  c.h_q = h_q;
  c.h_kv = h_kv;
  c.seqlens = std::move(seqlens);
  c.dtype = dtype;
  c.causal = causal;
  c.softmax_scale = kSpreadScale;
  return c;
}

std::vector<int32_t> mixed_lengths(int64_t b, int32_t lo, int32_t hi, uint64_t seed, bool with_boundaries) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> length(lo, hi);
  std::vector<int32_t> lengths(static_cast<size_t>(b), 0);
  for (auto& v : lengths) v = length(rng);
  if (with_boundaries) {
    const int32_t boundaries[] = {0, 1, 63, 64, 65, 140};
    const int64_t n = std::min<int64_t>(b, 6);
    for (int64_t k = 0; k < n; ++k) lengths[size_t(k * b / n)] = boundaries[k];
  }
  return lengths;
}

void reference_outputs(const DenseDecodeProblem& problem, HostOutputs* expected) {
  *expected = problem.make_outputs();
  const auto start = std::chrono::steady_clock::now();
  const Status status = ref::dense_decode(problem.host_args(*expected));
  add_reference_time(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  ASSERT_TRUE(status.ok()) << "reference: " << status.what();
}

void expect_matches_reference(const DenseDecodeProblem& problem, const HostOutputs& got,
                              const HostOutputs& expected, const std::string& what) {
  const StridedView out_view = problem.out_view();
  const StridedView lse_view = problem.lse_view();
  const std::vector<double> expected_lse = logical(lse_view, expected.lse.data());
  const bool all_empty = all_minus_inf(expected_lse);

  CompareOptions out_options;
  out_options.name = what + ": out";
  out_options.shape = out_view.shape;
  out_options.expect_empty = all_empty;
  EXPECT_TRUE(compare_out(logical(out_view, got.out.data()), logical(out_view, expected.out.data()), out_options)
                  .assertion());
  EXPECT_TRUE(compare_lse(logical(lse_view, got.lse.data()), expected_lse, lse_options(what + ": lse", lse_view.shape))
                  .assertion());

  // Empty rows (reference lse = -inf): out exactly +0, bit for bit.
  const DenseDecodeArgs& a = problem.args;
  int64_t bad_rows = 0;
  std::ostringstream first;
  for (int64_t i = 0; i < a.b; ++i) {
    for (int64_t h = 0; h < a.h_q; ++h) {
      for (int64_t j = 0; j < a.s_q; ++j) {
        if (expected_lse[size_t((i * a.h_q + h) * a.s_q + j)] != -std::numeric_limits<double>::infinity()) continue;
        const int64_t base = i * a.stride_out_b + j * a.stride_out_s + h * a.stride_out_h;
        for (int64_t d = 0; d < a.d_v; ++d) {
          const uint16_t bits = got.out[size_t(base + d)];
          if (bits != 0) {
            if (bad_rows++ == 0) {
              first << "first at request " << i << ", token " << j << ", head " << h << ", dim " << d
                    << ": bits 0x" << std::hex << bits;
            }
            break;
          }
        }
      }
    }
  }
  EXPECT_EQ(bad_rows, 0) << what << ": empty rows whose out is not exactly +0 (" << first.str() << ")";
  EXPECT_EQ(written_padding(out_view, got.out.data()), 0) << what << ": out padding was written";
  EXPECT_EQ(written_padding(lse_view, got.lse.data()), 0) << what << ": lse padding was written";
}

void expect_within_spec_of_each_other(const DenseDecodeProblem& problem, const HostOutputs& a,
                                      const HostOutputs& b, const std::string& what) {
  const StridedView out_view = problem.out_view();
  const StridedView lse_view = problem.lse_view();
  const std::vector<double> b_lse = logical(lse_view, b.lse.data());
  CompareOptions out_options;
  out_options.name = what + ": out";
  out_options.shape = out_view.shape;
  out_options.expect_empty = all_minus_inf(b_lse);
  EXPECT_TRUE(compare_out(logical(out_view, a.out.data()), logical(out_view, b.out.data()), out_options).assertion());
  EXPECT_TRUE(compare_lse(logical(lse_view, a.lse.data()), b_lse, lse_options(what + ": lse", lse_view.shape))
                  .assertion());
}

void expect_bitwise_equal(const HostOutputs& a, const HostOutputs& b, const std::string& what) {
  ASSERT_EQ(a.out.size(), b.out.size());
  ASSERT_EQ(a.lse.size(), b.lse.size());
  int64_t out_diffs = 0, first_out = -1;
  for (size_t k = 0; k < a.out.size(); ++k) {
    if (a.out[k] != b.out[k]) {
      if (out_diffs++ == 0) first_out = int64_t(k);
    }
  }
  int64_t lse_diffs = 0, first_lse = -1;
  for (size_t k = 0; k < a.lse.size(); ++k) {
    if (std::memcmp(&a.lse[k], &b.lse[k], sizeof(float)) != 0) {
      if (lse_diffs++ == 0) first_lse = int64_t(k);
    }
  }
  EXPECT_EQ(out_diffs, 0) << what << ": out differs in " << out_diffs << " of " << a.out.size()
                          << " elements, first at storage index " << first_out;
  EXPECT_EQ(lse_diffs, 0) << what << ": lse differs in " << lse_diffs << " of " << a.lse.size()
                          << " elements, first at storage index " << first_lse;
}

void expect_case_validates(const DenseCase& c) {
  DenseDecodeConfig small = c.config;
  small.b = std::min<int64_t>(small.b, 7);
  small.seqlens.resize(size_t(small.b));
  for (int32_t& len : small.seqlens) len = std::min(len, 130);
  const DenseDecodeProblem problem = make_dense_decode_problem(small);
  HostOutputs outputs = problem.make_outputs();
  expect_plan_and_call_validate(problem.host_args(outputs), c.name);
}

void run_dense_problem(const DenseDecodeProblem& problem, int32_t num_sms_for_plan) {
  DeviceMirror<DenseDecodeArgs> mirror = to_device(problem);
  ASSERT_TRUE(mirror.ok()) << mirror.error();
  HostOutputs got;
  ASSERT_NO_FATAL_FAILURE(plan_and_run(mirror, num_sms_for_plan, &got));
  HostOutputs expected;
  ASSERT_NO_FATAL_FAILURE(reference_outputs(problem, &expected));
  expect_matches_reference(problem, got, expected, "gpu");
}

void run_dense_case(const DenseDecodeConfig& config, int32_t num_sms_for_plan) {
  run_dense_problem(make_dense_decode_problem(config), num_sms_for_plan);
}

}  // namespace flashmla::test
