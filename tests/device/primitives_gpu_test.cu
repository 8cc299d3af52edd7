// GPU tests of the device primitives, end to end on an sm_90 GPU:
//  - mbarrier phases and parity,
//  - TMA tile round trips out of a paged bf16 KV pool (3-D and 4-D tensor
//    maps, 128-byte swizzle, bitwise),
//  - TMA + wgmma: S = Q K^T over d_qk = 576 for pages picked out of order by a
//    block table, against an fp64 CPU reference, including a pool of more
//    than 2^31 elements whose far pages need 64-bit TMA addressing,
//  - programmatic dependent launch.
// Every test skips without a GPU (FLASHMLA_REQUIRE_GPU).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <set>
#include <sstream>
#include <vector>

#include <cuda.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include "common/gpu.h"
#include "device/fence.cuh"
#include "device/mbarrier.cuh"
#include "device/pdl.cuh"
#include "device/swizzle.h"
#include "device/tma.cuh"
#include "device/tma_descriptor.h"
#include "device/wgmma.cuh"
#include "device/wgmma_layout.h"

namespace flashmla::device {
namespace {

using flashmla::test::DeviceBuffer;
using flashmla::test::to_device;

constexpr int kPageBlockSize = 64;                  // tokens per KV page
constexpr int kHeadDimQK = 576;                     // d_qk
constexpr int kTile = 64;                           // rows and bf16 columns of one TMA box / wgmma tile
constexpr int kNumKTiles = kHeadDimQK / kTile;      // 9
constexpr uint32_t kTileBytes = kTile * kTile * 2;  // 8192
constexpr int64_t kPageElems = int64_t(kPageBlockSize) * kHeadDimQK;
constexpr int kThreads = 128;  // one warpgroup
constexpr int kStages = 2;     // shared-memory stages of the QK^T pipeline
constexpr size_t kAlignSlack = 1024;

static_assert(kPageBlockSize == kTile, "one TMA box holds a whole page's rows");

// ---------------------------------------------------------------------------
// Device side

// A 1024-byte-aligned start inside the dynamic shared memory (the 128-byte
// swizzle pattern and the descriptors' base offset 0 assume it).
__device__ __forceinline__ uint8_t* align_smem_1024(uint8_t* raw) {
  return raw + ((1024u - (smem_address(raw) & 1023u)) & 1023u);
}

// Test-only wait: when a barrier never completes (a faulting TMA, a wrong
// expect_tx count) the kernel traps after ~10 s instead of hanging the test
// binary; the host then sees cudaErrorLaunchFailure (kTrapHint). No printf
// here: a call inside the wgmma loop would make ptxas serialize the wgmma
// (C7510) and give the kernels a stack frame.
__device__ __forceinline__ void wait_or_trap(uint64_t* bar, uint32_t parity) {
  const long long start = clock64();
  while (!mbarrier_try_wait_parity(bar, parity)) {
    if (clock64() - start > 20000000000LL) __trap();
  }
}

constexpr const char* kTrapHint =
    " (an 'unspecified launch failure' here means a kernel trapped: an mbarrier wait timed out, "
    "i.e. a TMA load never completed its transaction bytes)";

// 128 threads arrive on one barrier for kPhases phases; each phase reads a
// slot another thread wrote before arriving (arrive releases, wait acquires).
constexpr int kPhases = 6;

__global__ void __launch_bounds__(kThreads, 1) mbarrier_phase_kernel(int32_t* out, int32_t* flags) {
  __shared__ uint64_t bar;
  __shared__ int32_t slots[kThreads];
  const int tid = threadIdx.x;
  if (tid == 0) {
    mbarrier_init(&bar, kThreads);
    fence_barrier_init();
  }
  __syncthreads();
  if (tid == 0) {
    flags[0] = mbarrier_try_wait_parity(&bar, 1) ? 1 : 0;  // the phase before phase 0 counts as done
    flags[1] = mbarrier_try_wait_parity(&bar, 0) ? 1 : 0;  // phase 0 has none of its 128 arrivals yet
  }
  __syncthreads();
  for (int p = 0; p < kPhases; ++p) {
    slots[tid] = p * 1000 + tid;
    mbarrier_arrive(&bar);
    wait_or_trap(&bar, p & 1);
    out[p * kThreads + tid] = slots[(tid + 1 + p) % kThreads];
    __syncthreads();  // all reads of phase p are done before slots are rewritten
  }
}

// Copies every page named by the block table, 64 columns at a time, through
// 128B-swizzled shared memory into out[slot] (row-major [64, 576]), reading
// the swizzled tile with swizzle_128b(). One stage, one barrier: tile kt
// completes phase kt. kRank 3 uses the [page, token, col] map and
// arrive.expect_tx; kRank 4 the [page, token, tile, col-in-tile] map of the
// same pool, expect_tx and arrive as two instructions, and an L2 hint.
template <int kRank>
__global__ void __launch_bounds__(kThreads, 1)
    tma_round_trip_kernel(const __grid_constant__ CUtensorMap kv_map, const int32_t* __restrict__ block_table,
                          uint16_t* __restrict__ out) {
  extern __shared__ uint8_t smem_raw[];
  uint8_t* tile = align_smem_1024(smem_raw);                       // (64, 64) bf16, SW128
  uint64_t* bar = reinterpret_cast<uint64_t*>(tile + kTileBytes);  // tile landed
  const int tid = threadIdx.x;
  const int32_t page = block_table[blockIdx.x];
  if (tid == 0) {
    prefetch_tensormap(&kv_map);
    mbarrier_init(bar, 1);
    fence_barrier_init();
  }
  __syncthreads();

  uint16_t* out_page = out + int64_t(blockIdx.x) * kPageElems;
  for (int kt = 0; kt < kNumKTiles; ++kt) {
    if (tid == 0) {
      if constexpr (kRank == 3) {
        mbarrier_arrive_expect_tx(bar, kTileBytes);
        tma_load_3d(tile, bar, &kv_map, kt * kTile, 0, page);
      } else {
        mbarrier_expect_tx(bar, kTileBytes);
        tma_load_4d(tile, bar, &kv_map, 0, kt, 0, page, l2_policy_evict_last());
        mbarrier_arrive(bar);
      }
    }
    wait_or_trap(bar, kt & 1);
    for (int c = tid; c < kTile * 8; c += kThreads) {  // 16-byte chunks: 8 per row
      const int row = c / 8;
      const int chunk = c % 8;
      const uint4 v = *reinterpret_cast<const uint4*>(tile + swizzle_128b(row * 128 + chunk * 16));
      *reinterpret_cast<uint4*>(out_page + int64_t(row) * kHeadDimQK + kt * kTile + chunk * 8) = v;
    }
    __syncthreads();  // every thread has read tile kt before thread 0 refills it
  }
}

// S[slot] = Q K_page^T (64 x 64, fp32) over d_qk = 576: 9 k-tiles, each a
// 64x64 Q tile and a 64x64 K tile in 128B-swizzled shared memory, 4 wgmma
// m64n64k16 per k-tile. K always comes by TMA (evict-first L2 hint). Q comes
// by TMA too, or with kQByStores the threads store it (16-byte st.shared at
// swizzle_128b offsets, then fence.proxy.async), as kernels will stage P.
// Two stages: k-tile kt uses stage kt % 2 and completes phase kt / 2 of that
// stage's barrier; thread 0 refills a stage once all four warps' wgmma have
// finished reading it.
template <bool kQByStores>
__global__ void __launch_bounds__(kThreads, 1)
    qk_wgmma_kernel(const __grid_constant__ CUtensorMap q_map, const __grid_constant__ CUtensorMap kv_map,
                    const uint16_t* __restrict__ q, const int32_t* __restrict__ block_table,
                    float* __restrict__ s_out) {
  extern __shared__ uint8_t smem_raw[];
  uint8_t* base = align_smem_1024(smem_raw);
  uint8_t* sQ = base;                                                                  // (kStages, 64, 64) SW128
  uint8_t* sK = base + kStages * kTileBytes;                                           // (kStages, 64, 64) SW128
  uint64_t* full = reinterpret_cast<uint64_t*>(base + 2 * kStages * kTileBytes);       // (kStages)
  const int tid = threadIdx.x;
  const int32_t page = block_table[blockIdx.x];

  if (tid == 0) {
    prefetch_tensormap(&q_map);
    prefetch_tensormap(&kv_map);
    for (int s = 0; s < kStages; ++s) mbarrier_init(&full[s], 1);
    fence_barrier_init();
  }
  __syncthreads();

  auto load_stage = [&](int kt) {
    const int stage = kt % kStages;
    mbarrier_arrive_expect_tx(&full[stage], kQByStores ? kTileBytes : 2 * kTileBytes);
    if constexpr (!kQByStores) tma_load_2d(sQ + stage * kTileBytes, &full[stage], &q_map, kt * kTile, 0);
    tma_load_3d(sK + stage * kTileBytes, &full[stage], &kv_map, kt * kTile, 0, page, l2_policy_evict_first());
  };
  if (tid == 0) {
    for (int kt = 0; kt < kStages; ++kt) load_stage(kt);
  }

  float acc[32];
#pragma unroll
  for (int i = 0; i < 32; ++i) acc[i] = 0.0f;

  for (int kt = 0; kt < kNumKTiles; ++kt) {
    const int stage = kt % kStages;
    wait_or_trap(&full[stage], (kt / kStages) & 1);
    if constexpr (kQByStores) {
      // The previous reader of sQ[stage] (wgmma of k-tile kt - 2) finished
      // before the __syncthreads that ended its iteration.
      for (int c = tid; c < kTile * 8; c += kThreads) {  // 16-byte chunks: 8 per row
        const int row = c / 8;
        const int chunk = c % 8;
        const uint4 v = *reinterpret_cast<const uint4*>(q + int64_t(row) * kHeadDimQK + kt * kTile + chunk * 8);
        *reinterpret_cast<uint4*>(sQ + stage * kTileBytes + swizzle_128b(row * 128 + chunk * 16)) = v;
      }
      fence_proxy_async_shared_cta();  // the stores become visible to wgmma (async proxy) ...
      __syncthreads();                 // ... of all four warps
    }
    const uint64_t desc_q = make_sw128_kmajor_descriptor(smem_address(sQ + stage * kTileBytes));
    const uint64_t desc_k = make_sw128_kmajor_descriptor(smem_address(sK + stage * kTileBytes));
    fence_accumulators(acc);
    warpgroup_arrive();
#pragma unroll
    for (int kk = 0; kk < kTile / 16; ++kk) {
      // K columns 16kk .. 16kk + 15 start 32kk bytes into each row. The very
      // first MMA overwrites the (zero) accumulators; the rest add.
      wgmma_m64n64k16_bf16_ss(advance_smem_descriptor(desc_q, 32 * kk), advance_smem_descriptor(desc_k, 32 * kk),
                              acc, kt > 0 || kk > 0);
    }
    warpgroup_commit_batch();
    warpgroup_wait<0>();
    fence_accumulators(acc);
    __syncthreads();  // all four warps are done reading this stage
    if (tid == 0 && kt + kStages < kNumKTiles) load_stage(kt + kStages);
  }

  float* s_block = s_out + int64_t(blockIdx.x) * kTile * kTile;
#pragma unroll
  for (int i = 0; i < 32; ++i) {
    const FragmentCoord c = wgmma_accumulator_coord(tid, i);
    s_block[int64_t(c.row) * kTile + c.col] = acc[i];
  }
}

__global__ void pdl_primary_kernel(int32_t* data, int n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) data[i] = int32_t(3 * i + 1);
  grid_dependency_launch_dependents();
}

// Reads an element a different CTA of the primary wrote.
__global__ void pdl_secondary_kernel(const int32_t* data, int32_t* out, int n) {
  grid_dependency_wait();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = data[(i + 4099) % n] + 7;
}

// Never launched: makes ptxas assemble the wrappers no test above executes
// (the 2-D load with an L2 hint, the 4-D load without), so a malformed one
// fails the build here rather than in a future kernel.
__global__ void assemble_remaining_wrappers_kernel(const __grid_constant__ CUtensorMap map, int32_t c) {
  __shared__ alignas(1024) uint8_t tile[kTileBytes];
  __shared__ uint64_t bar;
  mbarrier_init(&bar, 1);
  fence_barrier_init();
  mbarrier_arrive_expect_tx(&bar, 2 * kTileBytes);
  tma_load_2d(tile, &bar, &map, c, c, l2_policy_evict_first());
  tma_load_4d(tile, &bar, &map, c, c, c, c);
  mbarrier_wait_parity(&bar, 0);
}

// ---------------------------------------------------------------------------
// Host side: deterministic bf16 inputs and the fp64 reference

uint16_t bf16_bits(float f) {  // round to nearest even; f is finite
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

double bf16_value(uint16_t bits) {
  const uint32_t u = uint32_t(bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint64_t mix64(uint64_t x) {  // splitmix64 finaliser
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Element `index` of stream `seed`: a bf16 in [-1, 1), never NaN (0xFFFF).
uint16_t test_value(uint64_t seed, uint64_t index) {
  const uint64_t h = mix64(mix64(seed) ^ index);
  const float f = float(int64_t(h >> 40) - (int64_t(1) << 23)) / float(int64_t(1) << 23);
  return bf16_bits(f);
}

constexpr uint64_t kKvSeed = 0x6B76;
constexpr uint64_t kQSeed = 0x71;

// Page `page` of the KV pool, [64 tokens, 576] row-major.
std::vector<uint16_t> kv_page(int64_t page) {
  std::vector<uint16_t> v(kPageElems);
  for (int64_t e = 0; e < kPageElems; ++e) v[e] = test_value(kKvSeed, uint64_t(page * kPageElems + e));
  return v;
}

// NaN everywhere, then the pages the block table names.
cudaError_t fill_pool(DeviceBuffer& pool, const std::vector<int32_t>& block_table) {
  cudaError_t err = pool.fill_bytes(0xFF);
  const std::set<int32_t> pages(block_table.begin(), block_table.end());
  for (int32_t page : pages) {
    if (err != cudaSuccess) break;
    const std::vector<uint16_t> host = kv_page(page);
    err = cudaMemcpy(pool.as<uint16_t>() + int64_t(page) * kPageElems, host.data(), kPageElems * sizeof(uint16_t),
                     cudaMemcpyHostToDevice);
  }
  return err;
}

TensorMapParams kv_map_params(int64_t num_blocks, int rank) {
  if (rank == 3) return bf16_paged_kv_tile_params(num_blocks, kPageBlockSize, kHeadDimQK, kHeadDimQK, kPageElems, kTile);
  // The same pool as [num_blocks, 64 tokens, 9 tiles, 64 columns]: one box is
  // one tile of one page, coordinates (0, tile, 0, page).
  TensorMapParams p;
  p.rank = 4;
  p.dims[0] = kTile;
  p.dims[1] = kNumKTiles;
  p.dims[2] = kPageBlockSize;
  p.dims[3] = cuuint64_t(num_blocks);
  p.strides_bytes[0] = kTile * 2;
  p.strides_bytes[1] = kHeadDimQK * 2;
  p.strides_bytes[2] = kPageElems * 2;
  p.box[0] = kTile;
  p.box[1] = 1;
  p.box[2] = kPageBlockSize;
  p.box[3] = 1;
  return p;
}

template <int kRank>
void check_round_trip(const DeviceBuffer& pool, int64_t num_blocks, const std::vector<int32_t>& block_table) {
  const TensorMapParams params = kv_map_params(num_blocks, kRank);
  ASSERT_EQ(params.box_bytes(), kTileBytes);
  CUtensorMap kv_map;
  const Status status = encode_tensor_map(params, pool.get(), &kv_map);
  ASSERT_TRUE(status.ok()) << status.what();

  const int n = int(block_table.size());
  DeviceBuffer d_table = to_device(block_table);
  ASSERT_NE(d_table.get(), nullptr);
  DeviceBuffer d_out;
  ASSERT_TRUE(d_out.allocate(size_t(n) * kPageElems * sizeof(uint16_t)));
  FLASHMLA_ASSERT_CUDA(d_out.fill_bytes(0xFF));

  const size_t smem_bytes = kTileBytes + sizeof(uint64_t) + kAlignSlack;
  tma_round_trip_kernel<kRank><<<n, kThreads, smem_bytes>>>(kv_map, d_table.as<int32_t>(), d_out.as<uint16_t>());
  FLASHMLA_ASSERT_CUDA(cudaGetLastError());
  const cudaError_t sync_error = cudaDeviceSynchronize();
  ASSERT_EQ(sync_error, cudaSuccess) << cudaGetErrorString(sync_error) << kTrapHint;

  std::vector<uint16_t> out(size_t(n) * kPageElems);
  FLASHMLA_ASSERT_CUDA(d_out.download(out));
  int64_t mismatches = 0;
  std::ostringstream first;
  for (int b = 0; b < n; ++b) {
    const std::vector<uint16_t> expected = kv_page(block_table[b]);
    for (int64_t e = 0; e < kPageElems; ++e) {
      const uint16_t got = out[size_t(b) * kPageElems + e];
      if (got != expected[e] && mismatches++ == 0) {
        first << "slot " << b << " (page " << block_table[b] << "), token " << e / kHeadDimQK << ", dim "
              << e % kHeadDimQK << ": expected 0x" << std::hex << expected[e] << " got 0x" << got << std::dec
              << (got == 0xFFFF ? " (NaN poison: unwritten, or read from a page never filled)" : "");
      }
    }
  }
  ASSERT_EQ(mismatches, 0) << kRank << "-D round trip: " << mismatches << " of " << n * kPageElems
                           << " elements differ; first: " << first.str();
}

template <bool kQByStores>
void check_qk(const DeviceBuffer& pool, int64_t num_blocks, const std::vector<int32_t>& block_table) {
  std::vector<uint16_t> q(size_t(kTile) * kHeadDimQK);
  for (size_t e = 0; e < q.size(); ++e) q[e] = test_value(kQSeed, e);
  DeviceBuffer d_q = to_device(q);
  ASSERT_NE(d_q.get(), nullptr);

  CUtensorMap q_map;
  CUtensorMap kv_map;
  Status status = encode_tensor_map(bf16_matrix_tile_params(kTile, kHeadDimQK, kHeadDimQK, kTile, kTile), d_q.get(),
                                    &q_map);
  ASSERT_TRUE(status.ok()) << status.what();
  status = encode_tensor_map(kv_map_params(num_blocks, 3), pool.get(), &kv_map);
  ASSERT_TRUE(status.ok()) << status.what();

  const int n = int(block_table.size());
  DeviceBuffer d_table = to_device(block_table);
  ASSERT_NE(d_table.get(), nullptr);
  DeviceBuffer d_s;
  ASSERT_TRUE(d_s.allocate(size_t(n) * kTile * kTile * sizeof(float)));
  FLASHMLA_ASSERT_CUDA(d_s.fill_bytes(0xFF));  // NaN

  const size_t smem_bytes = 2 * kStages * kTileBytes + kStages * sizeof(uint64_t) + kAlignSlack;
  qk_wgmma_kernel<kQByStores><<<n, kThreads, smem_bytes>>>(q_map, kv_map, d_q.as<uint16_t>(), d_table.as<int32_t>(),
                                                           d_s.as<float>());
  FLASHMLA_ASSERT_CUDA(cudaGetLastError());
  const cudaError_t sync_error = cudaDeviceSynchronize();
  ASSERT_EQ(sync_error, cudaSuccess) << cudaGetErrorString(sync_error) << kTrapHint;

  std::vector<float> s(size_t(n) * kTile * kTile);
  FLASHMLA_ASSERT_CUDA(d_s.download(s));

  std::vector<double> qd(q.size());
  for (size_t e = 0; e < q.size(); ++e) qd[e] = bf16_value(q[e]);
  int64_t mismatches = 0;
  double max_abs_expected = 0.0;
  double max_abs_error = 0.0;
  std::ostringstream first;
  for (int b = 0; b < n; ++b) {
    const std::vector<uint16_t> k = kv_page(block_table[b]);
    std::vector<double> kd(k.size());
    for (size_t e = 0; e < k.size(); ++e) kd[e] = bf16_value(k[e]);
    for (int i = 0; i < kTile; ++i) {
      for (int j = 0; j < kPageBlockSize; ++j) {
        double expected = 0.0;
        for (int d = 0; d < kHeadDimQK; ++d) expected += qd[size_t(i) * kHeadDimQK + d] * kd[size_t(j) * kHeadDimQK + d];
        const double got = s[(size_t(b) * kTile + i) * kTile + j];
        const double error = std::fabs(got - expected);
        max_abs_expected = std::fmax(max_abs_expected, std::fabs(expected));
        if (std::isfinite(got)) max_abs_error = std::fmax(max_abs_error, error);
        if (!(error <= 1e-3 * std::fabs(expected) + 1e-4) && mismatches++ == 0) {
          first << "slot " << b << " (page " << block_table[b] << "), query row " << i << ", token " << j
                << ": expected " << expected << " got " << got;
        }
      }
    }
  }
  EXPECT_GT(max_abs_expected, 1.0) << "the inputs are degenerate: the test would not notice zeros";
  ASSERT_EQ(mismatches, 0) << (kQByStores ? "Q stored by threads: " : "Q by TMA: ") << mismatches << " of "
                           << n * kTile * kTile
                           << " elements of S = Q K^T out of tolerance (1e-3 rel + 1e-4 abs); first: " << first.str()
                           << "; largest finite error " << max_abs_error;
}

// ---------------------------------------------------------------------------
// Tests

TEST(GpuPrimitives, MbarrierPhases) {
  FLASHMLA_REQUIRE_GPU();
  DeviceBuffer d_out(kPhases * kThreads * sizeof(int32_t));
  DeviceBuffer d_flags(2 * sizeof(int32_t));
  ASSERT_NE(d_out.get(), nullptr);
  ASSERT_NE(d_flags.get(), nullptr);
  FLASHMLA_ASSERT_CUDA(d_out.fill_bytes(0xFF));
  FLASHMLA_ASSERT_CUDA(d_flags.fill_bytes(0xFF));
  mbarrier_phase_kernel<<<1, kThreads>>>(d_out.as<int32_t>(), d_flags.as<int32_t>());
  FLASHMLA_ASSERT_CUDA(cudaGetLastError());
  const cudaError_t sync_error = cudaDeviceSynchronize();
  ASSERT_EQ(sync_error, cudaSuccess) << cudaGetErrorString(sync_error) << kTrapHint;

  std::vector<int32_t> flags(2);
  std::vector<int32_t> out(kPhases * kThreads);
  FLASHMLA_ASSERT_CUDA(d_flags.download(flags));
  FLASHMLA_ASSERT_CUDA(d_out.download(out));
  EXPECT_EQ(flags[0], 1) << "try_wait(parity 1) on a fresh barrier must succeed at once";
  EXPECT_EQ(flags[1], 0) << "try_wait(parity 0) must fail before phase 0's arrivals";
  for (int p = 0; p < kPhases; ++p) {
    for (int t = 0; t < kThreads; ++t) {
      ASSERT_EQ(out[p * kThreads + t], p * 1000 + (t + 1 + p) % kThreads) << "phase " << p << " thread " << t;
    }
  }
}

// A 37-page pool; the table visits pages out of order, the last page of the
// pool, page 0, and one page twice. Pages it does not name hold NaN.
const std::vector<int32_t> kSmallPoolTable = {36, 5, 17, 0, 23, 36, 1};
constexpr int64_t kSmallPoolBlocks = 37;

TEST(GpuPrimitives, TmaTileRoundTrip) {
  FLASHMLA_REQUIRE_GPU();
  DeviceBuffer pool(kSmallPoolBlocks * kPageElems * sizeof(uint16_t));
  ASSERT_NE(pool.get(), nullptr);
  FLASHMLA_ASSERT_CUDA(fill_pool(pool, kSmallPoolTable));
  check_round_trip<3>(pool, kSmallPoolBlocks, kSmallPoolTable);
}

TEST(GpuPrimitives, TmaTileRoundTrip4D) {
  FLASHMLA_REQUIRE_GPU();
  DeviceBuffer pool(kSmallPoolBlocks * kPageElems * sizeof(uint16_t));
  ASSERT_NE(pool.get(), nullptr);
  FLASHMLA_ASSERT_CUDA(fill_pool(pool, kSmallPoolTable));
  check_round_trip<4>(pool, kSmallPoolBlocks, kSmallPoolTable);
}

TEST(GpuPrimitives, TmaLoadAndWgmma) {
  FLASHMLA_REQUIRE_GPU();
  DeviceBuffer pool(kSmallPoolBlocks * kPageElems * sizeof(uint16_t));
  ASSERT_NE(pool.get(), nullptr);
  FLASHMLA_ASSERT_CUDA(fill_pool(pool, kSmallPoolTable));
  check_qk<false>(pool, kSmallPoolBlocks, kSmallPoolTable);
}

// Q written to shared memory by ordinary stores at swizzle_128b() offsets:
// the swizzle function and the descriptor agree without TMA in between, and
// fence.proxy.async publishes the stores to wgmma.
TEST(GpuPrimitives, WgmmaReadsSwizzledStores) {
  FLASHMLA_REQUIRE_GPU();
  DeviceBuffer pool(kSmallPoolBlocks * kPageElems * sizeof(uint16_t));
  ASSERT_NE(pool.get(), nullptr);
  FLASHMLA_ASSERT_CUDA(fill_pool(pool, kSmallPoolTable));
  check_qk<true>(pool, kSmallPoolBlocks, kSmallPoolTable);
}

// 60000 pages x 64 x 576 bf16 = 4.42 GB: page p starts at element 36864 p,
// past 2^31 from page 58255 on (58254 straddles element 2^31), so the TMA
// engine must form 64-bit addresses from the map's strides.
TEST(GpuPrimitives, TmaLoadAndWgmmaPoolBeyond2To31Elements) {
  FLASHMLA_REQUIRE_GPU();
  constexpr int64_t kNumBlocks = 60000;
  static_assert(58254 * kPageElems < (int64_t(1) << 31) && 58255 * kPageElems > (int64_t(1) << 31));
  DeviceBuffer pool;
  if (!pool.allocate(size_t(kNumBlocks) * kPageElems * sizeof(uint16_t))) {
    GTEST_SKIP() << "cudaMalloc of the " << kNumBlocks * kPageElems * 2 << "-byte KV pool failed";
  }
  const std::vector<int32_t> table = {59999, 58254, 0, 58255, 31337, 59998, 7};
  FLASHMLA_ASSERT_CUDA(fill_pool(pool, table));
  check_round_trip<3>(pool, kNumBlocks, table);
  if (HasFatalFailure()) return;
  check_qk<false>(pool, kNumBlocks, table);
}

TEST(GpuPrimitives, PdlWaitSeesPrimaryWrites) {
  FLASHMLA_REQUIRE_GPU();
  constexpr int n = 1 << 20;
  constexpr int threads = 256;
  DeviceBuffer d_data(n * sizeof(int32_t));
  DeviceBuffer d_out(n * sizeof(int32_t));
  ASSERT_NE(d_data.get(), nullptr);
  ASSERT_NE(d_out.get(), nullptr);
  FLASHMLA_ASSERT_CUDA(d_data.fill_bytes(0xFF));
  FLASHMLA_ASSERT_CUDA(d_out.fill_bytes(0xFF));

  struct Stream {
    cudaStream_t s = nullptr;
    ~Stream() {
      if (s != nullptr) cudaStreamDestroy(s);
    }
  } stream;
  FLASHMLA_ASSERT_CUDA(cudaStreamCreateWithFlags(&stream.s, cudaStreamNonBlocking));

  pdl_primary_kernel<<<n / threads, threads, 0, stream.s>>>(d_data.as<int32_t>(), n);
  FLASHMLA_ASSERT_CUDA(cudaGetLastError());

  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(n / threads);
  config.blockDim = dim3(threads);
  config.dynamicSmemBytes = 0;
  config.stream = stream.s;
  config.attrs = &attribute;
  config.numAttrs = 1;
  FLASHMLA_ASSERT_CUDA(cudaLaunchKernelEx(&config, pdl_secondary_kernel, static_cast<const int32_t*>(d_data.as<int32_t>()),
                                          d_out.as<int32_t>(), n));
  FLASHMLA_ASSERT_CUDA(cudaGetLastError());
  FLASHMLA_ASSERT_CUDA(cudaStreamSynchronize(stream.s));

  std::vector<int32_t> out(n);
  FLASHMLA_ASSERT_CUDA(d_out.download(out));
  for (int i = 0; i < n; ++i) {
    const int64_t src = (int64_t(i) + 4099) % n;
    ASSERT_EQ(out[i], int32_t(3 * src + 1) + 7) << "element " << i;
  }
}

}  // namespace
}  // namespace flashmla::device
