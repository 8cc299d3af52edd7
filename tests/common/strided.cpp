#include "common/strided.h"

#include <cmath>
#include <cstring>

#include "flashmla_ref/numeric.h"

namespace flashmla::test {
namespace {

double element(const void* data, int64_t offset, DType dtype) {
  switch (dtype) {
    case DType::kBFloat16: return ref::bf16_to_float(static_cast<const uint16_t*>(data)[offset]);
    case DType::kFloat16: return ref::fp16_to_float(static_cast<const uint16_t*>(data)[offset]);
    case DType::kFloat32: return static_cast<const float*>(data)[offset];
  }
  return NAN;
}

// Calls fn(logical index, storage offset) for every element of the view.
template <typename Fn>
void for_each(const StridedView& view, Fn fn) {
  const size_t rank = view.shape.size();
  const int64_t total = view.elements();
  std::vector<int64_t> index(rank, 0);
  for (int64_t n = 0; n < total; ++n) {
    int64_t offset = 0;
    for (size_t d = 0; d < rank; ++d) offset += index[d] * view.strides[d];
    fn(n, offset);
    for (size_t d = rank; d-- > 0;) {
      if (++index[d] < view.shape[d]) break;
      index[d] = 0;
    }
  }
}

}  // namespace

int64_t StridedView::elements() const {
  int64_t total = 1;
  for (int64_t extent : shape) total *= extent;
  return total;
}

int64_t StridedView::storage() const {
  if (elements() == 0) return 0;
  int64_t last = 0;
  for (size_t d = 0; d < shape.size(); ++d) last += (shape[d] - 1) * strides[d];
  return last + 1;
}

std::vector<double> gather(const StridedView& view, const void* data) {
  std::vector<double> values(size_t(view.elements()));
  for_each(view, [&](int64_t n, int64_t offset) { values[size_t(n)] = element(data, offset, view.dtype); });
  return values;
}

int64_t written_padding(const StridedView& view, const void* data) {
  std::vector<char> inside(size_t(view.storage()), 0);
  for_each(view, [&](int64_t, int64_t offset) { inside[size_t(offset)] = 1; });
  int64_t written = 0;
  for (size_t offset = 0; offset < inside.size(); ++offset) {
    if (!inside[offset] && !std::isnan(element(data, int64_t(offset), view.dtype))) ++written;
  }
  return written;
}

}  // namespace flashmla::test
