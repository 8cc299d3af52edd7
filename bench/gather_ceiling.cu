// flashmla-gather-ceiling: how fast can this GPU gather the sparse cases'
// rows at all, with no arithmetic? suite.md's roofline divides bytes by a
// 2 GiB contiguous copy; sparse decode reads 656-byte FP8 tokens at random
// positions of a paged pool (HBM), sparse prefill 1152-byte bf16 rows at
// random positions of a 37.7 MB kv (mostly L2). Same pools, pages and index
// distributions as the suite (suite.md "Workload generators"), each row read
// by
//   ldg:  4 lanes per row, 16-byte `ld.global.nc` (the decode kernels' load)
//         with cache hint H, C CTAs of 256 threads per SM, and with an L2
//         prefetch A rows ahead (A > 0);
//   bulk: one `cp.async.bulk` (TMA engine) per row, issued by W warps, into a
//         shared-memory ring of R stages of 64 rows, C CTAs per SM;
// and, for scale, ldg over as many rows in address order (a contiguous
// read). GB/s count the bytes of every gathered row, as suite.md does.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <cuda_runtime_api.h>

#include "device/global_load.cuh"
#include "device/mbarrier.cuh"
#include "device/smem_address.cuh"

namespace {

constexpr int kDecodeTokenBytes = 656;   // V32: 512 e4m3 + 4 fp32 scales + 64 bf16
constexpr int kPrefillRowBytes = 1152;   // 576 bf16
constexpr int kPageSize = 64;
constexpr int kBlockTokens = 64;

#define CHECK_CUDA(expr)                                                                   \
  do {                                                                                     \
    cudaError_t err_ = (expr);                                                             \
    if (err_ != cudaSuccess) {                                                             \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, cudaGetErrorString(err_)); \
      return 1;                                                                            \
    }                                                                                      \
  } while (0)

// 16 bytes, `ld.global.nc`, with the cache hints under test:
//   0: L1::evict_last.L2::256B (the kernels' load), 1: L1::evict_last,
//   2: L1::evict_last.L2::128B, 3: L1::no_allocate.
template <int kHint>
__device__ __forceinline__ uint4 load_16b(const char* ptr) {
  uint4 v;
  if constexpr (kHint == 0) {
    asm volatile("ld.global.nc.L1::evict_last.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(ptr));
  } else if constexpr (kHint == 1) {
    asm volatile("ld.global.nc.L1::evict_last.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(ptr));
  } else if constexpr (kHint == 2) {
    asm volatile("ld.global.nc.L1::evict_last.L2::128B.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(ptr));
  } else {
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(ptr));
  }
  return v;
}

// Lane quarter q of a row reads its 16-byte chunks q, q + 4, ...
// ptxas consumes each load soon after issuing it (to stay near 40
// registers) whatever the source order, so the bytes in flight are set by
// the threads per SM: C CTAs of 256 threads. kAhead > 0: lane quarter 0 also
// prefetches into L2 (`cp.async.bulk.prefetch.L2`, as the small-head kernel
// does) the token kAhead iterations ahead.
template <int kRowBytes, int kHint, int kAhead>
__global__ void __launch_bounds__(256) gather_ldg(const char* pool, int token_bytes, const int32_t* tokens,
                                                  int64_t num_tokens, uint32_t* sink) {
  static_assert(kRowBytes % 16 == 0, "16-byte chunks");
  constexpr int kChunks = kRowBytes / 16;
  const int q = threadIdx.x % 4;
  const int64_t groups = int64_t(gridDim.x) * blockDim.x / 4;
  uint32_t acc = 0;
  for (int64_t t = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 4; t < num_tokens; t += groups) {
    if constexpr (kAhead > 0) {
      const int64_t ahead = t + kAhead * groups;
      if (q == 0 && ahead < num_tokens) {
        flashmla::device::prefetch_l2_bulk(pool + int64_t(tokens[ahead]) * token_bytes, token_bytes);
      }
    }
    const char* token = pool + int64_t(tokens[t]) * token_bytes;
#pragma unroll
    for (int c = 0; c < (kChunks + 3) / 4; ++c) {
      const int chunk = q + 4 * c;
      if (chunk < kChunks) {
        const uint4 v = load_16b<kHint>(token + 16 * chunk);
        acc ^= v.x ^ v.y ^ v.z ^ v.w;
      }
    }
  }
  sink[int64_t(blockIdx.x) * blockDim.x + threadIdx.x] = acc;
}

// kWarps warps per CTA issue one `cp.async.bulk` per token of each 64-token
// block into the block's stage of a ring; a stage is reused once the copies
// of its previous block landed.
template <int kStages, int kWarps>
__global__ void __launch_bounds__(32 * kWarps) gather_bulk(const char* pool, int token_bytes, const int32_t* tokens,
                                                           int64_t num_blocks, uint32_t* sink) {
  extern __shared__ __align__(128) char ring[];
  __shared__ uint64_t full[kStages];
  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) flashmla::device::mbarrier_init(&full[s], 1);
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();
  int64_t item = 0;
  for (int64_t blk = blockIdx.x; blk < num_blocks; blk += gridDim.x, ++item) {
    const int stage = int(item % kStages);
    if (item >= kStages) flashmla::device::mbarrier_wait_parity(&full[stage], uint32_t((item / kStages - 1) & 1));
    if (threadIdx.x == 0) flashmla::device::mbarrier_arrive_expect_tx(&full[stage], kBlockTokens * token_bytes);
#pragma unroll
    for (int row = threadIdx.x; row < kBlockTokens; row += 32 * kWarps) {
      const char* src = pool + int64_t(tokens[blk * kBlockTokens + row]) * token_bytes;
      const uint32_t dst = flashmla::device::smem_address(ring + (stage * kBlockTokens + row) * token_bytes);
      asm volatile(
          "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(dst),
          "l"(src), "r"(token_bytes), "r"(flashmla::device::smem_address(&full[stage]))
          : "memory");
    }
  }
  // Drain: the last kStages blocks' copies.
  for (int64_t k = (item > kStages ? item - kStages : 0); k < item; ++k) {
    flashmla::device::mbarrier_wait_parity(&full[k % kStages], uint32_t((k / kStages) & 1));
  }
  if (threadIdx.x == 0) sink[blockIdx.x] = *reinterpret_cast<const uint32_t*>(ring);
}

// A gather: rows of `row_bytes` from a pool of `pool_rows`, in the order of
// `rows` (64-row blocks, as the kernels walk them).
struct Gather {
  std::string name;
  int row_bytes = 0;
  int64_t pool_rows = 0;
  std::vector<int32_t> rows;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <typename Launch>
int time_us(Launch launch, int reps, double* us) {
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  launch();  // warm
  CHECK_CUDA(cudaGetLastError());
  std::vector<double> runs;
  for (int r = 0; r < reps; ++r) {
    CHECK_CUDA(cudaEventRecord(start));
    launch();
    CHECK_CUDA(cudaEventRecord(stop));
    CHECK_CUDA(cudaEventSynchronize(stop));
    float ms = 0.f;
    CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
    runs.push_back(ms * 1000.0);
  }
  CHECK_CUDA(cudaGetLastError());
  *us = median(runs);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return 0;
}

// The suite's sparse decode indices: per (request, query token) `topk`
// distinct positions of [0, s_k), through a random page permutation.
Gather decode_gather(const char* name, int b, int s_q, int s_k, int topk) {
  const int pages_per_req = (s_k + kPageSize - 1) / kPageSize;
  Gather g{name, kDecodeTokenBytes, int64_t(b) * pages_per_req * kPageSize, {}};
  std::mt19937_64 rng(20261128);
  std::vector<int32_t> perm(int64_t(b) * pages_per_req);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  std::vector<int32_t> positions(s_k);
  g.rows.reserve(int64_t(b) * s_q * topk);
  for (int r = 0; r < b; ++r) {
    for (int s = 0; s < s_q; ++s) {
      std::iota(positions.begin(), positions.end(), 0);
      for (int k = 0; k < topk; ++k) {
        std::uniform_int_distribution<int> pick(k, s_k - 1);
        std::swap(positions[k], positions[pick(rng)]);
        const int pos = positions[k];
        g.rows.push_back(perm[int64_t(r) * pages_per_req + pos / kPageSize] * kPageSize + pos % kPageSize);
      }
    }
  }
  return g;
}

// The suite's sparse prefill indices: per query token `topk` distinct rows
// of the unpaged kv [s_kv, 576].
Gather prefill_gather(const char* name, int s_q, int s_kv, int topk) {
  Gather g{name, kPrefillRowBytes, s_kv, {}};
  std::mt19937_64 rng(20261128);
  std::vector<int32_t> positions(s_kv);
  g.rows.reserve(int64_t(s_q) * topk);
  for (int t = 0; t < s_q; ++t) {
    std::iota(positions.begin(), positions.end(), 0);
    for (int k = 0; k < topk; ++k) {
      std::uniform_int_distribution<int> pick(k, s_kv - 1);
      std::swap(positions[k], positions[pick(rng)]);
      g.rows.push_back(positions[k]);
    }
  }
  return g;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 10;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: %s [--reps N]\n", argv[0]);
      return 2;
    }
  }
  int dev = 0, sms = 0;
  CHECK_CUDA(cudaGetDevice(&dev));
  CHECK_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  cudaDeviceProp prop{};
  CHECK_CUDA(cudaGetDeviceProperties(&prop, dev));
  std::printf("# %s, %d SMs; GB/s = row bytes x gathered rows / time (median of %d)\n", prop.name, sms, reps);
  uint32_t* sink = nullptr;
  CHECK_CUDA(cudaMalloc(&sink, size_t(sms) * 8 * 256 * sizeof(uint32_t)));

  std::printf("%-4s %-28s %10s %8s\n", "case", "method", "us", "GB/s");
  for (int g_index = 0; g_index < 4; ++g_index) {
    const Gather g = g_index == 0   ? decode_gather("S05", 128, 1, 32768, 2048)
                     : g_index == 1 ? decode_gather("S06", 128, 2, 32768, 2048)
                     : g_index == 2 ? decode_gather("S01", 64, 2, 32768, 2048)
                                    : prefill_gather("P05", 4096, 32768, 2048);
    const bool decode = g.row_bytes == kDecodeTokenBytes;
    const int64_t n = int64_t(g.rows.size());
    std::vector<int32_t> ordered(n);
    for (int64_t i = 0; i < n; ++i) ordered[i] = int32_t(i % g.pool_rows);  // the pool in address order
    char* pool = nullptr;
    int32_t* rows = nullptr;
    int32_t* rows_ordered = nullptr;
    const size_t pool_bytes = size_t(g.pool_rows) * g.row_bytes;
    CHECK_CUDA(cudaMalloc(&pool, pool_bytes));
    CHECK_CUDA(cudaMemset(pool, 0x3c, pool_bytes));
    CHECK_CUDA(cudaMalloc(&rows, n * sizeof(int32_t)));
    CHECK_CUDA(cudaMalloc(&rows_ordered, n * sizeof(int32_t)));
    CHECK_CUDA(cudaMemcpy(rows, g.rows.data(), n * sizeof(int32_t), cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(rows_ordered, ordered.data(), n * sizeof(int32_t), cudaMemcpyHostToDevice));
    const double gbytes = double(n) * g.row_bytes / 1e9;
    double us = 0.0;
    char label[64];
    auto report = [&](const char* method) {
      std::printf("%-4s %-28s %10.2f %8.0f\n", g.name.c_str(), method, us, gbytes / (us * 1e-6));
      std::fflush(stdout);
    };
    auto ldg = [&](auto kernel, int h, int a, int c, const int32_t* order, const char* what) {
      if (time_us([&] { kernel<<<sms * c, 256>>>(pool, g.row_bytes, order, n, sink); }, reps, &us)) return 1;
      std::snprintf(label, sizeof(label), "%s ldg H%d A%d C%d", what, h, a, c);
      report(label);
      return 0;
    };
    auto bulk = [&](auto kernel, int r, int w, int c) {
      const int smem = r * kBlockTokens * g.row_bytes;
      CHECK_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
      if (time_us([&] { kernel<<<sms * c, 32 * w, smem>>>(pool, g.row_bytes, rows, n / kBlockTokens, sink); }, reps,
                  &us))
        return 1;
      std::snprintf(label, sizeof(label), "gather bulk R%d W%d C%d", r, w, c);
      report(label);
      return 0;
    };
    // The row size is a template argument of the load kernel (its chunk loop
    // unrolls); the decode cases also try an L2 prefetch, the prefill case 8
    // CTAs per SM with the 128-byte hint.
    auto ldg_variants = [&](auto row_bytes) {
      constexpr int kB = decltype(row_bytes)::value;
      int failed = ldg(gather_ldg<kB, 0, 0>, 0, 0, 1, rows, "gather");
      failed |= ldg(gather_ldg<kB, 0, 0>, 0, 0, 2, rows, "gather");
      failed |= ldg(gather_ldg<kB, 0, 0>, 0, 0, 4, rows, "gather");
      failed |= ldg(gather_ldg<kB, 2, 0>, 2, 0, 4, rows, "gather");
      failed |= decode ? ldg(gather_ldg<kB, 0, 1>, 0, 1, 1, rows, "gather")
                       : ldg(gather_ldg<kB, 2, 0>, 2, 0, 8, rows, "gather");
      failed |= ldg(gather_ldg<kB, 1, 0>, 1, 0, 8, rows_ordered, "ordered");
      return failed;
    };
    int bad = decode ? ldg_variants(std::integral_constant<int, kDecodeTokenBytes>{})
                     : ldg_variants(std::integral_constant<int, kPrefillRowBytes>{});
    if (decode) {
      bad |= bulk(gather_bulk<2, 1>, 2, 1, 1);
      bad |= bulk(gather_bulk<2, 2>, 2, 2, 1);
      bad |= bulk(gather_bulk<3, 2>, 3, 2, 1);
      bad |= bulk(gather_bulk<2, 4>, 2, 4, 1);
      bad |= bulk(gather_bulk<2, 2>, 2, 2, 2);
    } else {
      bad |= bulk(gather_bulk<2, 2>, 2, 2, 1);
      bad |= bulk(gather_bulk<3, 2>, 3, 2, 1);
      bad |= bulk(gather_bulk<3, 4>, 3, 4, 1);
    }
    if (bad) return 1;
    cudaFree(pool);
    cudaFree(rows);
    cudaFree(rows_ordered);
  }
  cudaFree(sink);
  return 0;
}
