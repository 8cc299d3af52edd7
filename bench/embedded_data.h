// suite.json and anchors_h100.json, compiled into the binary at configure
// time (embedded_data.cpp.in), so flashmla-bench runs from any directory and
// on a machine that has only the binary. --suite / --anchors read a file instead.
#pragma once

namespace flashmla::bench {

extern const char* const kEmbeddedSuiteJson;
extern const char* const kEmbeddedAnchorsJson;

}  // namespace flashmla::bench
