# Sourced by the Nsight Compute scripts (profile.sh, cycles.sh): the kernel
# that runs a benchmark case, as an ncu -k filter, for this library and for
# FlashMLA's own build. Unknown cases return 1.

# This library's kernel of CASE.
ours_kernel() {
  case "$1" in
    D*) echo "regex:dense_decode_kernel" ;;
    S05|S06) echo "regex:sparse_decode_small_kernel" ;;  # h_q <= 32: heads on the wgmma N dimension
    S*) echo "regex:sparse_decode_kernel" ;;
    P*) echo "regex:sparse_prefill_kernel" ;;
    *) return 1 ;;
  esac
}

# FlashMLA's kernel of CASE (flashmla-bench --against-flashmla).
peer_kernel() {
  case "$1" in
    D*) echo "regex:flash_fwd_splitkv_mla_kernel" ;;
    S*) echo "regex:flash_fwd_splitkv_mla_fp8_sparse_kernel" ;;
    P*) echo "regex:sparse_attn_fwd_kernel" ;;
    *) return 1 ;;
  esac
}
