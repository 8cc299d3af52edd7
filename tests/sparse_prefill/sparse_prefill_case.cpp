#include "sparse_prefill/sparse_prefill_case.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <sstream>
#include <utility>

#include "common/compare.h"
#include "common/random_values.h"
#include "common/reference_time.h"
#include "common/strided.h"
#include "flashmla_ref/reference.h"

namespace flashmla::test {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

void timed_reference(const SparsePrefillArgs& args) {
  const auto start = std::chrono::steady_clock::now();
  const Status status = ref::sparse_prefill(args);
  add_reference_time(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  ASSERT_TRUE(status.ok()) << "reference: " << status.what();
}

bool all_zero(const std::vector<double>& values) {
  for (double v : values) {
    if (v != 0.0) return false;
  }
  return true;
}

template <typename T>
int64_t count_bit_diffs(const std::vector<T>& a, const std::vector<T>& b, int64_t* first) {
  int64_t diffs = 0;
  *first = -1;
  for (size_t k = 0; k < a.size(); ++k) {
    if (std::memcmp(&a[k], &b[k], sizeof(T)) != 0) {
      if (diffs++ == 0) *first = int64_t(k);
    }
  }
  return diffs;
}

}  // namespace

SparsePrefillConfig prefill_config(int64_t s_q, int64_t s_kv, int64_t h_q, int64_t topk, int64_t d_qk) {
  SparsePrefillConfig c;
  c.s_q = s_q;
  c.s_kv = s_kv;
  c.h_q = h_q;
  c.h_kv = 1;
  c.d_qk = d_qk;
  c.d_v = 512;
  c.topk = topk;
  c.softmax_scale = kSpreadScale;
  return c;
}

std::vector<int32_t> mixed_topk_lengths(int64_t s_q, int64_t topk, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> length(0, topk);
  std::vector<int32_t> lengths(size_t(s_q), 0);
  for (auto& v : lengths) v = int32_t(length(rng));
  const int32_t planted[] = {0, int32_t(topk), 1, int32_t(topk - 1)};
  const int64_t n = std::min<int64_t>(s_q, 4);
  for (int64_t k = 0; k < n; ++k) lengths[size_t(k * s_q / n)] = planted[k];
  return lengths;
}

std::vector<float> mixed_sinks(int64_t h_q) {
  const float inf = std::numeric_limits<float>::infinity();
  // Finite values span "negligible" (-3) to "dominant" (9) next to a
  // typical lse of M + ln(count) ~ 2 + ln(100).
  const float cycle[] = {-inf, 0.5f, inf, 4.0f, -3.0f, 6.5f, 9.0f};
  std::vector<float> sinks(static_cast<size_t>(h_q));
  for (int64_t h = 0; h < h_q; ++h) sinks[size_t(h)] = cycle[h % 7];
  return sinks;
}

void poison_outputs(const DeviceMirror<SparsePrefillArgs>& mirror, cudaStream_t stream) {
  FLASHMLA_ASSERT_CUDA(cudaMemsetAsync(mirror.out, 0xFF, mirror.host_shape.out.size() * sizeof(uint16_t), stream));
  FLASHMLA_ASSERT_CUDA(
      cudaMemsetAsync(mirror.max_logits, 0xFF, mirror.host_shape.max_logits.size() * sizeof(float), stream));
  FLASHMLA_ASSERT_CUDA(cudaMemsetAsync(mirror.lse, 0xFF, mirror.host_shape.lse.size() * sizeof(float), stream));
}

void download_outputs(const DeviceMirror<SparsePrefillArgs>& mirror, HostOutputs* got) {
  *got = mirror.host_shape;
  FLASHMLA_ASSERT_CUDA(mirror.arena.download_bytes(mirror.out, got->out.data(), got->out.size() * sizeof(uint16_t)));
  FLASHMLA_ASSERT_CUDA(mirror.arena.download_bytes(mirror.max_logits, got->max_logits.data(),
                                                   got->max_logits.size() * sizeof(float)));
  FLASHMLA_ASSERT_CUDA(mirror.arena.download_bytes(mirror.lse, got->lse.data(), got->lse.size() * sizeof(float)));
}

void run_on_gpu(const DeviceMirror<SparsePrefillArgs>& mirror, HostOutputs* got) {
  const Status valid = validate(mirror.args);
  ASSERT_TRUE(valid.ok()) << "sparse_prefill validate: " << to_string(valid.code) << ": " << valid.what();
  const int64_t workspace_bytes = workspace_size(mirror.args);
  ASSERT_GE(workspace_bytes, 0);
  DeviceBuffer workspace;
  if (workspace_bytes > 0) {
    ASSERT_TRUE(workspace.allocate(size_t(workspace_bytes))) << "cudaMalloc of the workspace (" << workspace_bytes
                                                             << " bytes)";
    FLASHMLA_ASSERT_CUDA(workspace.fill_bytes(0xFF));  // scratch the kernel does not write must not be read
  }
  Stream stream;
  ASSERT_TRUE(stream.ok()) << "cudaStreamCreate failed";
  // Uploads ran on the legacy default stream; the test's stream is
  // non-blocking: finish them first.
  FLASHMLA_ASSERT_CUDA(cudaDeviceSynchronize());
  ASSERT_NO_FATAL_FAILURE(poison_outputs(mirror, stream.get()));
  const Status status = run(mirror.args, workspace.get(), workspace_bytes, stream.get());
  // kNotSupported ("kernel not built yet") is a failure here, on purpose.
  ASSERT_TRUE(status.ok()) << "sparse_prefill run: " << to_string(status.code) << ": " << status.what();
  FLASHMLA_ASSERT_CUDA(cudaStreamSynchronize(stream.get()));
  FLASHMLA_ASSERT_CUDA(cudaGetLastError());
  ASSERT_NO_FATAL_FAILURE(download_outputs(mirror, got));
}

void reference_outputs(const SparsePrefillProblem& problem, HostOutputs* expected) {
  *expected = problem.make_outputs();
  ASSERT_NO_FATAL_FAILURE(timed_reference(problem.host_args(*expected)));
}

void expect_matches_reference(const SparsePrefillProblem& problem, const HostOutputs& got,
                              const HostOutputs& expected, const std::string& what) {
  const StridedView out_view = problem.out_view();
  const StridedView max_view = problem.max_logits_view();
  const StridedView lse_view = problem.lse_view();
  ASSERT_EQ(got.out.size(), size_t(problem.args.s_q * problem.args.stride_out_s));
  ASSERT_EQ(got.max_logits.size(), size_t(problem.args.s_q * problem.args.stride_max_logits_s));
  ASSERT_EQ(got.lse.size(), size_t(problem.args.s_q * problem.args.stride_lse_s));
  const std::vector<double> expected_out = gather(out_view, expected.out.data());
  const std::vector<double> expected_lse = gather(lse_view, expected.lse.data());
  const std::vector<double> got_out = gather(out_view, got.out.data());
  const std::vector<double> got_max = gather(max_view, got.max_logits.data());
  const std::vector<double> got_lse = gather(lse_view, got.lse.data());

  CompareOptions out_options;
  out_options.name = what + ": out";
  out_options.shape = out_view.shape;
  out_options.expect_empty = all_zero(expected_out);
  EXPECT_TRUE(compare_out(got_out, expected_out, out_options).assertion());
  EXPECT_TRUE(compare_lse(got_max, gather(max_view, expected.max_logits.data()),
                          lse_options(what + ": max_logits", max_view.shape))
                  .assertion());
  EXPECT_TRUE(compare_lse(got_lse, expected_lse, lse_options(what + ": lse", lse_view.shape)).assertion());

  // Empty rows: out exactly +0 bits, max_logits and lse exactly -inf.
  // Rows with a +inf sink: out exactly 0.
  const SparsePrefillArgs& a = problem.args;
  int64_t bad_empty = 0, bad_empty_stats = 0, bad_sink = 0;
  std::ostringstream first_empty, first_stats, first_sink;
  for (int64_t j = 0; j < a.s_q; ++j) {
    for (int64_t h = 0; h < a.h_q; ++h) {
      const size_t row = size_t(j * a.h_q + h);
      const int64_t base = j * a.stride_out_s + h * a.stride_out_h;
      if (expected_lse[row] == -kInf) {
        for (int64_t d = 0; d < a.d_v; ++d) {
          const uint16_t bits = got.out[size_t(base + d)];
          if (bits != 0) {
            if (bad_empty++ == 0) {
              first_empty << "first at token " << j << ", head " << h << ", dim " << d << ": bits 0x" << std::hex
                          << bits;
            }
            break;
          }
        }
        if (got_max[row] != -kInf || got_lse[row] != -kInf) {
          if (bad_empty_stats++ == 0) {
            first_stats << "first at token " << j << ", head " << h << ": max_logits " << got_max[row] << ", lse "
                        << got_lse[row];
          }
        }
      }
      const bool inf_sink = !problem.attn_sink.empty() && problem.attn_sink[size_t(h)] == float(kInf);
      if (inf_sink) {
        for (int64_t d = 0; d < a.d_v; ++d) {
          if (got_out[row * size_t(a.d_v) + size_t(d)] != 0.0) {
            if (bad_sink++ == 0) {
              first_sink << "first at token " << j << ", head " << h << ", dim " << d << ": "
                         << got_out[row * size_t(a.d_v) + size_t(d)];
            }
            break;
          }
        }
      }
    }
  }
  EXPECT_EQ(bad_empty, 0) << what << ": empty rows whose out is not exactly +0 (" << first_empty.str() << ")";
  EXPECT_EQ(bad_empty_stats, 0) << what << ": empty rows whose max_logits or lse is not -inf (" << first_stats.str()
                                << ")";
  EXPECT_EQ(bad_sink, 0) << what << ": rows with a +inf sink whose out is not 0 (" << first_sink.str() << ")";
  EXPECT_EQ(written_padding(out_view, got.out.data()), 0) << what << ": out padding was written";
  EXPECT_EQ(written_padding(max_view, got.max_logits.data()), 0) << what << ": max_logits padding was written";
  EXPECT_EQ(written_padding(lse_view, got.lse.data()), 0) << what << ": lse padding was written";
}

void expect_bitwise_equal(const HostOutputs& a, const HostOutputs& b, const std::string& what) {
  ASSERT_EQ(a.out.size(), b.out.size());
  ASSERT_EQ(a.max_logits.size(), b.max_logits.size());
  ASSERT_EQ(a.lse.size(), b.lse.size());
  int64_t first = -1;
  int64_t diffs = count_bit_diffs(a.out, b.out, &first);
  EXPECT_EQ(diffs, 0) << what << ": out differs in " << diffs << " of " << a.out.size()
                      << " elements, first at storage index " << first;
  diffs = count_bit_diffs(a.max_logits, b.max_logits, &first);
  EXPECT_EQ(diffs, 0) << what << ": max_logits differs in " << diffs << " of " << a.max_logits.size()
                      << " elements, first at storage index " << first;
  diffs = count_bit_diffs(a.lse, b.lse, &first);
  EXPECT_EQ(diffs, 0) << what << ": lse differs in " << diffs << " of " << a.lse.size()
                      << " elements, first at storage index " << first;
}

void run_prefill_problem(const SparsePrefillProblem& problem) {
  DeviceMirror<SparsePrefillArgs> mirror = to_device(problem);
  ASSERT_TRUE(mirror.ok()) << mirror.error();
  HostOutputs got;
  ASSERT_NO_FATAL_FAILURE(run_on_gpu(mirror, &got));
  HostOutputs expected;
  ASSERT_NO_FATAL_FAILURE(reference_outputs(problem, &expected));
  expect_matches_reference(problem, got, expected, "gpu");
}

void run_prefill_case(const SparsePrefillConfig& config) { run_prefill_problem(make_sparse_prefill_problem(config)); }

// ----- sampled rows ----------------------------------------------------------

RowSubset make_row_subset(const SparsePrefillProblem& problem, const std::vector<int64_t>& rows) {
  RowSubset subset;
  subset.rows = rows;
  SparsePrefillProblem& c = subset.compact;
  c.config = problem.config;
  c.config.s_q = int64_t(rows.size());
  c.args = problem.args;
  c.args.s_q = int64_t(rows.size());
  const SparsePrefillArgs& a = problem.args;
  c.q.resize(rows.size() * size_t(a.stride_q_s));
  c.indices.resize(rows.size() * size_t(a.stride_indices_s));
  for (size_t r = 0; r < rows.size(); ++r) {
    const int64_t j = rows[r];
    std::copy_n(problem.q.begin() + j * a.stride_q_s, a.stride_q_s, c.q.begin() + int64_t(r) * a.stride_q_s);
    std::copy_n(problem.indices.begin() + j * a.stride_indices_s, a.stride_indices_s,
                c.indices.begin() + int64_t(r) * a.stride_indices_s);
    if (!problem.topk_length.empty()) c.topk_length.push_back(problem.topk_length[size_t(j)]);
  }
  c.attn_sink = problem.attn_sink;
  return subset;
}

void reference_outputs(const RowSubset& subset, const SparsePrefillProblem& source, HostOutputs* expected) {
  *expected = subset.compact.make_outputs();
  SparsePrefillArgs args = subset.compact.host_args(*expected);
  args.kv = source.kv.data();
  ASSERT_NO_FATAL_FAILURE(timed_reference(args));
}

HostOutputs gather_rows(const SparsePrefillProblem& source, const RowSubset& subset, const HostOutputs& full) {
  const SparsePrefillArgs& a = source.args;
  HostOutputs compact = subset.compact.make_outputs();
  for (size_t r = 0; r < subset.rows.size(); ++r) {
    const int64_t j = subset.rows[r];
    std::copy_n(full.out.begin() + j * a.stride_out_s, a.stride_out_s, compact.out.begin() + int64_t(r) * a.stride_out_s);
    std::copy_n(full.max_logits.begin() + j * a.stride_max_logits_s, a.stride_max_logits_s,
                compact.max_logits.begin() + int64_t(r) * a.stride_max_logits_s);
    std::copy_n(full.lse.begin() + j * a.stride_lse_s, a.stride_lse_s, compact.lse.begin() + int64_t(r) * a.stride_lse_s);
  }
  return compact;
}

bool row_has_valid_key(const SparsePrefillProblem& problem, int64_t j, int64_t* count) {
  const SparsePrefillArgs& a = problem.args;
  const int64_t length =
      problem.topk_length.empty() ? a.topk : std::clamp<int64_t>(problem.topk_length[size_t(j)], 0, a.topk);
  int64_t valid = 0;
  for (int64_t g = 0; g < a.h_kv; ++g) {
    const int32_t* row = problem.indices.data() + j * a.stride_indices_s + g * a.stride_indices_h;
    for (int64_t k = 0; k < length; ++k) valid += row[k] >= 0 && row[k] < a.s_kv;
  }
  if (count != nullptr) *count = valid;
  return valid > 0;
}

void expect_rows_plausible(const SparsePrefillProblem& problem, const HostOutputs& got, const std::string& what) {
  const SparsePrefillArgs& a = problem.args;
  ASSERT_EQ(a.h_kv, 1) << "expect_rows_plausible assumes one KV head";
  ASSERT_EQ(got.out.size(), size_t(a.s_q * a.stride_out_s));
  int64_t bad_out = 0, bad_stats = 0;
  std::ostringstream first_out, first_stats;
  for (int64_t j = 0; j < a.s_q; ++j) {
    int64_t count = 0;
    const bool has_key = row_has_valid_key(problem, j, &count);
    for (int64_t h = 0; h < a.h_q; ++h) {
      const double m = got.max_logits[size_t(j * a.stride_max_logits_s + h)];
      const double l = got.lse[size_t(j * a.stride_lse_s + h)];
      const uint16_t* out = got.out.data() + j * a.stride_out_s + h * a.stride_out_h;
      bool row_ok = true;
      int64_t bad_d = -1;
      for (int64_t d = 0; d < a.d_v && row_ok; ++d) {
        if (has_key) {
          const double v = ref::bf16_to_float(out[d]);
          row_ok = std::isfinite(v) && std::fabs(v) <= 1.0;
        } else {
          row_ok = out[d] == 0;
        }
        if (!row_ok) bad_d = d;
      }
      if (!row_ok && bad_out++ == 0) {
        first_out << "token " << j << ", head " << h << ", dim " << bad_d << ": bits 0x" << std::hex << out[bad_d]
                  << std::dec << (has_key ? " (row has keys: expected finite, |v| <= 1)" : " (empty row: expected +0)");
      }
      bool stats_ok;
      if (has_key) {
        const double tol = 1e-5 + 1.3e-4 * std::fabs(l);
        stats_ok = std::isfinite(m) && std::isfinite(l) && l >= m - tol && l <= m + std::log(double(count)) + tol;
      } else {
        stats_ok = m == -kInf && l == -kInf;
      }
      if (!stats_ok && bad_stats++ == 0) {
        first_stats << "token " << j << ", head " << h << ": max_logits " << m << ", lse " << l << ", "
                    << count << " valid positions";
      }
    }
  }
  EXPECT_EQ(bad_out, 0) << what << ": " << bad_out << " rows with an implausible out, first at " << first_out.str();
  EXPECT_EQ(bad_stats, 0) << what << ": " << bad_stats << " rows with implausible max_logits/lse, first at "
                          << first_stats.str();
}

SparsePrefillProblem make_large_prefill_problem(int64_t s_q, int64_t s_kv, int64_t h_q, int64_t topk, int64_t d_qk,
                                                uint64_t seed) {
  SparsePrefillProblem p;
  SparsePrefillConfig& c = p.config;
  c = prefill_config(s_q, s_kv, h_q, topk, d_qk);
  c.with_topk_length = true;
  c.seed = seed;
  SparsePrefillArgs& a = p.args;
  a.s_q = s_q;
  a.s_kv = s_kv;
  a.h_q = h_q;
  a.h_kv = 1;
  a.d_qk = d_qk;
  a.d_v = 512;
  a.topk = topk;
  a.softmax_scale = c.softmax_scale;
  a.stride_q_h = d_qk;
  a.stride_q_s = h_q * d_qk;
  a.stride_kv_h = d_qk;
  a.stride_kv_s = d_qk;
  a.stride_indices_h = topk;
  a.stride_indices_s = topk;
  a.stride_out_h = a.d_v;
  a.stride_out_s = h_q * a.d_v;
  a.stride_max_logits_s = h_q;
  a.stride_lse_s = h_q;

  Rng rng(seed);
  // q: each (token, head) row is a slice of a random pool at a
  // pseudo-random offset, so rows differ without s_q * h_q * d_qk normal draws.
  const int64_t pool_size = (int64_t(1) << 20) + 4099;
  std::vector<uint16_t> pool(static_cast<size_t>(pool_size));
  for (auto& v : pool) v = rng.value_bits(DType::kBFloat16);
  p.q.resize(size_t(s_q * a.stride_q_s));
  std::mt19937_64 offsets(seed ^ 0x9E3779B97F4A7C15ull);
  for (int64_t row = 0; row < s_q * h_q; ++row) {
    const int64_t offset = int64_t(offsets() % uint64_t(pool_size - d_qk));
    std::memcpy(p.q.data() + row * d_qk, pool.data() + offset, size_t(d_qk) * sizeof(uint16_t));
  }
  p.topk_length = mixed_topk_lengths(s_q, topk, seed + 1);
  p.indices.resize(size_t(s_q * topk));
  std::vector<char> used(size_t(s_kv), 0);
  for (int64_t j = 0; j < s_q; ++j) {
    int32_t* row = p.indices.data() + j * topk;
    fill_index_row(rng, row, topk, s_kv, c.invalid_fraction, c.duplicate_fraction);
    for (int64_t k = 0; k < p.topk_length[size_t(j)]; ++k) {
      if (row[k] >= 0 && row[k] < s_kv) used[size_t(row[k])] = 1;
    }
  }
  p.kv.assign(size_t(s_kv * d_qk), kNaN16);
  for (int64_t t = 0; t < s_kv; ++t) {
    if (!used[size_t(t)]) continue;
    for (int64_t d = 0; d < d_qk; ++d) p.kv[size_t(t * d_qk + d)] = rng.value_bits(DType::kBFloat16);
  }
  return p;
}

std::vector<int64_t> sample_rows(int64_t s_q, int64_t random_rows, uint64_t seed) {
  std::set<int64_t> rows;
  for (int64_t r : {int64_t(0), int64_t(1), s_q / 2, s_q - 2, s_q - 1, int64_t(32767), int64_t(32768),
                    int64_t(65535), int64_t(65536), int64_t(65537)}) {
    if (r >= 0 && r < s_q) rows.insert(r);
  }
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> pick(0, std::max<int64_t>(s_q - 1, 0));
  for (int64_t k = 0; k < random_rows * 4 && int64_t(rows.size()) < std::min<int64_t>(s_q, 10 + random_rows); ++k) {
    rows.insert(pick(rng));
  }
  return {rows.begin(), rows.end()};
}

}  // namespace flashmla::test
