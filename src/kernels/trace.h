// Host side of the phase stamps (device/trace.cuh), in measurement builds
// only (-DFLASHMLA_TRACE=ON). Run any program on such a build with
// FLASHMLA_TRACE_DUMP=<file>: at exit the stamps of the last call of each
// traced kernel are written there as CSV (kernel,cta,slot,ns), for
// scripts/trace_summary.py.
#pragma once

#include <cstdint>

namespace flashmla::kernels {

enum class TraceKernel : int { kDenseDecode = 0, kScheduledCombine = 1 };

#if FLASHMLA_TRACE
// The device buffer of `kernel`'s stamps ([kTraceCtas][kTraceSlots], 0 =
// never reached), allocated and zeroed at the first call, which therefore
// must not be inside a stream capture (flashmla-bench's first call is
// eager); nullptr when that failed (the kernels then stamp nothing).
uint64_t* trace_stamps(TraceKernel kernel);
#endif

}  // namespace flashmla::kernels
