// The value generator of suite.md, one definition for the host and the GPU:
// element `index` of stream `stream` is N(0, 1) / 10 clamped to [-1, 1] and
// rounded to bf16. Counter-based (a hash of stream and index, no state), so
// any element can be produced anywhere, in any order, by any thread, and the
// host copy of a tensor is bit-identical to the GPU copy.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define FLASHMLA_BENCH_HD __host__ __device__
#else
#define FLASHMLA_BENCH_HD
#endif

namespace flashmla::bench {

// Streams: one per tensor, so that q, each KV pool and the GEMM operands of
// the ceiling measurement never share values.
constexpr uint64_t kStreamQ = 1;
constexpr uint64_t kStreamGemm = 2;
constexpr uint64_t kStreamKvPool0 = 1000;  // pool p uses kStreamKvPool0 + p

// splitmix64's finalizer: a bijection on 64 bits with full avalanche.
FLASHMLA_BENCH_HD inline uint64_t mix64(uint64_t z) {
  z ^= z >> 30;
  z *= 0xBF58476D1CE4E5B9ull;
  z ^= z >> 27;
  z *= 0x94D049BB133111EBull;
  z ^= z >> 31;
  return z;
}

FLASHMLA_BENCH_HD inline uint16_t float_to_bf16_bits(float value) {
#if defined(__CUDA_ARCH__)
  const uint32_t u = __float_as_uint(value);
#else
  uint32_t u = 0;
  std::memcpy(&u, &value, sizeof(u));
#endif
  // Round to nearest even; the generator never makes NaN or inf.
  return uint16_t((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

FLASHMLA_BENCH_HD inline float bf16_bits_to_float(uint16_t bits) {
  const uint32_t u = uint32_t(bits) << 16;
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f = 0.0f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
#endif
}

// Products and sums that the device compiler must not fuse into an FMA
// (the host does not), so that both sides round identically.
FLASHMLA_BENCH_HD inline double mul_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

FLASHMLA_BENCH_HD inline double add_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}

// Marsaglia's polar method in fp64: attempt k hashes (stream, index, k) into
// a point (u, v) of the square (-1, 1)^2 and accepts it inside the unit disc
// (78.5% of attempts; 1.27 on average). No trigonometry, so the GPU code has
// no slow argument-reduction path; fp64 and unfused arithmetic make the host
// and GPU agree after the rounding to bf16 (they could only differ when the
// fp64 value sits within an ulp of a bf16 rounding boundary).
FLASHMLA_BENCH_HD inline uint16_t normal_bf16(uint64_t stream, uint64_t index) {
  constexpr double kInv2Pow31 = 1.0 / 2147483648.0;
  const uint64_t base = mix64(stream * 0x9E3779B97F4A7C15ull + 0x5EED) ^ (index * 0xD1B54A32D192ED03ull);
  double z = 0.0;
  for (uint64_t attempt = 0;; ++attempt) {
    const uint64_t h = mix64(base + attempt * 0xA0761D6478BD642Full);
    // Odd numerators keep u and v off 0 and +-1: both in (-1, 1).
    const double u = add_rn(double(h >> 32) * kInv2Pow31, kInv2Pow31 * 0.5 - 1.0);
    const double v = add_rn(double(h & 0xFFFFFFFFull) * kInv2Pow31, kInv2Pow31 * 0.5 - 1.0);
    const double s = add_rn(mul_rn(u, u), mul_rn(v, v));
    if (s < 1.0 && s > 0.0) {
      z = mul_rn(u, sqrt(-2.0 * log(s) / s));
      break;
    }
  }
  double x = z / 10.0;
  x = x > 1.0 ? 1.0 : (x < -1.0 ? -1.0 : x);
  return float_to_bf16_bits(float(x));
}

}  // namespace flashmla::bench
