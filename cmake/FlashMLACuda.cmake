# Compile flags for sm_90a device code, applied per target with
# flashmla_cuda_target(<target>).
#
# -gencode=arch=compute_90a,code=sm_90a: wgmma and setmaxnreg exist only on
#   the "a" target; no PTX is embedded, so nothing is JIT-compiled for other GPUs.
# -Xptxas=-v,-warn-spills,-warn-lmem-usage: the register/spill report of every
#   kernel is in the build log, and a spill or local-memory use is a warning.
# -lineinfo: source lines for ncu and compute-sanitizer, at no runtime cost.
set(FLASHMLA_CUDA_FLAGS
  -gencode=arch=compute_90a,code=sm_90a
  -Xptxas=-v,-warn-spills,-warn-lmem-usage
  -lineinfo
  --expt-relaxed-constexpr
  --expt-extended-lambda
  -Xcompiler=-Wall
  -diag-suppress=177)

function(flashmla_cuda_target target)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:${FLASHMLA_CUDA_FLAGS}>)
  set_target_properties(${target} PROPERTIES CUDA_SEPARABLE_COMPILATION OFF)
endfunction()
