// Logical views of strided host tensors: the comparator works on dense
// logical arrays, so padding between rows never takes part in a comparison.
#pragma once

#include <cstdint>
#include <vector>

#include "flashmla/types.h"

namespace flashmla::test {

// Up to 4 dims; the last has stride 1 like every tensor of the API.
struct StridedView {
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;  // in elements, same length as shape
  DType dtype = DType::kFloat32;
  int64_t elements() const;       // product of shape
  int64_t storage() const;        // elements a buffer holding the view needs
};

// Reads every logical element (row-major over shape) as a double; `data`
// holds elements of view.dtype (uint16 bits for bf16/fp16, float for fp32).
std::vector<double> gather(const StridedView& view, const void* data);

// Counts elements of `data` (size storage()) outside the view that are
// not the NaN poison any more: a kernel that wrote into row padding.
int64_t written_padding(const StridedView& view, const void* data);

}  // namespace flashmla::test
