// The benchmark cases (suite.json), FlashMLA's anchor times, and the
// per-case figures of suite.md: request lengths, FLOPs, bytes, the number of
// KV pools, and the reduced shape the CPU reference verifies.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "json.h"

namespace flashmla::bench {

enum class Op { kDenseDecode, kSparseDecode, kSparsePrefill };
enum class LengthMode { kFixed, kVarlen, kSkewed };

const char* to_string(Op op);
const char* to_string(LengthMode mode);
bool parse_op(const std::string& text, Op* op);
bool parse_length_mode(const std::string& text, LengthMode* mode);

constexpr int64_t kPageBlockSize = 64;
constexpr int64_t kV32TokenBytes = 656;
// suite.md: the first request of a "skewed" batch has 65536 tokens.
constexpr int64_t kSkewedFirstLength = 65536;

// One workload. Fields an operation does not use stay at their defaults.
struct Case {
  std::string name;  // "D01", or "custom"
  std::string note;
  Op op = Op::kDenseDecode;
  int64_t b = 1;       // decode only
  int64_t s_q = 1;
  int64_t s_k = 0;     // decode: the nominal request length
  int64_t s_kv = 0;    // prefill only
  int64_t h_q = 128;
  int64_t h_kv = 1;    // dense decode only (sparse ops have one KV head)
  int64_t topk = 0;    // sparse only
  int64_t d_qk = 576;
  int64_t d_v = 512;
  LengthMode lengths = LengthMode::kFixed;
  bool causal = false;
  // Length of request 0 of a skewed batch; the reduced verification shape
  // scales it down with s_k.
  int64_t skewed_first_length = kSkewedFirstLength;
  // Dense decode over an FP8 cache in the V32 layout (--fp8-kv): the same
  // bf16 values, encoded as sparse decode's cache is.
  bool fp8_kv = false;
};

// Whether the case's KV pool is a V32 FP8 cache (656 bytes a token).
inline bool v32_pool(const Case& c) { return c.op == Op::kSparseDecode || (c.op == Op::kDenseDecode && c.fp8_kv); }

// Parses the document of suite.json into cases, in file order.
bool load_suite(const JsonValue& doc, std::vector<Case>* cases, std::string* error);

// FlashMLA's time per case in microseconds (the anchors' "flashmla-upstream"
// "us"), keyed by case name.
std::map<std::string, double> load_flashmla_anchors(const JsonValue& doc);

// Checks a case's shape (custom shapes come from flags); "" when fine.
std::string check_case(const Case& c);

// Request lengths per suite.md (decode ops; sparse decode requests hold s_k tokens).
std::vector<int32_t> request_lengths(const Case& c);

// suite.md figures. Prefill has no byte count (returns 0).
double case_flops(const Case& c);
double case_bytes(const Case& c);

// Bytes of one KV pool (what each layer reads from): the paged bf16 cache,
// the FP8 V32 cache, or the prefill kv.
int64_t kv_pool_bytes(const Case& c);
// L = min(61, max(1, ceil(256 MiB / pool_bytes))).
int64_t num_kv_pools(int64_t pool_bytes);

// The same shape family made small enough for the fp64 CPU reference to run
// in about a second: fewer requests / query tokens, shorter contexts, a
// smaller topk. Head counts, s_q of decode, causality and the length mode
// are kept.
Case reduced_for_verification(const Case& c);

// "b128 sq1 sk4096 h128 varlen" and the like.
std::string shape_string(const Case& c);

}  // namespace flashmla::bench
