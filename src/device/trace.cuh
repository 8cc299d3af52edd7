// Phase stamps: where a short kernel's time goes, in globaltimer
// nanoseconds, one slot per (CTA, phase). Compiled in only when the build is
// configured with -DFLASHMLA_TRACE=ON (a measurement build: the stamps are
// global stores on the kernels' paths); otherwise every stamp is nothing and
// the kernels are the release kernels. Host side: kernels/trace.h.
#pragma once

#include <cstdint>

namespace flashmla::device {

constexpr int kTraceSlots = 16;   // phases per CTA
constexpr int kTraceCtas = 4096;  // CTAs traced per kernel (linear block index)

// The phases each kernel stamps (scripts/trace_summary.py names them alike).
enum DecodeTraceSlot : int {
  kTraceEntry = 0,
  kTraceReady = 1,           // barriers initialised, the previous grid done
  kTraceFirstQ = 2,          // the first piece's q landed
  kTraceFirstBlock = 3,      // the first KV block landed
  kTraceFirstBlocksDone = 4,  // the first piece's blocks done (score warpgroup)
  kTraceFirstStoredScores = 5,
  kTraceFirstStoredValues = 6,
  kTraceScoresDone = 7,
  kTraceValuesDone = 8,
  kTraceExit = 9,
  kTraceLastLoadIssued = 10,  // the producer's
};
enum CombineTraceSlot : int {
  kTraceCombineEntry = 0,
  kTraceCombineReady = 1,  // the decode grid done (after the dependency wait)
  kTraceCombineFirstRow = 2,
};

#if FLASHMLA_TRACE
__device__ __forceinline__ uint64_t global_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__device__ __forceinline__ void trace_stamp(uint64_t* stamps, int slot) {
  const uint64_t cta = blockIdx.x + uint64_t(gridDim.x) * (blockIdx.y + uint64_t(gridDim.y) * blockIdx.z);
  if (stamps != nullptr && cta < uint64_t(kTraceCtas)) stamps[cta * kTraceSlots + slot] = global_ns();
}
#define FLASHMLA_TRACE_STAMP(stamps, slot) ::flashmla::device::trace_stamp((stamps), (slot))
#else
#define FLASHMLA_TRACE_STAMP(stamps, slot) \
  do {                                     \
  } while (0)
#endif

}  // namespace flashmla::device
