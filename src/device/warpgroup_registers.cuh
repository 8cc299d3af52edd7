// setmaxnreg for warp-specialized kernels: moves a warpgroup from the
// registers per thread the CTA launched with to `kCount`. PTX requires a
// multiple of 8 in [24, 256], `.inc` only upward and `.dec` only downward:
// an `.inc` to fewer registers than the warp holds is an illegal instruction
// at run time (sparse decode's value warpgroup hit it), so the direction is
// chosen here from the counts, and bad counts fail to compile.
#pragma once

#include <cutlass/arch/reg_reconfig.h>

namespace flashmla::device {

// Registers per thread of a CTA of `threads` threads with one CTA per SM
// (__launch_bounds__(threads, 1)): the 64 Ki register file split evenly,
// rounded down to the allocation granule of 8, at most 255 (ptxas's cap).
constexpr int launch_registers(int threads) {
  const int even = (65536 / threads) / 8 * 8;
  return even > 255 ? 255 : even;
}

template <int kLaunch, int kCount>
__device__ __forceinline__ void set_warpgroup_registers() {
  static_assert(kCount % 8 == 0 && kCount >= 24 && kCount <= 256,
                "setmaxnreg takes a multiple of 8 in [24, 256]");
  if constexpr (kCount > kLaunch) {
    cutlass::arch::warpgroup_reg_alloc<kCount>();
  } else if constexpr (kCount < kLaunch) {
    cutlass::arch::warpgroup_reg_dealloc<kCount>();
  }
}

}  // namespace flashmla::device
