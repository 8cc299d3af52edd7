// The FP8 dequantization of device/fp8_dequant.cuh, bit for bit against the
// reference's bf16(bf16(fp8) * bf16(scale)) on an sm_90 GPU: every e4m3 code
// (subnormals, both zeros, the largest codes; NaN codes are documented to
// read as 480) under fp32 scales from bf16 subnormals to beyond 2^8 and
// every UE8M0 scale byte, through both the one-multiply path (factor =
// bf16(scale) * 2^120) and the two-multiply path for wide scales. A bf16
// multiply that flushed subnormal inputs or outputs, or a factor that
// overflowed, fails here. Skips without a GPU.
#include <cmath>
#include <cstdint>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include "common/gpu.h"
#include "device/fp8_dequant.cuh"
#include "flashmla_ref/numeric.h"

namespace flashmla::device {
namespace {

using flashmla::test::DeviceBuffer;
using flashmla::test::to_device;

constexpr int kWords = 64;  // the 256 codes, four per word

// One block per scale, one thread per word: out[scale][word][0..1] for
// the narrow path (written only where the scale is narrow) and wide[...].
__global__ void dequant_fp32_scales_kernel(const uint32_t* words, const float* scales, uint32_t* narrow,
                                           uint32_t* wide, uint8_t* is_narrow) {
  const int w = threadIdx.x;
  const int s = blockIdx.x;
  const __nv_bfloat162 scale = fp32_scale_to_bf16x2(scales[s]);
  const int64_t at = (int64_t(s) * kWords + w) * 2;
  if (w == 0) is_narrow[s] = scale_is_narrow(scale) ? 1 : 0;
  if (scale_is_narrow(scale)) dequant_e4m3x4(words[w], scale_factor_bf16x2(scale), narrow + at);
  dequant_e4m3x4_wide(words[w], scale, wide + at);
}

// One block per UE8M0 byte, as the sparse decode producer uses it: the
// factor path for bytes up to kUe8m0MaxNarrowByte (which must agree with
// scale_is_narrow), the wide path for every byte.
__global__ void dequant_ue8m0_kernel(const uint32_t* words, uint32_t* narrow, uint32_t* wide, uint8_t* is_narrow) {
  const int w = threadIdx.x;
  const uint32_t byte = blockIdx.x;
  const int64_t at = (int64_t(byte) * kWords + w) * 2;
  const __nv_bfloat162 scale = ue8m0_to_bf16x2(byte);
  if (w == 0) is_narrow[byte] = scale_is_narrow(scale) ? 1 : 0;
  if (byte <= kUe8m0MaxNarrowByte) dequant_e4m3x4(words[w], scale_factor_bf16x2(scale), narrow + at);
  dequant_e4m3x4_wide(words[w], scale, wide + at);
}

std::vector<uint32_t> all_codes() {
  std::vector<uint32_t> words(kWords);
  for (int w = 0; w < kWords; ++w) {
    words[w] = uint32_t(4 * w) | uint32_t(4 * w + 1) << 8 | uint32_t(4 * w + 2) << 16 | uint32_t(4 * w + 3) << 24;
  }
  return words;
}

// The reference's dequantized bf16 of `code` under `scale` (NaN codes:
// the documented 480, keeping the sign).
uint16_t expected_bits(uint8_t code, float scale) {
  const float scale_bf16 = ref::bf16_to_float(ref::float_to_bf16(scale));
  float x = ref::bf16_to_float(ref::float_to_bf16(ref::e4m3_to_float(code)));
  if ((code & 0x7F) == 0x7F) x = (code & 0x80) ? -480.0f : 480.0f;
  return ref::float_to_bf16(x * scale_bf16);
}

bool same_bf16(uint16_t got, uint16_t want) {
  const bool got_nan = std::isnan(ref::bf16_to_float(got));
  const bool want_nan = std::isnan(ref::bf16_to_float(want));
  return got_nan || want_nan ? got_nan == want_nan : got == want;
}

// Compares one path's output (two bf16 per pair word, dims in order) with the
// reference for the given scale.
void expect_codes(const std::vector<uint32_t>& out, int64_t scale_index, float scale, const char* path) {
  for (int code = 0; code < 256; ++code) {
    const uint32_t word = out[size_t(scale_index * kWords * 2 + code / 2)];
    const uint16_t got = uint16_t(code % 2 == 0 ? word & 0xFFFFu : word >> 16);
    const uint16_t want = expected_bits(uint8_t(code), scale);
    ASSERT_TRUE(same_bf16(got, want)) << path << " path, scale " << scale << ", code 0x" << std::hex << code
                                      << ": got bf16 0x" << got << ", want 0x" << want;
  }
}

TEST(GpuFp8Dequant, EveryCodeUnderFp32ScalesBitExact) {
  FLASHMLA_REQUIRE_GPU();
  std::vector<float> scales;
  for (int e = -140; e <= 7; ++e) scales.push_back(std::ldexp(1.0f, e));  // bf16 subnormal .. 2^7
  for (float s : {0.0f, -0.0f, 1.37f, 3.0e-5f, 0.11f, 200.0f, 255.0f, 255.9f, -2.5f, 1.0e-39f, 0x1.fep-127f}) {
    scales.push_back(s);
  }
  for (float s : {256.0f, 1000.0f, 1.0e30f, INFINITY, NAN}) scales.push_back(s);  // wide: two multiplies
  const std::vector<uint32_t> words = all_codes();
  DeviceBuffer d_words = to_device(words);
  DeviceBuffer d_scales = to_device(scales);
  const size_t n = scales.size() * kWords * 2;
  DeviceBuffer d_narrow(n * sizeof(uint32_t)), d_wide(n * sizeof(uint32_t)), d_is_narrow(scales.size());
  dequant_fp32_scales_kernel<<<unsigned(scales.size()), kWords>>>(
      d_words.as<uint32_t>(), d_scales.as<float>(), d_narrow.as<uint32_t>(), d_wide.as<uint32_t>(),
      d_is_narrow.as<uint8_t>());
  FLASHMLA_ASSERT_CUDA(cudaGetLastError());
  FLASHMLA_ASSERT_CUDA(cudaDeviceSynchronize());
  std::vector<uint32_t> narrow(n), wide(n);
  std::vector<uint8_t> is_narrow(scales.size());
  FLASHMLA_ASSERT_CUDA(d_narrow.download(narrow));
  FLASHMLA_ASSERT_CUDA(d_wide.download(wide));
  FLASHMLA_ASSERT_CUDA(d_is_narrow.download(is_narrow));
  for (size_t s = 0; s < scales.size(); ++s) {
    const float rounded = ref::bf16_to_float(ref::float_to_bf16(scales[s]));
    const bool want_narrow = std::fabs(rounded) < 256.0f;  // false for NaN
    ASSERT_EQ(is_narrow[s] != 0, want_narrow) << "scale " << scales[s];
    if (want_narrow) expect_codes(narrow, int64_t(s), scales[s], "one-multiply");
    expect_codes(wide, int64_t(s), scales[s], "two-multiply");
  }
}

TEST(GpuFp8Dequant, EveryCodeUnderEveryUe8m0ByteBitExact) {
  FLASHMLA_REQUIRE_GPU();
  const std::vector<uint32_t> words = all_codes();
  DeviceBuffer d_words = to_device(words);
  const size_t n = size_t(256) * kWords * 2;
  DeviceBuffer d_narrow(n * sizeof(uint32_t)), d_wide(n * sizeof(uint32_t)), d_is_narrow(256);
  dequant_ue8m0_kernel<<<256, kWords>>>(d_words.as<uint32_t>(), d_narrow.as<uint32_t>(), d_wide.as<uint32_t>(),
                                        d_is_narrow.as<uint8_t>());
  FLASHMLA_ASSERT_CUDA(cudaGetLastError());
  FLASHMLA_ASSERT_CUDA(cudaDeviceSynchronize());
  std::vector<uint32_t> narrow(n), wide(n);
  std::vector<uint8_t> is_narrow(256);
  FLASHMLA_ASSERT_CUDA(d_narrow.download(narrow));
  FLASHMLA_ASSERT_CUDA(d_wide.download(wide));
  FLASHMLA_ASSERT_CUDA(d_is_narrow.download(is_narrow));
  for (int byte = 0; byte < 256; ++byte) {
    // The producer's byte test (token_scales_narrow) and scale_is_narrow agree.
    ASSERT_EQ(is_narrow[byte] != 0, byte <= int(kUe8m0MaxNarrowByte)) << "UE8M0 byte " << byte;
    const float scale = ref::ue8m0_to_float(uint8_t(byte));
    if (byte <= int(kUe8m0MaxNarrowByte)) expect_codes(narrow, byte, scale, "one-multiply");
    expect_codes(wide, byte, scale, "two-multiply");
  }
}

}  // namespace
}  // namespace flashmla::device
