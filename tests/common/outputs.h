// Host output buffers of one run, and NaN poisoning of outputs: an element
// a kernel forgets to write stays NaN and fails the anomaly map.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "common/random_values.h"

namespace flashmla::test {

struct HostOutputs {
  std::vector<uint16_t> out;      // bf16/fp16 bits (fp32 outputs are not used by these problems)
  std::vector<float> lse;
  std::vector<float> max_logits;  // sparse prefill only
};

inline void poison(std::vector<uint16_t>& values) { values.assign(values.size(), kNaN16); }
inline void poison(std::vector<float>& values) {
  values.assign(values.size(), std::numeric_limits<float>::quiet_NaN());
}
inline void poison(HostOutputs& outputs) {
  poison(outputs.out);
  poison(outputs.lse);
  poison(outputs.max_logits);
}

// Poisoned outputs of the given sizes (elements, strides' padding included).
inline HostOutputs make_poisoned_outputs(int64_t out_elements, int64_t lse_elements,
                                         int64_t max_logits_elements = 0) {
  HostOutputs outputs;
  outputs.out.resize(size_t(out_elements));
  outputs.lse.resize(size_t(lse_elements));
  outputs.max_logits.resize(size_t(max_logits_elements));
  poison(outputs);
  return outputs;
}

}  // namespace flashmla::test
