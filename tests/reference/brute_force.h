// An independent fp64 evaluation of the operations, for checking the
// reference: it decodes every input to doubles with its own decoders
// (no flashmla_ref format code), gathers each row's keys directly from the
// problem's tensors, and evaluates the softmax formula of spec section 2.
#pragma once

#include <cstdint>
#include <vector>

#include "common/problems.h"

namespace flashmla::test {

struct BruteResult {
  std::vector<double> out;         // logical out, unrounded
  std::vector<double> lse;         // logical lse; -inf for empty rows
  std::vector<double> max_logits;  // prefill only
};

// How P is rounded before P·V: kBFloat16/kFloat16 as the spec says, or
// kFloat32 for no rounding (used where partial results are merged).
BruteResult brute_dense_decode(const DenseDecodeProblem& problem);
BruteResult brute_sparse_decode(const SparseDecodeProblem& problem);
BruteResult brute_sparse_prefill(const SparsePrefillProblem& problem, DType p_rounding = DType::kBFloat16,
                                 bool use_sink = true);

// Independent decoders.
double brute_bf16(uint16_t bits);
double brute_fp16(uint16_t bits);
double brute_e4m3(uint8_t code);
std::vector<double> brute_decode_v32(const uint8_t* token);
std::vector<double> brute_decode_model1(const uint8_t* page, int64_t page_block_size, int64_t row);

}  // namespace flashmla::test
