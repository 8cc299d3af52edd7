#include "sparse_decode/sparse_case.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <sstream>
#include <utility>

#include "common/compare.h"
#include "common/random_values.h"
#include "common/reference_time.h"
#include "flashmla_ref/reference.h"

namespace flashmla::test::sd {
namespace {

bool all_minus_inf(const std::vector<double>& lse) {
  for (double v : lse) {
    if (v != -std::numeric_limits<double>::infinity()) return false;
  }
  return true;
}

bool all_exact_zero(const std::vector<double>& values) {
  for (double v : values) {
    if (v != 0.0) return false;
  }
  return true;
}

// Re-lays `kv` (num_blocks pages of `old_stride` bytes) with `new_stride`.
void widen_pages(std::vector<uint8_t>& kv, int64_t num_blocks, int64_t old_stride, int64_t new_stride) {
  if (new_stride == old_stride || kv.empty()) return;
  std::vector<uint8_t> wide(size_t(num_blocks * new_stride), kNaNByte);
  for (int64_t p = 0; p < num_blocks; ++p) {
    std::memcpy(wide.data() + p * new_stride, kv.data() + p * old_stride, size_t(old_stride));
  }
  kv = std::move(wide);
}

}  // namespace

SparseDecodeConfig sparse_config(KVFormat format, int64_t b, int64_t s_q, int64_t h_q, int64_t topk,
                                 int64_t page_block_size) {
  SparseDecodeConfig c;
  c.kv_format = format;
  c.b = b;
  c.s_q = s_q;
  c.h_q = h_q;
  c.topk = topk;
  c.page_block_size = page_block_size;
  c.softmax_scale = kSpreadScale;
  return c;
}

std::vector<float> sink_pattern(int64_t h_q, const std::vector<float>& pattern) {
  std::vector<float> sinks(static_cast<size_t>(h_q));
  for (int64_t h = 0; h < h_q; ++h) sinks[size_t(h)] = pattern[size_t(h) % pattern.size()];
  return sinks;
}

int64_t aligned_page_stride(KVFormat format, int64_t page_block_size, int64_t pad) {
  const int64_t packed = page_block_size * kv_format_token_bytes(format) + 16 * pad;
  return (packed + 15) / 16 * 16;
}

SparseDecodeProblem make_sparse_case_problem(const SparseDecodeConfig& config) {
  SparseDecodeProblem p = make_sparse_decode_problem(config);
  SparseDecodeArgs& a = p.args;
  const int64_t main_stride = aligned_page_stride(a.kv_format, a.page_block_size, config.pad);
  widen_pages(p.kv, a.num_blocks, a.stride_kv_block, main_stride);
  a.stride_kv_block = main_stride;
  if (!p.extra_kv.empty()) {
    const int64_t extra_stride = aligned_page_stride(a.kv_format, a.extra_page_block_size, config.pad);
    widen_pages(p.extra_kv, a.extra_num_blocks, a.stride_extra_kv_block, extra_stride);
    a.stride_extra_kv_block = extra_stride;
  }
  return p;
}

void make_main_indices_all_invalid(SparseDecodeProblem& problem) {
  const SparseDecodeArgs& a = problem.args;
  const std::vector<int32_t> zoo = invalid_index_zoo(a.num_blocks * a.page_block_size);
  for (int64_t i = 0; i < a.b; ++i)
    for (int64_t j = 0; j < a.s_q; ++j)
      for (int64_t k = 0; k < a.topk; ++k)
        problem.indices[size_t(i * a.stride_indices_b + j * a.stride_indices_s + k)] =
            zoo[size_t((i + j + k) % int64_t(zoo.size()))];
}

SparseDecodeProblem make_case_problem(const SparseCase& c) {
  SparseDecodeProblem p = make_sparse_case_problem(c.config);
  if (c.main_all_invalid) make_main_indices_all_invalid(p);
  return p;
}

void reference_outputs(const SparseDecodeProblem& problem, HostOutputs* expected) {
  *expected = problem.make_outputs();
  const auto start = std::chrono::steady_clock::now();
  const Status status = ref::sparse_decode(problem.host_args(*expected));
  add_reference_time(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  ASSERT_TRUE(status.ok()) << "reference: " << status.what();
}

void expect_matches(const StridedView& out_view, const StridedView& lse_view, const HostOutputs& got,
                    const HostOutputs& expected, const std::vector<float>& attn_sink, const std::string& what) {
  const std::vector<double> expected_out = gather(out_view, expected.out.data());
  const std::vector<double> expected_lse = gather(lse_view, expected.lse.data());
  const std::vector<double> got_out = gather(out_view, got.out.data());

  CompareOptions out_options;
  out_options.name = what + ": out";
  out_options.shape = out_view.shape;
  // All-zero is right when every row is empty or every head's sink is +inf.
  out_options.expect_empty = all_minus_inf(expected_lse) || all_exact_zero(expected_out);
  EXPECT_TRUE(compare_out(got_out, expected_out, out_options).assertion());
  EXPECT_TRUE(compare_lse(gather(lse_view, got.lse.data()), expected_lse, lse_options(what + ": lse", lse_view.shape))
                  .assertion());

  // out view [b, s_q, h_q, d_v], lse view [b, h_q, s_q].
  const int64_t b = out_view.shape[0], s_q = out_view.shape[1], h_q = out_view.shape[2], d_v = out_view.shape[3];
  int64_t bad_empty = 0, bad_sink = 0;
  std::ostringstream first_empty, first_sink;
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t j = 0; j < s_q; ++j) {
      for (int64_t h = 0; h < h_q; ++h) {
        const bool empty =
            expected_lse[size_t((i * h_q + h) * s_q + j)] == -std::numeric_limits<double>::infinity();
        const bool sink_inf = !attn_sink.empty() && attn_sink[size_t(h)] == std::numeric_limits<float>::infinity();
        if (!empty && !sink_inf) continue;
        const int64_t base = i * out_view.strides[0] + j * out_view.strides[1] + h * out_view.strides[2];
        for (int64_t d = 0; d < d_v; ++d) {
          const uint16_t bits = got.out[size_t(base + d)];
          if (empty && bits != 0) {
            if (bad_empty++ == 0) {
              first_empty << "first at request " << i << ", token " << j << ", head " << h << ", dim " << d
                          << ": bits 0x" << std::hex << bits;
            }
            break;
          }
          if (!empty && (bits & 0x7FFF) != 0) {  // +-0 both are zero
            if (bad_sink++ == 0) {
              first_sink << "first at request " << i << ", token " << j << ", head " << h << ", dim " << d
                         << ": bits 0x" << std::hex << bits;
            }
            break;
          }
        }
      }
    }
  }
  EXPECT_EQ(bad_empty, 0) << what << ": empty rows whose out is not exactly +0 (" << first_empty.str() << ")";
  EXPECT_EQ(bad_sink, 0) << what << ": rows of a +inf-sink head whose out is not zero (" << first_sink.str() << ")";
  EXPECT_EQ(written_padding(out_view, got.out.data()), 0) << what << ": out padding was written";
  EXPECT_EQ(written_padding(lse_view, got.lse.data()), 0) << what << ": lse padding was written";
}

void expect_matches_reference(const SparseDecodeProblem& problem, const HostOutputs& got,
                              const HostOutputs& expected, const std::string& what) {
  expect_matches(problem.out_view(), problem.lse_view(), got, expected, problem.attn_sink, what);
}

void expect_bitwise_equal(const HostOutputs& a, const HostOutputs& b, const std::string& what) {
  ASSERT_EQ(a.out.size(), b.out.size());
  ASSERT_EQ(a.lse.size(), b.lse.size());
  int64_t out_diffs = 0, first_out = -1;
  for (size_t k = 0; k < a.out.size(); ++k) {
    if (a.out[k] != b.out[k] && out_diffs++ == 0) first_out = int64_t(k);
  }
  int64_t lse_diffs = 0, first_lse = -1;
  for (size_t k = 0; k < a.lse.size(); ++k) {
    if (std::memcmp(&a.lse[k], &b.lse[k], sizeof(float)) != 0 && lse_diffs++ == 0) first_lse = int64_t(k);
  }
  EXPECT_EQ(out_diffs, 0) << what << ": out differs in " << out_diffs << " of " << a.out.size()
                          << " elements, first at storage index " << first_out;
  EXPECT_EQ(lse_diffs, 0) << what << ": lse differs in " << lse_diffs << " of " << a.lse.size()
                          << " elements, first at storage index " << first_lse;
}

void run_sparse_problem(const SparseDecodeProblem& problem, int32_t num_sms_for_plan) {
  DeviceMirror<SparseDecodeArgs> mirror = to_device(problem);
  ASSERT_TRUE(mirror.ok()) << mirror.error();
  HostOutputs got;
  ASSERT_NO_FATAL_FAILURE(plan_and_run(mirror, num_sms_for_plan, &got));
  HostOutputs expected;
  ASSERT_NO_FATAL_FAILURE(reference_outputs(problem, &expected));
  expect_matches_reference(problem, got, expected, "gpu");
}

void run_sparse_case(const SparseDecodeConfig& config, int32_t num_sms_for_plan) {
  run_sparse_problem(make_sparse_case_problem(config), num_sms_for_plan);
}

int64_t reference_cost(const SparseDecodeConfig& c) {
  return c.b * c.s_q * c.h_q * (c.topk + c.extra_topk);
}

}  // namespace flashmla::test::sd
