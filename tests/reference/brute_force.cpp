#include "reference/brute_force.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "flashmla_ref/numeric.h"

namespace flashmla::test {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

double round_p(double p, DType dtype) {
  if (dtype == DType::kBFloat16) return ref::bf16_to_float(ref::float_to_bf16(float(p)));
  if (dtype == DType::kFloat16) return ref::fp16_to_float(ref::float_to_fp16(float(p)));
  return p;
}

struct Row {
  std::vector<double> out;
  double lse;
  double max_logit;
};

// The spec's formula, written plainly: s_t, M, L, lse, P rounded, sink.
Row attend(const std::vector<double>& q, const std::vector<std::vector<double>>& keys, int64_t d_v,
           double scale, DType p_dtype, const float* sink) {
  Row row{std::vector<double>(size_t(d_v), 0.0), -kInf, -kInf};
  if (keys.empty()) return row;
  std::vector<double> s;
  for (const auto& k : keys) {
    double dot = 0.0;
    for (size_t d = 0; d < q.size(); ++d) dot += q[d] * k[d];
    s.push_back(scale * dot);
  }
  const double m = *std::max_element(s.begin(), s.end());
  double l = 0.0;
  for (double x : s) l += std::exp(x - m);
  double denominator = l;
  if (sink != nullptr) denominator += std::exp(double(*sink) - m);
  for (size_t t = 0; t < keys.size(); ++t) {
    const double p = round_p(std::exp(s[t] - m), p_dtype);
    for (int64_t d = 0; d < d_v; ++d) row.out[size_t(d)] += p * keys[t][size_t(d)] / denominator;
  }
  row.lse = m + std::log(l);
  row.max_logit = m;
  return row;
}

double load16(const std::vector<uint16_t>& v, int64_t offset, DType dtype) {
  return dtype == DType::kFloat16 ? brute_fp16(v[size_t(offset)]) : brute_bf16(v[size_t(offset)]);
}

}  // namespace

double brute_bf16(uint16_t bits) {
  const uint32_t wide = uint32_t(bits) << 16;
  float f;
  std::memcpy(&f, &wide, 4);
  return f;
}

double brute_fp16(uint16_t bits) {
  const double sign = (bits & 0x8000) ? -1.0 : 1.0;
  const int e = (bits >> 10) & 0x1F;
  const int m = bits & 0x3FF;
  if (e == 31) return m ? std::numeric_limits<double>::quiet_NaN() : sign * kInf;
  if (e == 0) return sign * m * std::pow(2.0, -24);
  return sign * (1.0 + m / 1024.0) * std::pow(2.0, e - 15);
}

double brute_e4m3(uint8_t code) {
  const double sign = (code & 0x80) ? -1.0 : 1.0;
  const int e = (code >> 3) & 0xF;
  const int m = code & 7;
  if (e == 15 && m == 7) return std::numeric_limits<double>::quiet_NaN();
  if (e == 0) return sign * m / 8.0 * std::pow(2.0, -6);
  return sign * (1.0 + m / 8.0) * std::pow(2.0, e - 7);
}

std::vector<double> brute_decode_v32(const uint8_t* token) {
  std::vector<double> x(576);
  for (int d = 0; d < 512; ++d) {
    float scale;
    std::memcpy(&scale, token + 512 + 4 * (d / 128), 4);
    x[size_t(d)] = brute_e4m3(token[d]) * double(scale);  // power-of-two scales: exact
  }
  for (int d = 0; d < 64; ++d) x[size_t(512 + d)] = brute_bf16(uint16_t(token[528 + 2 * d] | token[529 + 2 * d] << 8));
  return x;
}

std::vector<double> brute_decode_model1(const uint8_t* page, int64_t page_block_size, int64_t row) {
  std::vector<double> x(512);
  const uint8_t* data = page + 576 * row;
  const uint8_t* scales = page + 576 * page_block_size + 8 * row;
  for (int d = 0; d < 448; ++d) {
    const uint8_t s = scales[d / 64];
    const double scale = s == 0xFF ? std::numeric_limits<double>::quiet_NaN() : std::pow(2.0, int(s) - 127);
    x[size_t(d)] = brute_e4m3(data[d]) * scale;
  }
  for (int d = 0; d < 64; ++d) x[size_t(448 + d)] = brute_bf16(uint16_t(data[448 + 2 * d] | data[449 + 2 * d] << 8));
  return x;
}

BruteResult brute_dense_decode(const DenseDecodeProblem& p) {
  const DenseDecodeArgs& a = p.args;
  BruteResult r;
  r.out.assign(size_t(a.b * a.s_q * a.h_q * a.d_v), 0.0);
  r.lse.assign(size_t(a.b * a.h_q * a.s_q), 0.0);
  const bool fp8 = a.kv_format == KVFormat::kFp8V32;
  for (int64_t i = 0; i < a.b; ++i) {
    const int64_t length = p.cache_seqlens[size_t(i)];
    for (int64_t h = 0; h < a.h_q; ++h) {
      const int64_t g = h / (a.h_q / a.h_kv);
      std::vector<std::vector<double>> all_keys;
      for (int64_t t = 0; t < length; ++t) {
        const int64_t page = p.block_table[size_t(i * a.stride_block_table_b + t / a.page_block_size)];
        const int64_t row = t % a.page_block_size;
        if (fp8) {
          all_keys.push_back(brute_decode_v32(p.kv.data() + page * a.stride_kv_block + row * a.stride_kv_row));
        } else {
          std::vector<double> k(size_t(a.d_qk));
          const int64_t base = page * a.stride_kv_block + row * a.stride_kv_row + g * a.stride_kv_h;
          for (int64_t d = 0; d < a.d_qk; ++d) {
            uint16_t bits;
            std::memcpy(&bits, p.kv.data() + 2 * (base + d), 2);
            k[size_t(d)] = a.dtype == DType::kFloat16 ? brute_fp16(bits) : brute_bf16(bits);
          }
          all_keys.push_back(k);
        }
      }
      for (int64_t j = 0; j < a.s_q; ++j) {
        const int64_t visible = a.causal ? std::max<int64_t>(0, length - (a.s_q - 1 - j)) : length;
        const std::vector<std::vector<double>> keys(all_keys.begin(), all_keys.begin() + visible);
        std::vector<double> q(size_t(a.d_qk));
        for (int64_t d = 0; d < a.d_qk; ++d)
          q[size_t(d)] = load16(p.q, i * a.stride_q_b + j * a.stride_q_s + h * a.stride_q_h + d, a.dtype);
        const Row row = attend(q, keys, a.d_v, a.softmax_scale, a.dtype, nullptr);
        std::copy(row.out.begin(), row.out.end(), r.out.begin() + ((i * a.s_q + j) * a.h_q + h) * a.d_v);
        r.lse[size_t((i * a.h_q + h) * a.s_q + j)] = row.lse;
      }
    }
  }
  return r;
}

namespace {

void gather_sparse(const std::vector<uint8_t>& kv, KVFormat format, int64_t page_block_size,
                   int64_t num_blocks, int64_t stride_block, const int32_t* indices, int64_t length,
                   std::vector<std::vector<double>>& keys) {
  for (int64_t k = 0; k < length; ++k) {
    const int64_t index = indices[k];
    if (index < 0 || index >= num_blocks * page_block_size) continue;
    const uint8_t* page = kv.data() + (index / page_block_size) * stride_block;
    const int64_t row = index % page_block_size;
    keys.push_back(format == KVFormat::kFp8V32 ? brute_decode_v32(page + 656 * row)
                                               : brute_decode_model1(page, page_block_size, row));
  }
}

int64_t length_of(const std::vector<int32_t>& lengths, int64_t i, int64_t topk) {
  return lengths.empty() ? topk : std::clamp<int64_t>(lengths[size_t(i)], 0, topk);
}

}  // namespace

BruteResult brute_sparse_decode(const SparseDecodeProblem& p) {
  const SparseDecodeArgs& a = p.args;
  BruteResult r;
  r.out.assign(size_t(a.b * a.s_q * a.h_q * a.d_v), 0.0);
  r.lse.assign(size_t(a.b * a.h_q * a.s_q), 0.0);
  for (int64_t i = 0; i < a.b; ++i) {
    for (int64_t j = 0; j < a.s_q; ++j) {
      std::vector<std::vector<double>> keys;
      gather_sparse(p.kv, a.kv_format, a.page_block_size, a.num_blocks, a.stride_kv_block,
                    p.indices.data() + i * a.stride_indices_b + j * a.stride_indices_s,
                    length_of(p.topk_length, i, a.topk), keys);
      if (!p.extra_kv.empty()) {
        gather_sparse(p.extra_kv, a.kv_format, a.extra_page_block_size, a.extra_num_blocks,
                      a.stride_extra_kv_block,
                      p.extra_indices.data() + i * a.stride_extra_indices_b + j * a.stride_extra_indices_s,
                      length_of(p.extra_topk_length, i, a.extra_topk), keys);
      }
      for (int64_t h = 0; h < a.h_q; ++h) {
        std::vector<double> q(size_t(a.d_qk));
        for (int64_t d = 0; d < a.d_qk; ++d)
          q[size_t(d)] = brute_bf16(p.q[size_t(i * a.stride_q_b + j * a.stride_q_s + h * a.stride_q_h + d)]);
        const float* sink = p.attn_sink.empty() ? nullptr : &p.attn_sink[size_t(h)];
        const Row row = attend(q, keys, a.d_v, a.softmax_scale, DType::kBFloat16, sink);
        std::copy(row.out.begin(), row.out.end(), r.out.begin() + ((i * a.s_q + j) * a.h_q + h) * a.d_v);
        r.lse[size_t((i * a.h_q + h) * a.s_q + j)] = row.lse;
      }
    }
  }
  return r;
}

BruteResult brute_sparse_prefill(const SparsePrefillProblem& p, DType p_rounding, bool use_sink) {
  const SparsePrefillArgs& a = p.args;
  BruteResult r;
  r.out.assign(size_t(a.s_q * a.h_q * a.d_v), 0.0);
  r.lse.assign(size_t(a.s_q * a.h_q), 0.0);
  r.max_logits.assign(size_t(a.s_q * a.h_q), 0.0);
  for (int64_t j = 0; j < a.s_q; ++j) {
    for (int64_t h = 0; h < a.h_q; ++h) {
      const int64_t g = h / (a.h_q / a.h_kv);
      const int32_t* indices = p.indices.data() + j * a.stride_indices_s + g * a.stride_indices_h;
      std::vector<std::vector<double>> keys;
      for (int64_t k = 0; k < length_of(p.topk_length, j, a.topk); ++k) {
        if (indices[k] < 0 || indices[k] >= a.s_kv) continue;
        std::vector<double> key(size_t(a.d_qk));
        for (int64_t d = 0; d < a.d_qk; ++d)
          key[size_t(d)] = brute_bf16(p.kv[size_t(indices[k] * a.stride_kv_s + g * a.stride_kv_h + d)]);
        keys.push_back(key);
      }
      std::vector<double> q(size_t(a.d_qk));
      for (int64_t d = 0; d < a.d_qk; ++d) q[size_t(d)] = brute_bf16(p.q[size_t(j * a.stride_q_s + h * a.stride_q_h + d)]);
      const float* sink = (use_sink && !p.attn_sink.empty()) ? &p.attn_sink[size_t(h)] : nullptr;
      const Row row = attend(q, keys, a.d_v, a.softmax_scale, p_rounding, sink);
      std::copy(row.out.begin(), row.out.end(), r.out.begin() + (j * a.h_q + h) * a.d_v);
      r.lse[size_t(j * a.h_q + h)] = row.lse;
      r.max_logits[size_t(j * a.h_q + h)] = row.max_logit;
    }
  }
  return r;
}

}  // namespace flashmla::test
