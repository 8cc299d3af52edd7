// combine: partial results over a random partition of each row's keys
// merge into the attention over the union (brute force), with sinks, with
// empty partials whose out is NaN, and with both empty-row conventions.
#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "reference/check.h"

namespace flashmla::test {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Partials of one prefill problem viewed as combine's [splits, b = 1, s_q, h_q, d_v].
struct Partials {
  int64_t num_splits = 0, s_q = 0, h_q = 0, d_v = 0, pad = 0;
  DType dtype = DType::kFloat32;
  std::vector<float> out_f32;
  std::vector<uint16_t> out_16;
  std::vector<float> lse;
  int64_t stride_h() const { return d_v + pad; }
  int64_t stride_s() const { return h_q * stride_h() + pad; }
  int64_t stride_split() const { return s_q * stride_s() + pad; }
  int64_t lse_stride_h() const { return s_q + pad; }
  int64_t lse_stride_split() const { return h_q * lse_stride_h() + pad; }
};

// Splits every row's index positions over num_splits (split `num_splits - 1`
// gets none when leave_last_empty), evaluates each part and stores it.
Partials make_partials(const SparsePrefillProblem& problem, int64_t num_splits, bool leave_last_empty,
                       bool from_reference, int64_t pad, uint64_t seed) {
  const SparsePrefillArgs& a = problem.args;
  Partials p;
  p.num_splits = num_splits;
  p.s_q = a.s_q;
  p.h_q = a.h_q;
  p.d_v = a.d_v;
  p.pad = pad;
  p.dtype = from_reference ? DType::kBFloat16 : DType::kFloat32;
  p.out_f32.assign(size_t(num_splits * p.stride_split()), std::numeric_limits<float>::quiet_NaN());
  p.out_16.assign(size_t(num_splits * p.stride_split()), kNaN16);
  p.lse.assign(size_t(num_splits * p.lse_stride_split()), std::numeric_limits<float>::quiet_NaN());
  Rng rng(seed);
  std::vector<int64_t> owner(problem.indices.size());
  const int64_t used_splits = leave_last_empty ? num_splits - 1 : num_splits;
  for (auto& o : owner) o = rng.uniform(0, used_splits - 1);
  for (int64_t s = 0; s < num_splits; ++s) {
    SparsePrefillProblem part = problem;
    part.attn_sink.clear();  // the sink belongs to the union, applied by combine
    for (size_t k = 0; k < part.indices.size(); ++k) {
      if (owner[k] != s) part.indices[k] = -1;
    }
    std::vector<double> out, lse;
    if (from_reference) {
      HostOutputs outputs = part.make_outputs();
      EXPECT_TRUE(ref::sparse_prefill(part.host_args(outputs)).ok());
      out = gather(part.out_view(), outputs.out.data());
      lse = gather(part.lse_view(), outputs.lse.data());
    } else {
      const BruteResult brute = brute_sparse_prefill(part, DType::kFloat32, false);
      out = brute.out;
      lse = brute.lse;
    }
    for (int64_t j = 0; j < a.s_q; ++j) {
      for (int64_t h = 0; h < a.h_q; ++h) {
        const double row_lse = lse[size_t(j * a.h_q + h)];
        p.lse[size_t(s * p.lse_stride_split() + h * p.lse_stride_h() + j)] = float(row_lse);
        if (row_lse == -INFINITY) continue;  // an empty partial keeps its NaN out
        for (int64_t d = 0; d < a.d_v; ++d) {
          const double v = out[size_t((j * a.h_q + h) * a.d_v + d)];
          const size_t at = size_t(s * p.stride_split() + j * p.stride_s() + h * p.stride_h() + d);
          p.out_f32[at] = float(v);
          p.out_16[at] = ref::double_to_bf16(v);
        }
      }
    }
  }
  return p;
}

struct Combined {
  std::vector<double> out;  // logical [1, s_q, h_q, d_v]
  std::vector<double> lse;  // logical [1, h_q, s_q]
  std::vector<uint16_t> raw_out;
};

Combined run_combine(const Partials& p, const float* sink, DType out_dtype, ref::Options options = {}) {
  const int64_t out_pad = 2;
  CombineArgs a;
  a.num_splits = p.num_splits;
  a.b = 1;
  a.s_q = p.s_q;
  a.h_q = p.h_q;
  a.d_v = p.d_v;
  a.partial_dtype = p.dtype;
  a.out_partial = p.dtype == DType::kFloat32 ? static_cast<const void*>(p.out_f32.data()) : p.out_16.data();
  a.stride_out_partial_split = p.stride_split();
  a.stride_out_partial_b = p.stride_split();
  a.stride_out_partial_s = p.stride_s();
  a.stride_out_partial_h = p.stride_h();
  a.lse_partial = p.lse.data();
  a.stride_lse_partial_split = p.lse_stride_split();
  a.stride_lse_partial_b = p.lse_stride_split();
  a.stride_lse_partial_h = p.lse_stride_h();
  a.attn_sink = sink;
  a.dtype = out_dtype;
  a.stride_out_h = p.d_v + out_pad;
  a.stride_out_s = p.h_q * a.stride_out_h;
  a.stride_out_b = p.s_q * a.stride_out_s;
  a.stride_lse_h = p.s_q + out_pad;
  a.stride_lse_b = p.h_q * a.stride_lse_h;
  Combined c;
  c.raw_out.assign(size_t(a.stride_out_b), kNaN16);
  std::vector<float> lse(size_t(a.stride_lse_b), std::numeric_limits<float>::quiet_NaN());
  a.out = c.raw_out.data();
  a.lse = lse.data();
  const Status status = ref::combine(a, options);
  EXPECT_TRUE(status.ok()) << status.what();
  const StridedView out_view{{1, p.s_q, p.h_q, p.d_v}, {a.stride_out_b, a.stride_out_s, a.stride_out_h, 1}, out_dtype};
  const StridedView lse_view{{1, p.h_q, p.s_q}, {a.stride_lse_b, a.stride_lse_h, 1}, DType::kFloat32};
  c.out = gather(out_view, c.raw_out.data());
  c.lse = gather(lse_view, lse.data());
  EXPECT_EQ(written_padding(out_view, c.raw_out.data()), 0);
  return c;
}

SparsePrefillProblem union_problem(uint64_t seed, std::vector<float> sinks = {}) {
  SparsePrefillConfig c;
  c.s_q = 3;
  c.s_kv = 150;
  c.h_q = 3;
  c.topk = 64;
  c.softmax_scale = 3.0f;
  c.attn_sink = std::move(sinks);
  c.seed = seed;
  return make_sparse_prefill_problem(c);
}

TEST(Combine, RandomPartitionEqualsUnion) {
  for (int64_t num_splits : {2, 4, 7}) {
    const SparsePrefillProblem problem = union_problem(400 + uint64_t(num_splits));
    const Partials partials = make_partials(problem, num_splits, /*leave_last_empty=*/true, false, 1, 9);
    const Combined got = run_combine(partials, nullptr, DType::kBFloat16);
    const BruteResult want = brute_sparse_prefill(problem, DType::kFloat32);
    EXPECT_TRUE(compare_out(got.out, want.out, tight_out_options({{1, 3, 3, 512}, {}, DType::kBFloat16}, false)).assertion())
        << num_splits << " splits";
    // Union lse is [s_q, h_q] in prefill order, [1, h_q, s_q] in combine's.
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t h = 0; h < 3; ++h)
        EXPECT_NEAR(got.lse[size_t(h * 3 + j)], want.lse[size_t(j * 3 + h)], 1e-5);
  }
}

TEST(Combine, SinkAppliedToTheUnion) {
  const std::vector<float> sinks = {-kInf, 0.8f, kInf};
  const SparsePrefillProblem problem = union_problem(410, sinks);
  const Partials partials = make_partials(problem, 3, true, false, 0, 10);
  const Combined got = run_combine(partials, sinks.data(), DType::kBFloat16);
  const BruteResult want = brute_sparse_prefill(problem, DType::kFloat32, /*use_sink=*/true);
  EXPECT_TRUE(compare_out(got.out, want.out, tight_out_options({{1, 3, 3, 512}, {}, DType::kBFloat16}, false)).assertion());
  for (int64_t j = 0; j < 3; ++j) {
    for (int64_t d = 0; d < 512; ++d) ASSERT_EQ(got.out[size_t((j * 3 + 2) * 512 + d)], 0.0);  // sink +inf
  }
}

TEST(Combine, Bf16PartialsFromTheReferenceWithinSpec) {
  const SparsePrefillProblem problem = union_problem(420);
  const Partials partials = make_partials(problem, 4, false, /*from_reference=*/true, 3, 11);
  const Combined got = run_combine(partials, nullptr, DType::kFloat16);
  HostOutputs whole = problem.make_outputs();
  ASSERT_TRUE(ref::sparse_prefill(problem.host_args(whole)).ok());
  CompareOptions options;
  options.shape = {1, 3, 3, 512};
  EXPECT_TRUE(compare_out(got.out, gather(problem.out_view(), whole.out.data()), options).assertion());
}

TEST(Combine, AllEmptyRowBothConventions) {
  const SparsePrefillProblem problem = union_problem(430);
  Partials partials = make_partials(problem, 2, false, false, 0, 12);
  // Row (j = 1, h = 0) is empty in every split; its outs are NaN.
  for (int64_t s = 0; s < 2; ++s) {
    partials.lse[size_t(s * partials.lse_stride_split() + 0 * partials.lse_stride_h() + 1)] = -kInf;
    for (int64_t d = 0; d < 512; ++d)
      partials.out_f32[size_t(s * partials.stride_split() + 1 * partials.stride_s() + d)] = NAN;
  }
  for (ref::EmptyLse convention : {ref::EmptyLse::kNegInf, ref::EmptyLse::kPosInf}) {
    const Combined got = run_combine(partials, nullptr, DType::kBFloat16, {convention});
    EXPECT_EQ(got.lse[1], convention == ref::EmptyLse::kNegInf ? -INFINITY : INFINITY);
    EXPECT_TRUE(std::isfinite(got.lse[0]));
    for (int64_t d = 0; d < 512; ++d) ASSERT_EQ(got.out[size_t(3 * 512 + d)], 0.0);
  }
}

TEST(Combine, SingleSplitIsIdentity) {
  const SparsePrefillProblem problem = union_problem(440);
  const Partials partials = make_partials(problem, 1, false, false, 0, 13);
  const Combined got = run_combine(partials, nullptr, DType::kBFloat16);
  for (int64_t j = 0; j < 3; ++j) {
    for (int64_t h = 0; h < 3; ++h) {
      EXPECT_EQ(got.lse[size_t(h * 3 + j)], partials.lse[size_t(h * partials.lse_stride_h() + j)]);
      for (int64_t d = 0; d < 512; ++d) {
        const float v = partials.out_f32[size_t(j * partials.stride_s() + h * partials.stride_h() + d)];
        ASSERT_EQ(got.raw_out[size_t((j * 3 + h) * 514 + d)], ref::float_to_bf16(v));
      }
    }
  }
}

TEST(Combine, ZeroSplitsGivesEmptyRows) {
  Partials partials;
  partials.s_q = 1;
  partials.h_q = 2;
  partials.d_v = 4;
  partials.out_f32.assign(1, 0.0f);
  partials.lse.assign(1, 0.0f);
  const Combined got = run_combine(partials, nullptr, DType::kBFloat16);
  for (double v : got.out) EXPECT_EQ(v, 0.0);
  for (double v : got.lse) EXPECT_EQ(v, -INFINITY);
}

}  // namespace
}  // namespace flashmla::test
