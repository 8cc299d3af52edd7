// Dense decode inputs: a paged pool in random page order, NaN everywhere a
// valid key does not live, garbage page ids in unused block-table slots.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "common/problems.h"
#include "flashmla_ref/fp8_format.h"

namespace flashmla::test {

DenseDecodeProblem make_dense_decode_problem(const DenseDecodeConfig& config) {
  DenseDecodeProblem p;
  p.config = config;
  Rng rng(config.seed);
  DenseDecodeArgs& a = p.args;
  const bool fp8 = config.kv_format == KVFormat::kFp8V32;
  const int64_t pad = config.pad;
  a.b = config.b;
  a.s_q = config.s_q;
  a.h_q = config.h_q;
  a.h_kv = config.h_kv;
  a.d_qk = config.d_qk;
  a.d_v = config.d_v;
  a.page_block_size = config.page_block_size;
  a.dtype = config.dtype;
  a.kv_format = config.kv_format;
  a.causal = config.causal;
  a.softmax_scale = config.softmax_scale != 0.0f ? config.softmax_scale : 1.0f / std::sqrt(float(config.d_qk));

  p.cache_seqlens = config.seqlens;
  if (p.cache_seqlens.empty()) {
    for (int64_t i = 0; i < a.b; ++i) p.cache_seqlens.push_back(int32_t(rng.uniform(0, 300)));
  }
  // Pages: request i needs ceil(len_i / page_block_size); the pool has
  // spare_blocks more, and pages are handed out in a random order so that
  // a kernel ignoring the block table reads NaN.
  std::vector<int64_t> pages_of(size_t(a.b));
  int64_t total_pages = 0, widest = 0;
  for (int64_t i = 0; i < a.b; ++i) {
    pages_of[size_t(i)] = (p.cache_seqlens[size_t(i)] + a.page_block_size - 1) / a.page_block_size;
    total_pages += pages_of[size_t(i)];
    widest = std::max(widest, pages_of[size_t(i)]);
  }
  a.num_blocks = total_pages + config.spare_blocks;
  a.max_blocks_per_seq = std::max<int64_t>(widest + config.spare_table_columns, 1);
  a.stride_block_table_b = a.max_blocks_per_seq + pad;
  std::vector<int32_t> order(size_t(a.num_blocks));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng.engine());
  const std::vector<int32_t> zoo = invalid_page_zoo(a.num_blocks);
  p.block_table.assign(size_t(a.b * a.stride_block_table_b), 0);
  int64_t next_page = 0, next_zoo = 0;
  for (int64_t i = 0; i < a.b; ++i) {
    for (int64_t c = 0; c < a.stride_block_table_b; ++c) {
      p.block_table[size_t(i * a.stride_block_table_b + c)] =
          c < pages_of[size_t(i)] ? order[size_t(next_page++)] : zoo[size_t(next_zoo++ % int64_t(zoo.size()))];
    }
  }

  // q [b, s_q, h_q, d_qk], every dim padded with NaN.
  a.stride_q_h = a.d_qk + pad;
  a.stride_q_s = a.h_q * a.stride_q_h + pad;
  a.stride_q_b = a.s_q * a.stride_q_s + pad;
  p.q.assign(size_t(a.b * a.stride_q_b), kNaN16);
  for (int64_t i = 0; i < a.b; ++i)
    for (int64_t j = 0; j < a.s_q; ++j)
      for (int64_t h = 0; h < a.h_q; ++h)
        for (int64_t d = 0; d < a.d_qk; ++d)
          p.q[size_t(i * a.stride_q_b + j * a.stride_q_s + h * a.stride_q_h + d)] = rng.value_bits(a.dtype);

  // The pool starts as all-NaN; only the keys of valid tokens are written.
  const int64_t element_bytes = fp8 ? 1 : 2;
  if (fp8) {
    a.stride_kv_row = ref::kV32TokenBytes;
    a.stride_kv_h = ref::kV32TokenBytes;
    a.stride_kv_block = a.page_block_size * ref::kV32TokenBytes + 16 * pad;  // tokens stay 16-byte aligned
  } else {
    a.stride_kv_h = a.d_qk + pad;
    a.stride_kv_row = a.h_kv * a.stride_kv_h + pad;
    a.stride_kv_block = a.page_block_size * a.stride_kv_row + pad;
  }
  p.kv.assign(size_t(a.num_blocks * a.stride_kv_block * element_bytes), kNaNByte);
  std::vector<uint16_t> token(size_t(a.d_qk));
  for (int64_t i = 0; i < a.b; ++i) {
    for (int64_t t = 0; t < p.cache_seqlens[size_t(i)]; ++t) {
      const int64_t page = p.block_table[size_t(i * a.stride_block_table_b + t / a.page_block_size)];
      const int64_t row_offset = page * a.stride_kv_block + (t % a.page_block_size) * a.stride_kv_row;
      for (int64_t g = 0; g < a.h_kv; ++g) {
        for (auto& v : token) v = rng.value_bits(fp8 ? DType::kBFloat16 : a.dtype);
        if (fp8) {
          ref::encode_v32_token(token.data(), p.kv.data() + row_offset);
        } else {
          std::memcpy(p.kv.data() + 2 * (row_offset + g * a.stride_kv_h), token.data(), 2 * token.size());
        }
      }
    }
  }

  a.stride_out_h = a.d_v + pad;
  a.stride_out_s = a.h_q * a.stride_out_h + pad;
  a.stride_out_b = a.s_q * a.stride_out_s + pad;
  a.stride_lse_h = a.s_q + pad;
  a.stride_lse_b = a.h_q * a.stride_lse_h + pad;
  return p;
}

StridedView DenseDecodeProblem::out_view() const {
  return {{args.b, args.s_q, args.h_q, args.d_v},
          {args.stride_out_b, args.stride_out_s, args.stride_out_h, 1}, args.dtype};
}

StridedView DenseDecodeProblem::lse_view() const {
  return {{args.b, args.h_q, args.s_q}, {args.stride_lse_b, args.stride_lse_h, 1}, DType::kFloat32};
}

HostOutputs DenseDecodeProblem::make_outputs() const {
  return make_poisoned_outputs(args.b * args.stride_out_b, args.b * args.stride_lse_b);
}

DenseDecodeArgs DenseDecodeProblem::host_args(HostOutputs& outputs) const {
  DenseDecodeArgs a = args;
  a.q = q.data();
  a.kv = kv.data();
  a.block_table = block_table.data();
  a.cache_seqlens = cache_seqlens.data();
  a.out = outputs.out.data();
  a.lse = outputs.lse.data();
  return a;
}

}  // namespace flashmla::test
