// The path taken when there is no sm_90 GPU: one DeepSeek-shaped decode step
// (dense and sparse FP8) through the CPU reference only, with its figures,
// and a clear note that the kernels need an sm_90 GPU.
#pragma once

#include <string>

#include "report.h"

namespace flashmla::bench {

// `reason` says why the GPU path is not taken. Returns the exit code: 0, or
// 1 when the reference itself reports an error.
int run_cpu_only(const std::string& reason, const RunMeta& meta, const std::string& results_path);

}  // namespace flashmla::bench
