#include "suite.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace flashmla::bench {

const char* to_string(Op op) {
  switch (op) {
    case Op::kDenseDecode: return "dense_decode";
    case Op::kSparseDecode: return "sparse_decode";
    case Op::kSparsePrefill: return "sparse_prefill";
  }
  return "unknown";
}

const char* to_string(LengthMode mode) {
  switch (mode) {
    case LengthMode::kFixed: return "fixed";
    case LengthMode::kVarlen: return "varlen";
    case LengthMode::kSkewed: return "skewed";
  }
  return "unknown";
}

bool parse_op(const std::string& text, Op* op) {
  for (Op o : {Op::kDenseDecode, Op::kSparseDecode, Op::kSparsePrefill}) {
    if (text == to_string(o)) {
      *op = o;
      return true;
    }
  }
  return false;
}

bool parse_length_mode(const std::string& text, LengthMode* mode) {
  for (LengthMode m : {LengthMode::kFixed, LengthMode::kVarlen, LengthMode::kSkewed}) {
    if (text == to_string(m)) {
      *mode = m;
      return true;
    }
  }
  return false;
}

namespace {

bool read_int(const JsonValue& entry, const char* key, int64_t* value, std::string* error) {
  const JsonValue* v = entry.find(key);
  if (v == nullptr) return true;  // optional: keep the default
  if (!v->is_number() || v->as_number() != std::floor(v->as_number())) {
    *error = std::string("field '") + key + "' must be an integer";
    return false;
  }
  *value = int64_t(v->as_number());
  return true;
}

bool read_case(const JsonValue& entry, Op op, Case* c, std::string* error) {
  if (!entry.is_object()) {
    *error = std::string(to_string(op)) + ": every case must be an object";
    return false;
  }
  c->op = op;
  c->name = entry.string_or("name", "");
  c->note = entry.string_or("note", "");
  if (c->name.empty()) {
    *error = std::string(to_string(op)) + ": a case has no name";
    return false;
  }
  if (!read_int(entry, "b", &c->b, error) || !read_int(entry, "s_q", &c->s_q, error) ||
      !read_int(entry, "s_k", &c->s_k, error) || !read_int(entry, "s_kv", &c->s_kv, error) ||
      !read_int(entry, "h_q", &c->h_q, error) || !read_int(entry, "h_kv", &c->h_kv, error) ||
      !read_int(entry, "topk", &c->topk, error) || !read_int(entry, "d_qk", &c->d_qk, error) ||
      !read_int(entry, "d_v", &c->d_v, error)) {
    *error = c->name + ": " + *error;
    return false;
  }
  const std::string lengths = entry.string_or("lengths", "fixed");
  if (!parse_length_mode(lengths, &c->lengths)) {
    *error = c->name + ": unknown lengths mode '" + lengths + "'";
    return false;
  }
  c->causal = entry.bool_or("causal", false);
  const std::string problem = check_case(*c);
  if (!problem.empty()) {
    *error = c->name + ": " + problem;
    return false;
  }
  return true;
}

}  // namespace

bool load_suite(const JsonValue& doc, std::vector<Case>* cases, std::string* error) {
  cases->clear();
  const std::pair<const char*, Op> groups[] = {
      {"dense_decode", Op::kDenseDecode},
      {"sparse_decode_fp8", Op::kSparseDecode},
      {"sparse_prefill", Op::kSparsePrefill},
  };
  for (const auto& [key, op] : groups) {
    const JsonValue* list = doc.find(key);
    if (list == nullptr || !list->is_array()) {
      *error = std::string("suite: missing array '") + key + "'";
      return false;
    }
    for (const JsonValue& entry : list->items()) {
      Case c;
      if (!read_case(entry, op, &c, error)) return false;
      cases->push_back(c);
    }
  }
  return true;
}

std::map<std::string, double> load_flashmla_anchors(const JsonValue& doc) {
  std::map<std::string, double> anchors;
  const JsonValue* cases = doc.find("cases");
  if (cases == nullptr) return anchors;
  for (const auto& [name, peers] : cases->members()) {
    const JsonValue* flashmla = peers.find("flashmla-upstream");
    if (flashmla == nullptr) continue;
    const double us = flashmla->number_or("us", 0.0);
    if (us > 0.0) anchors[name] = us;
  }
  return anchors;
}

std::string check_case(const Case& c) {
  auto positive = [](int64_t v) { return v >= 1; };
  if (!positive(c.s_q) || !positive(c.h_q) || !positive(c.d_qk) || !positive(c.d_v)) {
    return "s_q, h_q, d_qk and d_v must be >= 1";
  }
  if (c.d_v > c.d_qk) return "d_v must not exceed d_qk (V is the first d_v dims of K)";
  if (c.h_q > 4096) return "h_q must be <= 4096";
  constexpr int64_t kMaxIndex = std::numeric_limits<int32_t>::max();
  switch (c.op) {
    case Op::kDenseDecode: {
      if (!positive(c.b) || !positive(c.s_k) || !positive(c.h_kv)) return "b, s_k and h_kv must be >= 1";
      if (c.h_q % c.h_kv != 0) return "h_q must be a multiple of h_kv";
      if (c.topk != 0 || c.s_kv != 0) return "dense decode takes no topk / s_kv";
      const int64_t longest =
          std::max<int64_t>(c.lengths == LengthMode::kSkewed ? c.skewed_first_length : 0, 2 * c.s_k);
      if (c.b * (longest / kPageBlockSize + 1) >= kMaxIndex) return "too many pages for int32 page ids";
      if (c.fp8_kv && (c.d_qk != 576 || c.d_v != 512 || c.h_kv != 1)) {
        return "the V32 FP8 cache holds d_qk 576, d_v 512 and one KV head";
      }
      return "";
    }
    case Op::kSparseDecode:
      if (!positive(c.b) || !positive(c.s_k) || !positive(c.topk)) return "b, s_k and topk must be >= 1";
      if (c.d_qk != 576 || c.d_v != 512) return "sparse decode uses the V32 FP8 cache: d_qk 576, d_v 512";
      if (c.topk > c.s_k) return "topk must not exceed s_k (indices are distinct)";
      if (c.h_kv != 1) return "sparse decode has one KV head";
      if (c.causal) return "causal is not allowed with sparse attention";
      if (c.lengths != LengthMode::kFixed) return "sparse decode requests all hold s_k tokens (lengths fixed)";
      if (c.b * ((c.s_k + kPageBlockSize - 1) / kPageBlockSize) * kPageBlockSize >= kMaxIndex) {
        return "the cache is too large for int32 indices";
      }
      return "";
    case Op::kSparsePrefill:
      if (!positive(c.s_kv) || !positive(c.topk)) return "s_kv and topk must be >= 1";
      if (c.topk > c.s_kv) return "topk must not exceed s_kv (indices are distinct)";
      if (c.h_kv != 1) return "sparse prefill has one KV head";
      if (c.causal) return "causal is not allowed with sparse attention";
      if (c.s_kv >= kMaxIndex) return "s_kv too large for int32 indices";
      return "";
  }
  return "unknown op";
}

std::vector<int32_t> request_lengths(const Case& c) {
  std::vector<int32_t> lengths(size_t(std::max<int64_t>(c.b, 0)));
  // frac((i + 1) * golden ratio conjugate) spreads the lengths evenly over
  // 0.25x .. 1.75x of s_k with no clumping, whatever b is.
  constexpr double kGolden = 0.6180339887498949;
  for (int64_t i = 0; i < c.b; ++i) {
    int64_t len = c.s_k;
    if (c.op == Op::kDenseDecode && c.lengths == LengthMode::kVarlen) {
      const double x = double(i + 1) * kGolden;
      const double frac = x - std::floor(x);
      len = std::max<int64_t>(c.s_q, int64_t(std::floor(double(c.s_k) * (0.25 + 1.5 * frac))));
    } else if (c.op == Op::kDenseDecode && c.lengths == LengthMode::kSkewed && i == 0) {
      len = c.skewed_first_length;
    }
    lengths[size_t(i)] = int32_t(len);
  }
  return lengths;
}

namespace {

double sum_lengths(const Case& c) {
  double sum = 0.0;
  for (int32_t len : request_lengths(c)) sum += double(len);
  return sum;
}

int64_t pages_for(int64_t tokens) { return (tokens + kPageBlockSize - 1) / kPageBlockSize; }

}  // namespace

double case_flops(const Case& c) {
  const double per_key = 2.0 * double(c.s_q) * double(c.h_q) * double(c.d_qk + c.d_v);
  switch (c.op) {
    case Op::kDenseDecode: return per_key * sum_lengths(c);  // = 2 b s_q h_q (d_qk + d_v) mean(len)
    case Op::kSparseDecode: return per_key * double(c.b) * double(c.topk);
    case Op::kSparsePrefill: return per_key * double(c.topk);
  }
  return 0.0;
}

double case_bytes(const Case& c) {
  switch (c.op) {
    case Op::kDenseDecode:
      return 2.0 * double(c.b) * double(c.s_q) * double(c.h_q) * double(c.d_qk + c.d_v) +
             (c.fp8_kv ? double(kV32TokenBytes) : 2.0 * double(c.d_qk) * double(c.h_kv)) * sum_lengths(c);
    case Op::kSparseDecode:
      return double(kV32TokenBytes) * double(c.b) * double(c.s_q) * double(c.topk) +
             2.0 * double(c.b) * double(c.s_q) * double(c.h_q) * double(c.d_qk + c.d_v);
    case Op::kSparsePrefill: return 0.0;  // suite.md: not reported
  }
  return 0.0;
}

int64_t kv_pool_bytes(const Case& c) {
  switch (c.op) {
    case Op::kDenseDecode: {
      int64_t pages = 0;
      for (int32_t len : request_lengths(c)) pages += pages_for(len);
      return std::max<int64_t>(pages, 1) * kPageBlockSize * (c.fp8_kv ? kV32TokenBytes : c.h_kv * c.d_qk * 2);
    }
    case Op::kSparseDecode:
      return c.b * pages_for(c.s_k) * kPageBlockSize * kV32TokenBytes;
    case Op::kSparsePrefill: return c.s_kv * c.h_kv * c.d_qk * 2;
  }
  return 0;
}

int64_t num_kv_pools(int64_t pool_bytes) {
  constexpr int64_t kColdBytes = int64_t(256) << 20;  // 256 MiB: well past the 50 MiB L2
  const int64_t pools = pool_bytes > 0 ? (kColdBytes + pool_bytes - 1) / pool_bytes : 1;
  return std::min<int64_t>(61, std::max<int64_t>(1, pools));
}

namespace {

// Multiply-adds the fp64 reference performs, about: every (query row, key)
// pair costs d_qk + d_v. The reference spreads rows over the cores at about
// 1e9 per core per second, so 4e9 is a fraction of a second on the 16-core
// GPU machine (and it runs on a host thread while the GPU times the case).
constexpr double kReferenceBudget = 4.0e9;

double reference_cost(const Case& c) { return case_flops(c) / 2.0; }

// The host generates the reduced KV pool: at most 32 MiB of bf16 (16 Mi
// values, a fraction of a second over the cores).
constexpr int64_t kMaxHostKvBytes = int64_t(32) << 20;

int64_t halve_topk(int64_t topk) { return std::max<int64_t>(64, topk / 2 / 64 * 64); }

}  // namespace

Case reduced_for_verification(const Case& c) {
  Case r = c;
  switch (c.op) {
    case Op::kDenseDecode:
      // Fewer requests first (down to 16: the schedule still packs several
      // requests per worker), then shorter contexts (down to 1024: still
      // split over workers), then both further. A skewed batch keeps a
      // first request 8x longer than the others.
      while (reference_cost(r) > kReferenceBudget || kv_pool_bytes(r) > kMaxHostKvBytes) {
        if (r.b > 16) {
          r.b = (r.b + 1) / 2;
        } else if (r.s_k > 1024) {
          r.s_k /= 2;
        } else if (r.b > 2) {
          r.b = (r.b + 1) / 2;
        } else if (r.s_k > 64 && r.s_k / 2 >= r.s_q) {
          r.s_k /= 2;
        } else {
          break;
        }
        if (r.lengths == LengthMode::kSkewed) {
          r.skewed_first_length = std::min(c.skewed_first_length, 8 * r.s_k);
        }
      }
      break;
    case Op::kSparseDecode:
      // At most 8 requests (their caches are generated and FP8-encoded on
      // the host), then topk down to DeepSeek's 2048, then both further.
      r.b = std::min<int64_t>(r.b, 8);
      while (reference_cost(r) > kReferenceBudget) {
        if (r.b > 8) {
          r.b = (r.b + 1) / 2;
        } else if (r.topk > 2048) {
          r.topk = halve_topk(r.topk);
        } else if (r.b > 1) {
          r.b = (r.b + 1) / 2;
        } else if (r.topk > 64) {
          r.topk = halve_topk(r.topk);
        } else {
          break;
        }
      }
      // A cache twice topk or more keeps the picks spread over many pages.
      r.s_k = std::min(c.s_k, std::max<int64_t>(2 * r.topk, 2048));
      break;
    case Op::kSparsePrefill:
      // Fewer query tokens (down to 8), then topk down to 128, then fewer tokens still.
      while (reference_cost(r) > kReferenceBudget) {
        if (r.s_q > 8) {
          r.s_q = (r.s_q + 1) / 2;
        } else if (r.topk > 128) {
          r.topk = halve_topk(r.topk);
        } else if (r.s_q > 1) {
          r.s_q = (r.s_q + 1) / 2;
        } else {
          break;
        }
      }
      r.s_kv = std::min(c.s_kv, std::max<int64_t>(4 * r.topk, 2048));
      break;
  }
  return r;
}

std::string shape_string(const Case& c) {
  auto s = [](int64_t v) { return std::to_string(v); };
  std::string out;
  switch (c.op) {
    case Op::kDenseDecode:
      out = "b" + s(c.b) + " sq" + s(c.s_q) + " sk" + s(c.s_k) + " h" + s(c.h_q);
      if (c.h_kv != 1) out += " hkv" + s(c.h_kv);
      out += std::string(" ") + to_string(c.lengths);
      if (c.lengths == LengthMode::kSkewed) out += "(" + s(c.skewed_first_length) + ")";
      if (c.causal) out += " causal";
      break;
    case Op::kSparseDecode:
      out = "b" + s(c.b) + " sq" + s(c.s_q) + " sk" + s(c.s_k) + " h" + s(c.h_q) + " topk" + s(c.topk);
      break;
    case Op::kSparsePrefill:
      out = "sq" + s(c.s_q) + " skv" + s(c.s_kv) + " h" + s(c.h_q) + " topk" + s(c.topk);
      break;
  }
  if (c.d_qk != 576) out += " d" + s(c.d_qk);
  return out;
}

}  // namespace flashmla::bench
