// Sparse decode with indices 0..len-1 is dense decode on the dequantized
// cache. The FP8 cache holds tokens 0..max_len-1 (NaN beyond); a bf16 cache
// of the same tokens is built with ref::decode_v32_token /
// decode_model1_token, and every request's block table is the identity, so
// request i of dense_decode sees exactly the tokens its indices select. Both
// GPU results are checked against the sparse reference and against each
// other, within the spec's bounds.
//
// Positions k >= len hold valid indices of NaN tokens past max_len: they are
// masked by topk_length alone.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/random_values.h"
#include "flashmla_ref/fp8_format.h"
#include "flashmla_ref/reference.h"
#include "sparse_decode/sparse_case.h"

namespace flashmla::test::sd {
namespace {

constexpr int64_t kDensePage = 64;  // the only page size dense_decode is built for

struct EquivalenceCase {
  std::string name;
  KVFormat format;
  int64_t s_q;
  int64_t h_q;
  int64_t topk;
  int64_t page_block_size;      // of the FP8 (sparse) cache
  std::vector<int32_t> lengths;  // [b], each <= topk
  friend void PrintTo(const EquivalenceCase& c, std::ostream* os) { *os << c.name; }
};

std::vector<EquivalenceCase> equivalence_cases() {
  return {
      {"V32_Sq2H64K2048P53_Lengths2048_0_700_1", KVFormat::kFp8V32, 2, 64, 2048, 53, {2048, 0, 700, 1}},
      {"V32_Sq1H128K128P64_Lengths128_65", KVFormat::kFp8V32, 1, 128, 128, 64, {128, 65}},
      {"Model1_Sq3H16K2048P256_Lengths1500_2048_64", KVFormat::kFp8Model1, 3, 16, 2048, 256, {1500, 2048, 64}},
      {"Model1_Sq1H128K128P2_Lengths128_0_127", KVFormat::kFp8Model1, 1, 128, 128, 2, {128, 0, 127}},
  };
}

struct EquivalenceProblem {
  SparseDecodeProblem sparse;        // FP8 cache, indices 0..len-1, topk_length
  std::vector<uint16_t> dense_kv;    // [num_dense_blocks, 64, 1, d_qk] bf16
  std::vector<int32_t> block_table;  // [b, max_blocks], identity
  int64_t num_dense_blocks = 0;
  int64_t max_blocks = 0;
};

EquivalenceProblem make_equivalence_problem(const EquivalenceCase& e, uint64_t seed) {
  const int64_t b = int64_t(e.lengths.size());
  SparseDecodeConfig c = sparse_config(e.format, b, e.s_q, e.h_q, e.topk, e.page_block_size);
  c.with_topk_length = true;
  c.topk_length = e.lengths;
  c.seed = seed;
  EquivalenceProblem p;
  p.sparse = make_sparse_case_problem(c);  // q, strides, outputs; cache and indices redone below
  SparseDecodeArgs& a = p.sparse.args;
  const int64_t max_len = *std::max_element(e.lengths.begin(), e.lengths.end());
  const int64_t P = a.page_block_size;
  const int64_t d_qk = a.d_qk;
  // Tokens 0..max_len-1 hold keys; then NaN tokens for positions >= len.
  a.num_blocks = (max_len + e.topk + P - 1) / P + 1;
  const int64_t capacity = a.num_blocks * P;
  p.sparse.kv.assign(size_t(a.num_blocks * a.stride_kv_block), kNaNByte);
  p.num_dense_blocks = (max_len + kDensePage - 1) / kDensePage + 1;
  p.max_blocks = p.num_dense_blocks;
  p.dense_kv.assign(size_t(p.num_dense_blocks * kDensePage * d_qk), kNaN16);

  Rng rng(seed ^ 0x5eed);
  std::vector<uint16_t> values(static_cast<size_t>(d_qk));
  for (int64_t t = 0; t < max_len; ++t) {
    for (auto& v : values) v = rng.value_bits(DType::kBFloat16);
    uint8_t* page = p.sparse.kv.data() + (t / P) * a.stride_kv_block;
    uint16_t* dense_row = p.dense_kv.data() + t * d_qk;  // page t / 64, row t % 64, packed
    if (e.format == KVFormat::kFp8V32) {
      ref::encode_v32_token(values.data(), page + (t % P) * ref::kV32TokenBytes);
      ref::decode_v32_token(page + (t % P) * ref::kV32TokenBytes, dense_row);
    } else {
      ref::encode_model1_token(values.data(), page, P, t % P);
      page[576 * P + 8 * (t % P) + 7] = kNaNByte;  // the pad byte is never read
      ref::decode_model1_token(page, P, t % P, dense_row);
    }
  }
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t j = 0; j < a.s_q; ++j) {
      int32_t* row = p.sparse.indices.data() + i * a.stride_indices_b + j * a.stride_indices_s;
      for (int64_t k = 0; k < e.topk; ++k) {
        // Valid positions: 0..len-1. Past len: distinct NaN tokens, in range.
        row[k] = k < e.lengths[size_t(i)] ? int32_t(k) : int32_t(std::min(max_len + k, capacity - 1));
      }
    }
  }
  p.block_table.assign(size_t(b * p.max_blocks), 0);
  for (int64_t i = 0; i < b; ++i)
    for (int64_t col = 0; col < p.max_blocks; ++col) p.block_table[size_t(i * p.max_blocks + col)] = int32_t(col);
  return p;
}

// Dense arguments over the same q, with device pointers; out/lse separate.
DenseDecodeArgs dense_args(const SparseDecodeArgs& s, const EquivalenceProblem& p) {
  DenseDecodeArgs d;
  d.b = s.b;
  d.s_q = s.s_q;
  d.h_q = s.h_q;
  d.h_kv = 1;
  d.d_qk = s.d_qk;
  d.d_v = s.d_v;
  d.page_block_size = kDensePage;
  d.num_blocks = p.num_dense_blocks;
  d.max_blocks_per_seq = p.max_blocks;
  d.dtype = DType::kBFloat16;
  d.kv_format = KVFormat::kNative;
  d.q = s.q;
  d.stride_q_b = s.stride_q_b;
  d.stride_q_s = s.stride_q_s;
  d.stride_q_h = s.stride_q_h;
  d.stride_kv_h = s.d_qk;
  d.stride_kv_row = s.d_qk;
  d.stride_kv_block = kDensePage * s.d_qk;
  d.stride_block_table_b = p.max_blocks;
  d.cache_seqlens = s.topk_length;  // the same device lengths
  d.softmax_scale = s.softmax_scale;
  d.causal = false;
  d.stride_out_b = s.stride_out_b;
  d.stride_out_s = s.stride_out_s;
  d.stride_out_h = s.stride_out_h;
  d.stride_lse_b = s.stride_lse_b;
  d.stride_lse_h = s.stride_lse_h;
  return d;
}

// Dense decode's CPU reference on the dequantized cache of `p` (host
// pointers), into *out.
Status dense_reference(const EquivalenceProblem& p, HostOutputs* out) {
  *out = p.sparse.make_outputs();
  DenseDecodeArgs d = dense_args(p.sparse.args, p);
  d.q = p.sparse.q.data();
  d.kv = p.dense_kv.data();
  d.block_table = p.block_table.data();
  d.cache_seqlens = p.sparse.topk_length.data();
  d.out = out->out.data();
  d.lse = out->lse.data();
  return ref::dense_decode(d);
}

class GpuSparseDecodeDenseEquivalence : public ::testing::TestWithParam<EquivalenceCase> {};

TEST_P(GpuSparseDecodeDenseEquivalence, IndicesZeroToLenEqualDenseOnDequantizedCache) {
  FLASHMLA_REQUIRE_GPU();
  const EquivalenceProblem p = make_equivalence_problem(GetParam(), 8100);
  DeviceMirror<SparseDecodeArgs> mirror = to_device(p.sparse);
  ASSERT_TRUE(mirror.ok()) << mirror.error();
  HostOutputs sparse_got;
  ASSERT_NO_FATAL_FAILURE(plan_and_run(mirror, 0, &sparse_got));
  HostOutputs expected;
  ASSERT_NO_FATAL_FAILURE(reference_outputs(p.sparse, &expected));
  expect_matches_reference(p.sparse, sparse_got, expected, "sparse vs reference");

  if (p.sparse.args.d_qk != 576) {
    // The dense decode kernel is built for d_qk 576 only (it reports "not
    // supported" for MODEL1's 512): here dense decode is its CPU reference
    // on the dequantized cache.
    HostOutputs dense_expected;
    const Status status = dense_reference(p, &dense_expected);
    ASSERT_TRUE(status.ok()) << status.what();
    expect_matches_reference(p.sparse, sparse_got, dense_expected, "sparse vs dense reference on the dequantized cache");
    return;
  }

  // Dense decode over the dequantized cache.
  DeviceBuffer dense_kv = to_device(p.dense_kv);
  DeviceBuffer table = to_device(p.block_table);
  DeviceBuffer dense_out(p.sparse.make_outputs().out.size() * sizeof(uint16_t));
  DeviceBuffer dense_lse(p.sparse.make_outputs().lse.size() * sizeof(float));
  ASSERT_NE(dense_kv.get(), nullptr);
  ASSERT_NE(table.get(), nullptr);
  ASSERT_NE(dense_out.get(), nullptr);
  ASSERT_NE(dense_lse.get(), nullptr);
  FLASHMLA_ASSERT_CUDA(dense_out.fill_bytes(0xFF));
  FLASHMLA_ASSERT_CUDA(dense_lse.fill_bytes(0xFF));
  DenseDecodeArgs d = dense_args(mirror.args, p);
  d.kv = dense_kv.get();
  d.block_table = table.as<const int32_t>();
  d.out = dense_out.get();
  d.lse = dense_lse.as<float>();

  DensePlan plan;
  ASSERT_NO_FATAL_FAILURE(prepare_plan(d, 0, &plan));
  Stream stream;
  ASSERT_TRUE(stream.ok());
  const std::string error = enqueue_plan_and_decode(d, plan, stream.get());
  ASSERT_TRUE(error.empty()) << error;
  FLASHMLA_ASSERT_CUDA(cudaStreamSynchronize(stream.get()));
  HostOutputs dense_got = p.sparse.make_outputs();
  FLASHMLA_ASSERT_CUDA(dense_out.download(dense_got.out));
  FLASHMLA_ASSERT_CUDA(dense_lse.download(dense_got.lse));

  expect_matches_reference(p.sparse, dense_got, expected, "dense on the dequantized cache vs sparse reference");
  expect_matches(p.sparse.out_view(), p.sparse.lse_view(), sparse_got, dense_got, {}, "sparse vs dense");
}

INSTANTIATE_TEST_SUITE_P(Cases, GpuSparseDecodeDenseEquivalence, ::testing::ValuesIn(equivalence_cases()),
                         [](const auto& info) { return info.param.name; });

// CPU check of the premise: the sparse reference on the FP8 problem equals
// the dense reference on the dequantized bf16 cache (within the spec's
// bounds), so the GPU comparison tests the kernels, not the construction.
TEST(SparseDecodeDenseEquivalenceCases, ReferencesAgree) {
  for (const EquivalenceCase& e : equivalence_cases()) {
    EquivalenceCase small = e;
    small.h_q = std::min<int64_t>(e.h_q, 4);  // shapes of the heads do not matter here
    const EquivalenceProblem p = make_equivalence_problem(small, 8100);
    HostOutputs sparse_expected;
    ASSERT_NO_FATAL_FAILURE(reference_outputs(p.sparse, &sparse_expected));
    HostOutputs dense_expected;
    const Status status = dense_reference(p, &dense_expected);
    ASSERT_TRUE(status.ok()) << e.name << ": " << status.what();
    expect_matches(p.sparse.out_view(), p.sparse.lse_view(), dense_expected, sparse_expected, {}, e.name);
  }
}

}  // namespace
}  // namespace flashmla::test::sd
