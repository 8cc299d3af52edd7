// flashmla-wgmma-rates: how fast do the dense decode kernel's wgmma shapes
// run on this GPU with nothing else in the way? Every warpgroup of a CTA
// loops over one job with the kernel's own CuTe tilings and shared-memory
// layouts (zeros in shared memory: the rate does not depend on values):
//   qk_ss  S = Q K^T of one block: 36 x HGMMA.64x64x16, Q and K in shared memory
//   qk_rs  the same with Q in registers (A from registers, K from shared memory)
//   pv_ss  O_half += P V_half: 4 x HGMMA.64x256x16, P and V in shared memory
//   pv_rs  the same with P in registers
// alone and mixed (the schedules a decode kernel could run), one CTA per SM on
// one SM and on every SM. Reported per CTA: SM cycles per job iteration, the
// dense bf16 rate in FLOP per cycle per SM (H100/H200 peak: 4096), and the
// whole GPU's TFLOPS. The question it answers: is Q K^T with both operands
// in shared memory (N = 64: 4 KB of operands per 32-cycle wgmma, the SM's
// 128 B/cycle) bounded by shared-memory bandwidth, and what would Q in
// registers buy? Then the dense kernel's block loop without loads, masking
// or pieces (below): the ceiling of its schedule. Results and what they
// mean: src/kernels/dense_decode/README.md, "eighth session".
#include <cstdint>
#include <cstdio>
#include <string>
#include <type_traits>
#include <vector>

#include <cuda_runtime_api.h>
#include <cute/tensor.hpp>
#include <cutlass/numeric_types.h>

#include "device/cute_gemm.cuh"
#include "device/fence.cuh"
#include "device/fast_math.cuh"
#include "device/mbarrier.cuh"
#include "device/pack.cuh"
#include "device/smem_address.cuh"
#include "device/warpgroup_registers.cuh"
#include "device/named_barrier.cuh"
#include "kernels/pv_half.cuh"
#include "kernels/score_softmax.cuh"
#include "device/wgmma_layout.h"
#include "kernels/dense_decode/config.cuh"

namespace wgmma_rates {

using Cfg = flashmla::kernels::dense_decode::Config<cutlass::bfloat16_t>;
using Element = Cfg::Element;
using namespace cute;

enum Job : int { kNone = 0, kQkSS = 1, kQkRS = 2, kPvSS = 3, kPvRS = 4 };

constexpr double job_flops(int j) {
  // per warpgroup iteration: Q K^T 64 x 64 x 576, P V_half 64 x 256 x 64
  return j == kQkSS || j == kQkRS ? 2.0 * 64 * 64 * 576 : j == kPvSS || j == kPvRS ? 2.0 * 64 * 256 * 64 : 0.0;
}

using TiledMmaQKRegQ8 = decltype(make_tiled_mma(
    GMMA::rs_op_selector<Element, Element, float, Shape<Int<64>, Int<64>, Int<512>>>()));
using TiledMmaQKRegQ = decltype(make_tiled_mma(
    GMMA::rs_op_selector<Element, Element, float, Shape<Int<64>, Int<64>, Int<576>>>()));

struct Smem {
  alignas(1024) Element q[cosize_v<Cfg::SmemLayoutQ>];
  alignas(1024) Element k[cosize_v<Cfg::SmemLayoutK>];
  alignas(1024) Element p[cosize_v<Cfg::SmemLayoutP>];
};

template <int kJob>
__device__ __forceinline__ float run_job(Smem& smem, int tid_wg, int iters, int stage_flip) {
  float sink = 0.f;
  if constexpr (kJob == kQkSS || kJob == kQkRS) {
    Tensor sQ = make_tensor(make_smem_ptr(smem.q), Cfg::SmemLayoutQ{});
    Tensor sK = make_tensor(make_smem_ptr(smem.k), Cfg::SmemLayoutK{});
    Tensor acc = partition_fragment_C(Cfg::TiledMmaQK{}, Shape<Int<64>, Int<64>>{});
    clear(acc);
    if constexpr (kJob == kQkSS) {
      Cfg::TiledMmaQK mma;
      auto thr = mma.get_thread_slice(tid_wg);
      Tensor tA = thr.partition_fragment_A(sQ);
      for (int it = 0; it < iters; ++it) {
        Tensor tB = thr.partition_fragment_B(sK(_, _, (it ^ stage_flip) & 1));
        flashmla::device::gemm_async(mma, tA, tB, acc, false);
        warpgroup_wait<0>();
      }
    } else {
      TiledMmaQKRegQ mma;
      auto thr = mma.get_thread_slice(tid_wg);
      // Q's fragment: 144 registers, as a kernel holding Q would carry.
      Tensor tA = thr.partition_fragment_A(sQ);
      CUTE_UNROLL
      for (int i = 0; i < size(tA); ++i) tA(i) = Element(float(i & 7) * 0.f);
      for (int it = 0; it < iters; ++it) {
        Tensor tB = thr.partition_fragment_B(sK(_, _, (it ^ stage_flip) & 1));
        flashmla::device::gemm_async(mma, tA, tB, acc, false);
        warpgroup_wait<0>();
      }
    }
    CUTE_UNROLL
    for (int i = 0; i < size(acc); ++i) sink += acc(i);
  } else if constexpr (kJob == kPvSS || kJob == kPvRS) {
    Tensor sVt = make_tensor(make_smem_ptr(smem.k), Cfg::SmemLayoutVt{});
    Tensor sP = make_tensor(make_smem_ptr(smem.p), Cfg::SmemLayoutP{});
    Tensor acc = partition_fragment_C(Cfg::TiledMmaPV{}, Shape<Int<64>, Int<256>>{});
    clear(acc);
    const int half = (threadIdx.x / 128) & 1;
    if constexpr (kJob == kPvSS) {
      Cfg::TiledMmaPV mma;
      auto thr = mma.get_thread_slice(tid_wg);
      Tensor tA = thr.partition_fragment_A(sP);
      for (int it = 0; it < iters; ++it) {
        Tensor sVh = local_tile(sVt(_, _, (it ^ stage_flip) & 1), Shape<Int<256>, Int<64>>{}, make_coord(half, _0{}));
        flashmla::device::gemm_async(mma, tA, thr.partition_fragment_B(sVh), acc, false);
        warpgroup_wait<0>();
      }
    } else {
      Cfg::TiledMmaPVRegP mma;
      auto thr = mma.get_thread_slice(tid_wg);
      Tensor tA = thr.partition_fragment_A(sP);
      CUTE_UNROLL
      for (int i = 0; i < size(tA); ++i) tA(i) = Element(0.f);
      for (int it = 0; it < iters; ++it) {
        Tensor sVh = local_tile(sVt(_, _, (it ^ stage_flip) & 1), Shape<Int<256>, Int<64>>{}, make_coord(half, _0{}));
        flashmla::device::gemm_async(mma, tA, thr.partition_fragment_B(sVh), acc, false);
        warpgroup_wait<0>();
      }
    }
    CUTE_UNROLL
    for (int i = 0; i < size(acc); ++i) sink += acc(i);
  }
  return sink;
}

// Zeros the CTA's dynamic shared memory (16 bytes a store), then syncs.
__device__ __forceinline__ void zero_shared(char* smem, int bytes) {
  for (int i = threadIdx.x; i < bytes / 16; i += blockDim.x) reinterpret_cast<uint4*>(smem)[i] = make_uint4(0, 0, 0, 0);
  __syncthreads();
}

// The end of a block-schedule kernel: once every warpgroup is done, thread
// 0 stores the CTA's cycles since t0. `v` sums what the warpgroups computed
// so that the work is not optimized away (it is never 12345).
__device__ __forceinline__ void record_cycles(long long t0, float v, long long* cycles, float* sink) {
  __syncthreads();
  const long long t1 = clock64();
  if (v == 12345.f) sink[threadIdx.x] = v;  // never
  if (threadIdx.x == 0) cycles[blockIdx.x] = t1 - t0;
}

// Warpgroup w runs job J<w> for iters[w] iterations; the CTA's cycles from
// the first barrier to the last warpgroup's end go to cycles[blockIdx.x].
template <int J0, int J1, int J2>
constexpr int kThreadsOf = J2 != kNone ? 384 : J1 != kNone ? 256 : 128;

template <int J0, int J1, int J2>
__global__ void __launch_bounds__(kThreadsOf<J0, J1, J2>, 1) rates_kernel(int iters0, int iters1, int iters2, int stage_flip,
                                                       long long* cycles, float* sink) {
  extern __shared__ __align__(1024) char smem_raw[];
  Smem& smem = *reinterpret_cast<Smem*>(smem_raw);
  zero_shared(smem_raw, int(sizeof(Smem)));
  const long long t0 = clock64();
  const int wg = threadIdx.x / 128;
  const int tid_wg = threadIdx.x % 128;
  float s = 0.f;
  if (wg == 0) s = run_job<J0>(smem, tid_wg, iters0, stage_flip);
  if (wg == 1) s = run_job<J1>(smem, tid_wg, iters1, stage_flip);
  if (wg == 2) s = run_job<J2>(smem, tid_wg, iters2, stage_flip);
  __syncthreads();
  const long long t1 = clock64();
  if (s != 0.f) sink[threadIdx.x] = s;  // never: zeros in, zeros out
  if (threadIdx.x == 0) cycles[blockIdx.x] = t1 - t0;
}

// Launches `launch(stage_flip)` once to warm up and once timed, then prints
// the mean cycles per `iters` of a CTA, the FLOP rate per SM cycle from
// `flops` per CTA, the GPU's TFLOPS and the SM clock the two imply.
template <typename Launch>
int time_and_report(const char* what, const char* per, int ctas, double iters, double flops, Launch launch,
                    long long* d_cycles, std::vector<long long>& host) {
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  launch(0);
  cudaEventRecord(a);
  launch(1);
  cudaEventRecord(b);
  const bool ok = cudaEventSynchronize(b) == cudaSuccess;
  float ms = 0.f;
  if (ok) cudaEventElapsedTime(&ms, a, b);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  if (!ok) return 1;
  host.resize(ctas);
  cudaMemcpy(host.data(), d_cycles, sizeof(long long) * ctas, cudaMemcpyDeviceToHost);
  double mean = 0;
  for (long long c : host) mean += double(c) / ctas;
  std::printf("%-44s %4d CTAs  %9.1f cycles/%-5s  %6.0f FLOP/cycle/SM (%5.1f%% of 4096)  %7.1f TFLOPS  %5.2f GHz\n",
              what, ctas, mean / iters, per, flops / mean, 100.0 * flops / mean / 4096.0,
              flops * ctas / (ms * 1e-3) / 1e12, mean / (ms * 1e-3) / 1e9);
  return 0;
}

// One row: warpgroup w runs job J<w> for iters[w] iterations; cycles per
// iteration of warpgroup 0.
template <int J0, int J1, int J2>
int run_row(const char* what, const int (&iters)[3], int ctas, long long* d_cycles, float* d_sink,
            std::vector<long long>& host) {
  auto kernel = rates_kernel<J0, J1, J2>;
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(sizeof(Smem))) != cudaSuccess)
    return 1;
  const double flops = job_flops(J0) * iters[0] + job_flops(J1) * iters[1] + job_flops(J2) * iters[2];
  auto launch = [&](int stage_flip) {
    kernel<<<ctas, kThreadsOf<J0, J1, J2>, sizeof(Smem)>>>(iters[0], iters[1], iters[2], stage_flip, d_cycles, d_sink);
  };
  return time_and_report(what, "iter", ctas, iters[0], flops, launch, d_cycles, host);
}


// ---------------------------------------------------------------------------
// Block schedules with the kernels' softmax step and P store and no loads,
// no masking and no pieces: the most a schedule can give per 64-key block
// when every operand is already in shared memory (the tensor work alone is
// 2 x 64 x 64 x 1088 FLOP = 2176 cycles at 4096 FLOP/cycle).
//   now: the dense kernel's split. Score warpgroup: S = Q K^T (SS), softmax,
//     O_L += P V_L with P from registers, P to shared memory, arrive; value
//     warpgroup: O_R += P V_R (SS).
// (A simulation of FlashMLA's seesaw was started here and not finished: as
// in experiments/dense-seesaw-v2.patch, ptxas spilled (780 bytes) and
// serialized it (C7518) until the wgmma operands are laundered per step.)
// (Also tried here: Q in registers beside three stages, Q K^T RS. All of Q
// (144 registers) or its k-tiles 0-7 (128) beside S leave a Q K^T
// warpgroup too few registers within 512 per thread over three warpgroups:
// ptxas serializes its wgmma (C7511) below 192, and two P V warpgroups need
// 160 each. A Q fragment of constant zeros also made ptxas serialize.)
using SmemLayoutK3 = decltype(tile_to_shape(Cfg::SmemLayoutAtom{}, Shape<Int<64>, Int<576>, Int<3>>{}));
struct SimSmem {
  alignas(1024) Element k[cosize_v<SmemLayoutK3>];  // stages 0, 1 and q in the third
  alignas(1024) Element p0[64 * 64];
  float scale0[64];
};
static_assert(sizeof(SimSmem) <= 232448, "simulation shared memory");

__global__ void __launch_bounds__(256, 1) schedule_kernel(int blocks, long long* cycles, float* sink) {
  using flashmla::device::named_barrier_arrive;
  using flashmla::device::named_barrier_sync;
  extern __shared__ __align__(1024) char smem_raw[];
  SimSmem& smem = *reinterpret_cast<SimSmem*>(smem_raw);
  zero_shared(smem_raw, int(sizeof(SimSmem)));
  const long long t0 = clock64();
  const int wg = threadIdx.x / 128;
  const int tid_wg = threadIdx.x % 128;
  const int lane = threadIdx.x % 32;
  Tensor sQ = make_tensor(make_smem_ptr(smem.k + 2 * 64 * 576), Cfg::SmemLayoutQ{});
  Tensor sK = make_tensor(make_smem_ptr(smem.k), Cfg::SmemLayoutK{});
  Cfg::TiledMmaQK mma_qk;
  auto thr_qk = mma_qk.get_thread_slice(tid_wg);
  Tensor tSrQ = thr_qk.partition_fragment_A(sQ);
  Tensor tSrS = partition_fragment_C(mma_qk, Shape<Int<64>, Int<64>>{});
  Tensor tOrO = flashmla::kernels::make_output_accumulator<Cfg>();
  clear(tOrO);
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.f, 0.f};
  const float scale_log2 = 0.0625f;
  const int r0 = flashmla::device::wgmma_accumulator_coord(tid_wg, 0).row;
  const int rows[2] = {r0, r0 + 8};
  auto block_max_of = [&](float (&m)[2]) {
    m[0] = m[1] = -INFINITY;
    CUTE_UNROLL
    for (int i = 0; i < 32; ++i) m[(i / 2) % 2] = fmaxf(m[(i / 2) % 2], tSrS(i));
  };
  constexpr uint32_t kReady = 1, kFree = 2;
  if (wg == 0) {
    for (int n = 0; n < blocks; ++n) {
      const int st = n % 2;
      flashmla::device::gemm_async(mma_qk, tSrQ, thr_qk.partition_fragment_B(sK(_, _, st)), tSrS, true);
      warpgroup_wait<0>();
      float block_max[2], rescale[2];
      block_max_of(block_max);
      flashmla::kernels::online_softmax_step(tSrS, block_max, row_max, row_sum, rescale, scale_log2);
      flashmla::kernels::rescale_output(tOrO, rescale);
      auto tOrP = flashmla::kernels::make_p_operand<Cfg>(tSrS, tid_wg);
      flashmla::kernels::issue_pv_from_registers<Cfg>(tOrP, smem.k, st, 0, tid_wg, tOrO);
      if (n >= 1) named_barrier_sync(kFree, 256);  // the value warpgroup is done with P(n - 1)
      flashmla::kernels::store_p_tile<Element>(reinterpret_cast<char*>(smem.p0), tSrS, tid_wg);
      if (lane % 4 == 0) smem.scale0[rows[0]] = rescale[0], smem.scale0[rows[1]] = rescale[1];
      flashmla::device::fence_proxy_async_shared_cta();
      named_barrier_arrive(kReady, 256);
      warpgroup_wait<0>();
    }
  } else {
    for (int n = 0; n < blocks; ++n) {
      named_barrier_sync(kReady, 256);
      const float rescale[2] = {smem.scale0[rows[0]], smem.scale0[rows[1]]};
      flashmla::kernels::rescale_output(tOrO, rescale);
      flashmla::kernels::accumulate_pv<Cfg>(smem.p0, smem.k, n % 2, 1, tid_wg, tOrO);
      if (n + 1 < blocks) named_barrier_arrive(kFree, 256);
    }
  }
  float v = row_sum[0] + row_sum[1];
  CUTE_UNROLL
  for (int i = 0; i < size(tOrO); ++i) v += tOrO(i);
  record_cycles(t0, v, cycles, sink);
}

int run_schedule(const char* what, int ctas, int blocks, long long* d_cycles, float* d_sink,
                 std::vector<long long>& host) {
  if (cudaFuncSetAttribute(schedule_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(sizeof(SimSmem))) !=
      cudaSuccess)
    return 1;
  const double flops = 2.0 * 64 * 64 * (576 + 512) * blocks;
  auto launch = [&](int) { schedule_kernel<<<ctas, 256, sizeof(SimSmem)>>>(blocks, d_cycles, d_sink); };
  return time_and_report(what, "block", ctas, blocks, flops, launch, d_cycles, host);
}


// ---------------------------------------------------------------------------
// three: the softmax hidden behind P V without holding a KV stage longer.
// A score warpgroup owns no part of O: it holds Q's 512 NoPE dims in
// registers (128 registers; Q K^T as RS wgmma, the RoPE k-tile SS), computes
// S over 32-key blocks (HGMMA.64x32x16: with A from registers, B is 1 KB per
// 16-cycle wgmma, half the shared-memory bandwidth), the softmax, and P into
// the block's own RoPE tile (dead once its Q K^T is done); it issues the
// next block's Q K^T *before* it publishes P, so the tensor pipe runs that
// Q K^T, then both value warpgroups' P V of this block while it computes the
// next softmax. Two value warpgroups each own half of O (P from shared
// memory, SS). Four 32-key stages (36 KB each) beside q (72 KB): a stage is
// held from its load to its P V as now, but refilled three blocks ahead.
// Per 64 keys: tensor work 2176 cycles; the score warpgroup's chain is
// 2 x (Q K^T 576 + softmax and P store), so it stays under the pipe if a
// 32-key softmax and P store take less than the 512 cycles of P V.
// Measured on an H200 (thirteenth session, dense README): 32-key blocks
// 2,727 cycles per 64 keys (an m64n32 RS Q K^T spends ~870 cycles in the
// pipe, not 576), 64-key blocks with q's k-tiles 0-6 in registers 2,324
// (93.6% of the tensor peak) against 2,850 for the kernel's schedule. All
// eight NoPE k-tiles in registers do not fit the score warpgroup's 184
// (ptxas spills and serializes, C7512).
namespace three {
// The shared-memory map for kKeys keys per stage (32: P 64 x 32 with the
// 64-byte swizzle; 64: the kernel's 64 x 64 tile) and kStages stages. With
// 64-key stages q does not fit beside three of them: the simulation aliases
// it onto stage 0 (values do not matter here; a kernel would keep only the
// RoPE tile, 8 KB, since the other eight k-tiles live in registers).
template <int kKeys_, int kStages_>
struct Map {
  static constexpr int kKeys = kKeys_;
  static constexpr int kStages = kStages_;
  using SmemLayoutK = decltype(tile_to_shape(Cfg::SmemLayoutAtom{}, Shape<Int<kKeys>, Int<576>, Int<kStages>>{}));
  using SmemLayoutVt = decltype(composition(
      SmemLayoutK{}, make_layout(Shape<Int<512>, Int<kKeys>, Int<kStages>>{}, Stride<Int<kKeys>, _1, Int<kKeys * 576>>{})));
  using PAtom = std::conditional_t<kKeys == 64, GMMA::Layout_K_SW128_Atom<Element>, GMMA::Layout_K_SW64_Atom<Element>>;
  using SmemLayoutP = decltype(tile_to_shape(PAtom{}, Shape<Int<64>, Int<kKeys>>{}));
  using MmaPV = decltype(make_tiled_mma(GMMA::ss_op_selector<Element, Element, float, Shape<_64, Int<256>, Int<kKeys>>,
                                                             GMMA::Major::K, GMMA::Major::MN>()));
  static constexpr int kStageElems = kKeys * 576;
  static constexpr int kRopeOffset = 8 * kKeys * 64;  // k-tile 8 of a stage: P's place once Q K^T is done
  static constexpr bool kQAliased = (64 + kStages * kKeys) * 576 * 2 > 225 * 1024;
  struct Smem {
    alignas(1024) Element q[kQAliased ? 1024 : 64 * 576];
    alignas(1024) Element k[cosize_v<SmemLayoutK>];
    float factor[kStages][64];
    alignas(8) uint64_t p_full[kStages];
    alignas(8) uint64_t stage_empty[kStages];
  };
  static_assert(sizeof(Smem) <= 232448, "three: shared memory");
  // Q's first kRegTiles k-tiles from registers (RS), the others and RoPE
  // from shared memory (SS).
  template <int kRegTiles>
  using MmaQKReg = decltype(make_tiled_mma(
      GMMA::rs_op_selector<Element, Element, float, Shape<_64, Int<kKeys>, Int<64 * kRegTiles>>>()));
  template <int kRegTiles>
  using MmaQKSmem = decltype(make_tiled_mma(
      GMMA::ss_op_selector<Element, Element, float, Shape<_64, Int<kKeys>, Int<64 * (9 - kRegTiles)>>>()));
};

// kTwoS: two score fragments; the Q K^T of block n + 1 is issued before the
// softmax of block n (into the other fragment) and waited for after it, so
// the softmax overlaps that Q K^T as well as the P V of block n - 1.
// kValuePV = false: the value warpgroups only hand the stages back (the
// score warpgroup's own chain).
template <typename M, int kScoreRegs, int kValueRegs, bool kTwoS, bool kValuePV, int kRegTiles>
__global__ void __launch_bounds__(384, 1) kernel(int blocks, long long* cycles, float* sink) {
  using namespace flashmla::device;
  using Smem = typename M::Smem;
  constexpr int kKeys = M::kKeys, kStages = M::kStages, kStageElems = M::kStageElems, kRopeOffset = M::kRopeOffset;
  using SmemLayoutP = typename M::SmemLayoutP;
  using SmemLayoutVt = typename M::SmemLayoutVt;
  using MmaPV = typename M::MmaPV;
  extern __shared__ __align__(1024) char smem_raw[];
  Smem& smem = *reinterpret_cast<Smem*>(smem_raw);
  zero_shared(smem_raw, int(sizeof(Smem)));
  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) mbarrier_init(&smem.p_full[s], 4), mbarrier_init(&smem.stage_empty[s], 8);
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();
  const long long t0 = clock64();
  const int wg = threadIdx.x / 128;
  const int tid_wg = threadIdx.x % 128;
  const int lane = threadIdx.x % 32;
  float v = 0.f;
  if (wg == 0) {
    set_warpgroup_registers<168, kScoreRegs>();
    using Atom = Cfg::SmemLayoutAtom;
    Element* q = M::kQAliased ? smem.k : smem.q;
    Tensor sQn = make_tensor(make_smem_ptr(q), tile_to_shape(Atom{}, Shape<_64, Int<64 * kRegTiles>>{}));
    Tensor sQr = make_tensor(make_smem_ptr(q + kRegTiles * 64 * 64),
                             tile_to_shape(Atom{}, Shape<_64, Int<64 * (9 - kRegTiles)>>{}));
    typename M::template MmaQKReg<kRegTiles> mma_n;
    typename M::template MmaQKSmem<kRegTiles> mma_r;
    auto thr_n = mma_n.get_thread_slice(tid_wg);
    auto thr_r = mma_r.get_thread_slice(tid_wg);
    Tensor tArQ = thr_n.partition_fragment_A(sQn);  // 16 registers a k-tile
    {
      // ldmatrix straight into the A fragment's layout.
      auto q_copy = make_tiled_copy_A(Copy_Atom<SM75_U32x4_LDSM_N, Element>{}, mma_n);
      auto thr_copy = q_copy.get_thread_slice(tid_wg);
      cute::copy(q_copy, thr_copy.partition_S(sQn), thr_copy.retile_D(tArQ));
    }
    Tensor tArQr = thr_r.partition_fragment_A(sQr);
    Tensor tSrS0 = partition_fragment_C(mma_n, Shape<_64, Int<kKeys>>{});  // 16 registers
    Tensor tSrS1 = partition_fragment_C(mma_n, Shape<_64, Int<kKeys>>{});
    float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.f, 0.f};
    const float scale_log2 = 0.0625f;
    const int r0 = wgmma_accumulator_coord(tid_wg, 0).row;
    auto issue_qk = [&](int n, auto& acc) {
      Element* kst = smem.k + (n % kStages) * kStageElems;
      Tensor sKn = make_tensor(make_smem_ptr(kst), tile_to_shape(Atom{}, Shape<Int<kKeys>, Int<64 * kRegTiles>>{}));
      Tensor sKr = make_tensor(make_smem_ptr(kst + kRegTiles * kKeys * 64),
                               tile_to_shape(Atom{}, Shape<Int<kKeys>, Int<64 * (9 - kRegTiles)>>{}));
      warpgroup_fence_operand(acc);
      warpgroup_arrive();
      mma_n.accumulate_ = GMMA::ScaleOut::Zero;
      Tensor tB = thr_n.partition_fragment_B(sKn);
      CUTE_UNROLL
      for (int k = 0; k < size<2>(tArQ); ++k) {
        cute::gemm(mma_n, tArQ(_, _, k), tB(_, _, k), acc);
        mma_n.accumulate_ = GMMA::ScaleOut::One;
      }
      mma_r.accumulate_ = GMMA::ScaleOut::One;
      Tensor tBr = thr_r.partition_fragment_B(sKr);
      CUTE_UNROLL
      for (int k = 0; k < size<2>(tArQr); ++k) cute::gemm(mma_r, tArQr(_, _, k), tBr(_, _, k), acc);
      warpgroup_commit_batch();
      warpgroup_fence_operand(acc);
    };
    // Softmax of block n in `acc`, P into the block's RoPE tile, the factors
    // beside it; `next` is issued (Q K^T of block n + 1) before P is
    // published, so that the pipe takes it before this block's P V.
    auto softmax_publish = [&](int n, auto& acc, auto&& next) {
      const int st = n % kStages;
      float m[2] = {-INFINITY, -INFINITY};
      CUTE_UNROLL
      for (int i = 0; i < size(acc); ++i) m[(i / 2) % 2] = fmaxf(m[(i / 2) % 2], acc(i));
      float max_used[2], rescale[2];
      CUTE_UNROLL
      for (int h = 0; h < 2; ++h) {
        m[h] = fmaxf(m[h], __shfl_xor_sync(0xffffffffu, m[h], 1));
        m[h] = fmaxf(m[h], __shfl_xor_sync(0xffffffffu, m[h], 2));
        const float new_max = fmaxf(row_max[h], m[h] * scale_log2);
        max_used[h] = new_max == -INFINITY ? 0.f : new_max;
        rescale[h] = exp2_ftz(row_max[h] - max_used[h]);
        row_max[h] = new_max;
        row_sum[h] *= rescale[h];
      }
      CUTE_UNROLL
      for (int i = 0; i < size(acc); ++i) {
        const float p = exp2_ftz(fmaf(acc(i), scale_log2, -max_used[i / 2 % 2]));
        acc(i) = p;
        row_sum[i / 2 % 2] += p;
      }
      // The value warpgroups are done with P(n - kStages) in this RoPE tile
      // (a kernel's refill of the stage implies it).
      if (n >= kStages) mbarrier_wait_parity(&smem.stage_empty[st], ((n / kStages) - 1) & 1);
      // P as a 64 x kKeys K-major tile (SmemLayoutP's swizzle).
      const uint32_t p_tile = smem_address(smem.k + st * kStageElems + kRopeOffset);
      CUTE_UNROLL
      for (int i = 0; i < size(acc); i += 2) {
        const FragmentCoord c = wgmma_accumulator_coord(tid_wg, i);
        const uint32_t o = uint32_t(c.row * kKeys * 2 + c.col * 2);
        const uint32_t sw = kKeys == 64 ? (o ^ ((o >> 3) & 0x70u)) : (o ^ ((o >> 3) & 0x30u));
        asm volatile("st.shared.u32 [%0], %1;" ::"r"(p_tile + sw),
                     "r"(pack_pair<Element>(acc(i), acc(i + 1))) : "memory");
      }
      if (lane % 4 == 0) smem.factor[st][r0] = rescale[0], smem.factor[st][r0 + 8] = rescale[1];
      fence_proxy_async_shared_cta();
      next();
      __syncwarp();
      if (lane == 0) mbarrier_arrive(&smem.p_full[st]);
    };
    issue_qk(0, tSrS0);
    warpgroup_wait<0>();
    if constexpr (kTwoS) {
      for (int n = 0; n < blocks; n += 2) {
        issue_qk(n + 1, tSrS1);
        softmax_publish(n, tSrS0, [] {});
        warpgroup_wait<0>();
        issue_qk(n + 2, tSrS0);
        softmax_publish(n + 1, tSrS1, [] {});
        warpgroup_wait<0>();
      }
    } else {
      for (int n = 0; n < blocks; ++n) {
        softmax_publish(n, tSrS0, [&] { issue_qk(n + 1, tSrS0); });
        warpgroup_wait<0>();
      }
    }
    v = row_sum[0] + row_sum[1];
  } else {
    set_warpgroup_registers<168, kValueRegs>();
    const int half = wg - 1;
    MmaPV mma_pv;
    auto thr_pv = mma_pv.get_thread_slice(tid_wg);
    Tensor tOrO = partition_fragment_C(mma_pv, Shape<_64, Int<256>>{});
    clear(tOrO);
    const int r0 = wgmma_accumulator_coord(tid_wg, 0).row;
    for (int n = 0; n < blocks; ++n) {
      const int st = n % kStages;
      mbarrier_wait_parity(&smem.p_full[st], (n / kStages) & 1);
      if constexpr (kValuePV) {
        const float rescale[2] = {smem.factor[st][r0], smem.factor[st][r0 + 8]};
        Tensor sP = make_tensor(make_smem_ptr(smem.k + st * kStageElems + kRopeOffset), SmemLayoutP{});
        Tensor sVt = make_tensor(make_smem_ptr(smem.k), SmemLayoutVt{});
        flashmla::kernels::rescale_output(tOrO, rescale);
        Tensor sVh = local_tile(sVt(_, _, st), Shape<Int<256>, Int<kKeys>>{}, make_coord(half, _0{}));
        gemm_async(mma_pv, thr_pv.partition_fragment_A(sP), thr_pv.partition_fragment_B(sVh), tOrO, false);
        warpgroup_wait<0>();
      }
      __syncwarp();
      if (lane == 0) mbarrier_arrive(&smem.stage_empty[st]);
    }
    CUTE_UNROLL
    for (int i = 0; i < size(tOrO); ++i) v += tOrO(i);
  }
  record_cycles(t0, v, cycles, sink);
}

// Cycles per 64 keys.
template <typename M, int kScoreRegs, int kValueRegs, bool kTwoS, bool kValuePV, int kRegTiles = 8>
int run(const char* what, int ctas, int keys, long long* d_cycles, float* d_sink, std::vector<long long>& host) {
  auto k = kernel<M, kScoreRegs, kValueRegs, kTwoS, kValuePV, kRegTiles>;
  using Smem = typename M::Smem;
  if (cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, int(sizeof(Smem))) != cudaSuccess) return 1;
  const int blocks = keys / M::kKeys;
  const double flops = 2.0 * 64 * keys * (576 + 512);
  auto launch = [&](int) { k<<<ctas, 384, sizeof(Smem)>>>(blocks, d_cycles, d_sink); };
  return time_and_report(what, "64key", ctas, keys / 64.0, flops, launch, d_cycles, host);
}
}  // namespace three

}  // namespace wgmma_rates

int main() {
  using namespace wgmma_rates;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  long long* d_cycles = nullptr;
  float* d_sink = nullptr;
  cudaMalloc(&d_cycles, sizeof(long long) * 1024);
  cudaMalloc(&d_sink, sizeof(float) * 1024);
  int sms = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  std::printf("# %s, %d SMs; iteration = one job of warpgroup 0; FLOP/cycle/SM over all warpgroups\n", prop.name,
              sms);
  std::vector<long long> host;
  const int n = 2000;
  // Mixed rows give the P V warpgroup as much tensor work as Q K^T's (36 x 32
  // cycles = 9/4 of 4 x 128), so that both overlap from start to end: both
  // halves of P V of a block in one warpgroup, which a kernel would split.
  const int pv_n = n * 9 / 4;
  const int one[3] = {n, 0, 0}, two[3] = {n, n, 0}, mixed[3] = {n, pv_n, 0};
  int rc = 0;
  for (int ctas : {1, sms}) {
    rc |= run_row<kQkSS, kNone, kNone>("qk_ss x1 WG", one, ctas, d_cycles, d_sink, host);
    rc |= run_row<kQkSS, kQkSS, kNone>("qk_ss x2 WG", two, ctas, d_cycles, d_sink, host);
    rc |= run_row<kQkRS, kNone, kNone>("qk_rs x1 WG", one, ctas, d_cycles, d_sink, host);
    rc |= run_row<kQkRS, kQkRS, kNone>("qk_rs x2 WG", two, ctas, d_cycles, d_sink, host);
    rc |= run_row<kPvSS, kNone, kNone>("pv_ss x1 WG", one, ctas, d_cycles, d_sink, host);
    rc |= run_row<kPvSS, kPvSS, kNone>("pv_ss x2 WG", two, ctas, d_cycles, d_sink, host);
    rc |= run_row<kPvRS, kNone, kNone>("pv_rs x1 WG", one, ctas, d_cycles, d_sink, host);
    rc |= run_row<kPvRS, kPvRS, kNone>("pv_rs x2 WG", two, ctas, d_cycles, d_sink, host);
    rc |= run_row<kQkSS, kPvSS, kNone>("qk_ss | pv_ss", mixed, ctas, d_cycles, d_sink, host);
    rc |= run_row<kQkSS, kPvRS, kNone>("qk_ss | pv_rs", mixed, ctas, d_cycles, d_sink, host);
    rc |= run_row<kQkRS, kPvSS, kNone>("qk_rs | pv_ss", mixed, ctas, d_cycles, d_sink, host);
    rc |= run_row<kQkRS, kPvRS, kNone>("qk_rs | pv_rs", mixed, ctas, d_cycles, d_sink, host);
  }
  std::printf("# block schedules, stand-in softmax, no loads; ideal 2176 cycles/block\n");
  for (int ctas : {1, sms}) {
    rc |= run_schedule("now: score(QK ss, PV_L rs) | value(PV_R ss)", ctas, 2000, d_cycles, d_sink, host);
    using M32 = three::Map<32, 4>;
    using M64 = three::Map<64, 3>;
    rc |= three::run<M32, 184, 160, false, true>("three n32: score(QK rs) | 2 x value(PV ss)", ctas, 128000, d_cycles, d_sink, host);
    rc |= three::run<M32, 184, 160, false, false>("three n32, no P V: score chain", ctas, 128000, d_cycles, d_sink, host);
    rc |= three::run<M64, 184, 160, false, true, 7>("three n64, Q k-tile 7 in smem", ctas, 128000, d_cycles, d_sink, host);
    rc |= three::run<M64, 184, 160, false, false, 7>("three n64 (7), no P V: score chain", ctas, 128000, d_cycles, d_sink, host);
    rc |= three::run<M32, 184, 160, true, true, 7>("three n32, two S, Q k-tile 7 in smem", ctas, 128000, d_cycles, d_sink, host);
  }
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess || rc) {
    std::fprintf(stderr, "error: %s\n", cudaGetErrorString(err));
    return 1;
  }
  return 0;
}
