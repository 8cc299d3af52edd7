// The benchmark built without FlashMLA (no -DFLASHMLA_PEER_SOURCE).
#include "backend.h"

namespace flashmla::bench {

std::unique_ptr<Backend> make_flashmla_backend() { return nullptr; }

}  // namespace flashmla::bench
