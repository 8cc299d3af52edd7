// The FMA-pipe exponential of device/fast_math.cuh (device::exp2_fma, which
// takes one softmax exponential in four) against exp2 in double on an sm_90
// GPU: relative error within 2.5e-7 over [-126, 0] (every integer, both
// sides of it, and a dense grid of fractions), +0 below -126 (the
// softmax's masked logits are -inf), NaN stays NaN. A wrong
// coefficient, a floor off by one at an integer, or a lost NaN fails here.
// Skips without a GPU.
#include <cmath>
#include <cstdint>
#include <vector>

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include "common/gpu.h"
#include "device/fast_math.cuh"

namespace flashmla::device {
namespace {

using flashmla::test::DeviceBuffer;
using flashmla::test::to_device;

__global__ void exp2_fma_kernel(const float* x, float* y, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = exp2_fma(x[i]);
}

std::vector<float> run(const std::vector<float>& x) {
  DeviceBuffer d_x = to_device(x);
  DeviceBuffer d_y(x.size() * sizeof(float));
  const int n = int(x.size());
  exp2_fma_kernel<<<(n + 255) / 256, 256>>>(d_x.as<float>(), d_y.as<float>(), n);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> y(x.size());
  EXPECT_EQ(d_y.download(y), cudaSuccess);
  return y;
}

TEST(GpuFastMath, Exp2FmaWithinEx2ApproxErrorOverTheSoftmaxRange) {
  FLASHMLA_REQUIRE_GPU();
  std::vector<float> x;
  for (int k = -126; k <= 0; ++k) {
    x.push_back(float(k));
    x.push_back(std::nextafter(float(k), -INFINITY));
    if (k < 0) x.push_back(std::nextafter(float(k), INFINITY));
  }
  for (int i = 0; i <= 1 << 20; ++i) x.push_back(-126.0f * float(i) / float(1 << 20));
  for (float v : {-1e-30f, -1e-7f, -0.5f, -0.99999994f}) x.push_back(v);
  const std::vector<float> y = run(x);
  double worst = 0;
  float worst_x = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i] < -126.0f) continue;  // below the normal range: checked as zero below
    const double want = std::exp2(double(x[i]));
    const double rel = std::fabs(double(y[i]) - want) / want;
    if (rel > worst) {
      worst = rel;
      worst_x = x[i];
    }
  }
  EXPECT_LE(worst, 2.5e-7) << "worst at x = " << worst_x;
}

TEST(GpuFastMath, Exp2FmaGivesZeroBelowTheNormalRangeAndKeepsNan) {
  FLASHMLA_REQUIRE_GPU();
  const std::vector<float> x = {-INFINITY, -1e30f, -1000.0f, -127.0f, -126.5f, std::nextafter(-126.0f, -INFINITY), NAN, -NAN};
  const std::vector<float> y = run(x);
  for (size_t i = 0; i + 2 < x.size(); ++i) {
    EXPECT_EQ(y[i], 0.0f) << "x = " << x[i];
    EXPECT_FALSE(std::signbit(y[i])) << "x = " << x[i];
  }
  EXPECT_TRUE(std::isnan(y[x.size() - 2]));
  EXPECT_TRUE(std::isnan(y[x.size() - 1]));
}

}  // namespace
}  // namespace flashmla::device
