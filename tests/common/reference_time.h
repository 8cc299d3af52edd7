// Time spent in the fp64 CPU reference: recorded per test as the gtest
// property "reference_seconds" and printed for the whole binary at its end,
// so a grid that grows past its budget shows up in the logs.
#pragma once

namespace flashmla::test {

void add_reference_time(double seconds);

}  // namespace flashmla::test
