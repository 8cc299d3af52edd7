// CPU reference: defines the result of every operation (spec section 2).
//
// Plain C++ (no CUDA), fp64 accumulation, reading the exact bf16/fp16 (or
// dequantized FP8) inputs. Takes the public Args structs with *host*
// pointers, so a test builds one Args and points it at host or device
// copies of the same data.
#pragma once

#include "flashmla/args.h"
#include "flashmla/status.h"

namespace flashmla::ref {

// What lse holds for a row with no valid key. The native API returns -inf
// (the log of an empty sum, which merges correctly in combine); FlashMLA and
// its compatible API return +inf.
enum class EmptyLse : int32_t {
  kNegInf = 0,
  kPosInf = 1,
};

struct Options {
  EmptyLse empty_lse = EmptyLse::kNegInf;
};

// Each returns kInvalidArgument (with a message) for inputs the reference
// cannot evaluate (null pointers, non-positive shapes it needs); it does not
// repeat the library's full validation.
Status dense_decode(const DenseDecodeArgs& args, const Options& options = {});
Status sparse_decode(const SparseDecodeArgs& args, const Options& options = {});
Status sparse_prefill(const SparsePrefillArgs& args, const Options& options = {});
Status combine(const CombineArgs& args, const Options& options = {});

// plan_decode: writes the schedule into args.schedule (host memory of
// workspace_size(args) bytes) with the same pure partition function the GPU
// planner runs.
Status plan_decode(const PlanDecodeArgs& args);

}  // namespace flashmla::ref
