"""flashmla._core without a GPU or torch: sizes, and argument validation through
the bindings (exact exception type and the library's message)."""

import subprocess
import sys

import numpy as np
import pytest

import flashmla
from flashmla import _core
from conftest import aligned, bf16, fp8

NUM_SMS = 132  # an H100 SXM; the sizes are pure functions of it


# ----- import and sizes -------------------------------------------------------------------------


def test_import_does_not_import_torch():
    code = "import sys, flashmla, flashmla.compat; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_version_and_meta_fields():
    assert flashmla.__version__ == _core.__version__
    assert flashmla.__version__.count(".") == 2
    assert flashmla.SCHEDULE_META_FIELDS == (
        "kind", "b", "s_q", "h_q", "h_kv", "topk", "extra_topk", "num_workers")


def test_plan_sizes_deepseek_example():
    # The worked example of decode_num_workers: 132 SMs, h_q 128, s_q 1, h_kv 1
    # -> two 64-row tiles, 66 workers.
    sizes = flashmla.plan_decode_sizes("dense", b=4, s_q=1, h_q=128, num_sms=NUM_SMS)
    assert sizes["num_workers"] == 66
    assert sizes["schedule_bytes"] > 0
    # Partials: (b + workers) slots of s_q * h_q rows of d_v fp32 plus their lse.
    rows = (4 + 66) * 1 * 128
    assert sizes["workspace_bytes"] >= rows * 512 * 4 + rows * 4


def test_plan_sizes_grow_with_batch():
    # Buffers sized at the largest batch serve every smaller one.
    previous = None
    for b in (1, 2, 7, 64, 512):
        sizes = flashmla.plan_decode_sizes("dense", b=b, s_q=2, h_q=16, num_sms=NUM_SMS)
        if previous is not None:
            assert sizes["schedule_bytes"] >= previous["schedule_bytes"]
            assert sizes["workspace_bytes"] >= previous["workspace_bytes"]
            assert sizes["num_workers"] == previous["num_workers"]
        previous = sizes


def test_describe_schedule_matches_sizes():
    meta = flashmla.describe_schedule("sparse", b=3, s_q=1, h_q=64, topk=2048, num_sms=NUM_SMS)
    sizes = flashmla.plan_decode_sizes("sparse", b=3, s_q=1, h_q=64, topk=2048, num_sms=NUM_SMS)
    assert meta == [1, 3, 1, 64, 1, 2048, 0, sizes["num_workers"]]


def test_plan_sizes_bad_kind():
    with pytest.raises(ValueError, match="kind: expected 'dense' or 'sparse', got 'mqa'"):
        flashmla.plan_decode_sizes("mqa", b=1, s_q=1, h_q=16, num_sms=NUM_SMS)


def test_no_gpu_is_reported():
    if flashmla.device_count() > 0:
        pytest.skip("a CUDA device is present")
    ok, reason = flashmla.is_device_supported(0)
    assert not ok and reason
    with pytest.raises((RuntimeError, ValueError)):
        flashmla.device_info(0)


# ----- dense_decode ------------------------------------------------------------------------------


def dense_args(b=2, s_q=1, h_q=16, h_kv=1, d_qk=576, d_v=512, page=64, num_blocks=4,
               max_blocks=2, dtype=np.float16, meta=None):
    """A valid dense_decode call on host arrays (as keyword arguments)."""
    meta = meta or flashmla.describe_schedule("dense", b=b, s_q=s_q, h_q=h_q, h_kv=h_kv,
                                              num_sms=NUM_SMS)
    sizes = flashmla.plan_decode_sizes("dense", b=max(b, 1), s_q=s_q, h_q=h_q, h_kv=h_kv,
                                       num_sms=NUM_SMS, d_v=d_v)
    return dict(
        q=aligned((b, s_q, h_q, d_qk), dtype),
        kv=aligned((num_blocks, page, h_kv, d_qk), dtype),
        block_table=aligned((b, max_blocks), np.int32),
        cache_seqlens=aligned((b,), np.int32),
        schedule=aligned((sizes["schedule_bytes"],), np.uint8),
        schedule_meta=meta,
        softmax_scale=576 ** -0.5,
        causal=False,
        out=aligned((b, s_q, h_q, d_v), dtype),
        lse=aligned((b, h_q, s_q), np.float32),
        workspace=aligned((sizes["workspace_bytes"],), np.uint8),
    )


def test_dense_valid_call_on_host_memory():
    with pytest.raises(ValueError, match="q: expected device memory, got host memory"):
        _core.dense_decode(**dense_args())


def test_dense_empty_batch_is_a_no_op():
    args = dense_args(b=0)
    assert _core.dense_decode(**args) is None


def test_dense_float32_rejected_by_library():
    args = dense_args(dtype=np.float32)
    with pytest.raises(ValueError, match=r"dtype \(of q and out\): expected bfloat16 or float16, got float32"):
        _core.dense_decode(**args)


def test_dense_int8_q():
    args = dense_args()
    args["q"] = aligned(args["q"].shape, np.int8)
    with pytest.raises(ValueError, match="q: expected dtype bfloat16 or float16, got int8"):
        _core.dense_decode(**args)


def test_dense_q_rank():
    args = dense_args()
    args["q"] = args["q"][0]
    with pytest.raises(ValueError, match=r"q: expected 4 dimensions \[b, s_q, h_q, d_qk\], got 3"):
        _core.dense_decode(**args)


def test_dense_kv_head_dim_mismatch():
    args = dense_args()
    args["kv"] = aligned((4, 64, 1, 512), np.float16)
    with pytest.raises(ValueError, match=r"kv: expected shape\[3\] = 576 \(d_qk of q\), got 512"):
        _core.dense_decode(**args)


def test_dense_kv_dtype_mismatch():
    args = dense_args()
    args["kv"] = aligned(args["kv"].shape, np.float32)
    with pytest.raises(ValueError, match="kv: expected dtype float16 \\(the dtype of q\\)"):
        _core.dense_decode(**args)


def test_dense_h_q_not_multiple_of_h_kv():
    args = dense_args(h_q=16, h_kv=3, meta=[0, 2, 1, 16, 3, 0, 0, 44])
    with pytest.raises(ValueError, match="h_q: expected a multiple of h_kv = 3, got 16"):
        _core.dense_decode(**args)


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf")])
def test_dense_bad_softmax_scale(scale):
    args = dense_args()
    args["softmax_scale"] = scale
    with pytest.raises(ValueError, match="softmax_scale: expected a finite value > 0"):
        _core.dense_decode(**args)


def test_dense_schedule_planned_for_another_batch():
    meta = flashmla.describe_schedule("dense", b=4, s_q=1, h_q=16, num_sms=NUM_SMS)
    args = dense_args(b=2, meta=meta)
    with pytest.raises(ValueError, match="schedule: planned for b = 4, called with b = 2"):
        _core.dense_decode(**args)


def test_dense_schedule_of_another_kind():
    meta = flashmla.describe_schedule("sparse", b=2, s_q=1, h_q=16, topk=64, num_sms=NUM_SMS)
    with pytest.raises(ValueError, match="schedule: planned for kind sparse, called with kind dense"):
        _core.dense_decode(**dense_args(meta=meta))


def test_dense_schedule_buffer_too_small():
    args = dense_args()
    args["schedule"] = aligned((16,), np.uint8)
    with pytest.raises(ValueError, match="schedule.bytes: expected >="):
        _core.dense_decode(**args)


def test_dense_schedule_meta_length():
    args = dense_args()
    args["schedule_meta"] = [0, 2, 1]
    with pytest.raises(ValueError, match="schedule_meta: expected 8 integers"):
        _core.dense_decode(**args)


def test_dense_workspace_too_small():
    args = dense_args()
    args["workspace"] = aligned((64,), np.uint8)
    with pytest.raises(ValueError, match="workspace: expected at least"):
        _core.dense_decode(**args)


def test_dense_page_size_not_supported():
    with pytest.raises(NotImplementedError, match="page_block_size: expected 64"):
        _core.dense_decode(**dense_args(page=32, num_blocks=8, max_blocks=4))


def test_dense_d_v_not_supported():
    with pytest.raises(NotImplementedError, match="d_v: expected 512"):
        _core.dense_decode(**dense_args(d_v=256))


def test_dense_s_q_not_supported():
    with pytest.raises(NotImplementedError, match="s_q: expected at most 128"):
        _core.dense_decode(**dense_args(b=1, s_q=129, h_q=1))


def dense_fp8_args(h_q=16):
    args = dense_args(h_q=h_q)
    args["q"] = bf16(args["q"].shape)
    args["out"] = bf16(args["out"].shape)
    args["kv"] = fp8((4, 64, 1, 656))
    return args


def test_dense_fp8_cache_is_supported():
    # Validation passes; host memory is the only thing wrong with the call.
    with pytest.raises(ValueError, match="q: expected device memory, got host memory"):
        _core.dense_decode(**dense_fp8_args())


def test_dense_fp8_cache_beyond_128_heads_not_supported():
    with pytest.raises(NotImplementedError,
                       match=r"h_q: expected at most 128 \(the FP8 kernels' limit with kv_format fp8_v32\), got 129"):
        _core.dense_decode(**dense_fp8_args(h_q=129))


def test_dense_fp8_cache_needs_bf16_q():
    args = dense_args()
    args["kv"] = aligned((4, 64, 1, 656), np.uint8)
    with pytest.raises(ValueError, match="expected bfloat16 with kv_format fp8_v32, got float16"):
        _core.dense_decode(**args)


def test_dense_bf16_valid_call_on_host_memory():
    args = dense_args()
    args["q"] = bf16(args["q"].shape)
    args["kv"] = bf16(args["kv"].shape)
    args["out"] = bf16(args["out"].shape)
    with pytest.raises(ValueError, match="q: expected device memory"):
        _core.dense_decode(**args)


def test_dense_out_dtype_mismatch():
    args = dense_args()
    args["out"] = aligned(args["out"].shape, np.float32)
    with pytest.raises(ValueError, match=r"out: expected dtype float16 \(the dtype of q\), got float32"):
        _core.dense_decode(**args)


def test_dense_lse_layout():
    args = dense_args(s_q=2)
    args["lse"] = aligned((2, 2, 16), np.float32)  # [b, s_q, h_q] instead of [b, h_q, s_q]
    with pytest.raises(ValueError, match=r"lse: expected shape\[1\] = 16 \(h_q of q\), got 2"):
        _core.dense_decode(**args)


def test_dense_block_table_dtype():
    args = dense_args()
    args["block_table"] = aligned(args["block_table"].shape, np.int64)
    with pytest.raises(ValueError, match="block_table: expected dtype int32, got int64"):
        _core.dense_decode(**args)


def test_dense_cache_seqlens_length():
    args = dense_args()
    args["cache_seqlens"] = aligned((3,), np.int32)
    with pytest.raises(ValueError, match=r"cache_seqlens: expected shape\[0\] = 2 \(b of q\), got 3"):
        _core.dense_decode(**args)


def test_dense_last_dim_not_contiguous():
    args = dense_args()
    args["q"] = aligned((2, 1, 16, 1152), np.float16)[..., ::2]
    with pytest.raises(ValueError, match="q: expected the last dimension .* contiguous .*got stride 2"):
        _core.dense_decode(**args)


def test_dense_misaligned_head_stride():
    args = dense_args()
    args["q"] = aligned((2, 1, 16, 580), np.float16)[..., :576]  # 1160-byte rows
    with pytest.raises(ValueError, match="stride_q_h: expected a multiple of 8 elements"):
        _core.dense_decode(**args)


def test_dense_strided_views_accepted():
    # A q slice out of a wider buffer with aligned strides, and a size-1 s_q
    # dimension with an arbitrary stride: valid (fails only on host memory).
    args = dense_args()
    args["q"] = aligned((2, 1, 16, 640), np.float16)[..., :576]
    args["lse"] = aligned((2, 1, 16), np.float32).transpose(0, 2, 1)
    with pytest.raises(ValueError, match="q: expected device memory"):
        _core.dense_decode(**args)


def test_dense_not_an_array():
    args = dense_args()
    args["q"] = [[1.0]]
    with pytest.raises(TypeError):
        _core.dense_decode(**args)


# ----- plan_decode --------------------------------------------------------------------------------


def plan_args(kind="dense", b=2, s_q=1, h_q=16, h_kv=1, topk=0, extra_topk=0, lengths=True):
    sizes = flashmla.plan_decode_sizes(kind, b=b, s_q=s_q, h_q=h_q, h_kv=h_kv, topk=topk,
                                       extra_topk=extra_topk, num_sms=NUM_SMS)
    return dict(schedule=aligned((sizes["schedule_bytes"],), np.uint8),
                lengths=aligned((b,), np.int32) if lengths else None, extra_lengths=None,
                kind=kind, b=b, s_q=s_q, h_q=h_q, h_kv=h_kv, topk=topk, extra_topk=extra_topk,
                num_sms=NUM_SMS)


def test_plan_valid_call_on_host_memory():
    with pytest.raises(ValueError, match="schedule: expected device memory, got host memory"):
        _core.plan_decode(**plan_args())


def test_plan_lengths_dtype():
    args = plan_args()
    args["lengths"] = aligned((2,), np.int64)
    with pytest.raises(ValueError, match="lengths: expected dtype int32, got int64"):
        _core.plan_decode(**args)


def test_plan_dense_needs_lengths():
    with pytest.raises(ValueError, match="lengths: expected a non-null pointer"):
        _core.plan_decode(**plan_args(lengths=False))


def test_plan_schedule_too_small():
    args = plan_args()
    args["schedule"] = aligned((16,), np.uint8)
    with pytest.raises(ValueError, match="schedule: expected at least"):
        _core.plan_decode(**args)


def test_plan_sparse_topk_not_supported():
    with pytest.raises(NotImplementedError, match="topk: expected a multiple of 64"):
        _core.plan_decode(**plan_args(kind="sparse", h_q=64, topk=100, lengths=False))


def test_plan_sparse_needs_one_kv_head():
    with pytest.raises(ValueError, match="h_kv: expected 1 for a sparse plan, got 2"):
        _core.plan_decode(**plan_args(kind="sparse", h_q=64, h_kv=2, topk=128, lengths=False))


def test_plan_sparse_without_lengths_is_valid():
    with pytest.raises(ValueError, match="schedule: expected device memory"):
        _core.plan_decode(**plan_args(kind="sparse", h_q=64, topk=128, lengths=False))


# ----- sparse_decode --------------------------------------------------------------------------------


def sparse_decode_args(b=2, s_q=1, h_q=64, topk=128, token_bytes=656, page=64, num_blocks=4):
    d_qk = 576 if token_bytes == 656 else 512
    meta = flashmla.describe_schedule("sparse", b=b, s_q=s_q, h_q=h_q, topk=topk, num_sms=NUM_SMS)
    sizes = flashmla.plan_decode_sizes("sparse", b=b, s_q=s_q, h_q=h_q, topk=topk, num_sms=NUM_SMS)
    return dict(
        q=bf16((b, s_q, h_q, d_qk)), kv=fp8((num_blocks, page, 1, token_bytes)),
        indices=aligned((b, s_q, topk), np.int32), topk_length=None, attn_sink=None,
        extra_kv=None, extra_indices=None, extra_topk_length=None,
        schedule=aligned((sizes["schedule_bytes"],), np.uint8), schedule_meta=meta,
        softmax_scale=d_qk ** -0.5, out=bf16((b, s_q, h_q, 512)),
        lse=aligned((b, h_q, s_q), np.float32),
        workspace=aligned((sizes["workspace_bytes"],), np.uint8))


@pytest.mark.parametrize("token_bytes", [656, 584])
def test_sparse_decode_valid_call_on_host_memory(token_bytes):
    with pytest.raises(ValueError, match="q: expected device memory"):
        _core.sparse_decode(**sparse_decode_args(token_bytes=token_bytes))


def test_sparse_decode_needs_bf16_q():
    args = sparse_decode_args()
    args["q"] = aligned((2, 1, 64, 576), np.float16)
    with pytest.raises(ValueError, match="q: expected dtype bfloat16, got float16"):
        _core.sparse_decode(**args)


def test_sparse_decode_unknown_token_size():
    args = sparse_decode_args()
    args["kv"] = fp8((4, 64, 1, 600))
    with pytest.raises(ValueError, match=r"kv: expected shape\[3\] = 656 \(fp8_v32\) or 584"):
        _core.sparse_decode(**args)


def test_sparse_decode_too_many_heads():
    with pytest.raises(NotImplementedError, match="h_q: expected at most 128"):
        _core.sparse_decode(**sparse_decode_args(h_q=256))


def test_sparse_decode_extra_indices_without_extra_kv():
    args = sparse_decode_args()
    args["extra_indices"] = aligned((2, 1, 64), np.int32)
    with pytest.raises(ValueError, match="extra_indices: expected nullptr without extra_kv"):
        _core.sparse_decode(**args)


# ----- sparse_prefill and combine ---------------------------------------------------------------------


def sparse_prefill_args(s_q=4, s_kv=256, h_q=64, topk=128, d_qk=576):
    return dict(q=bf16((s_q, h_q, d_qk)), kv=bf16((s_kv, 1, d_qk)),
                indices=aligned((s_q, 1, topk), np.int32), attn_sink=None, topk_length=None,
                softmax_scale=d_qk ** -0.5, out=bf16((s_q, h_q, 512)),
                max_logits=aligned((s_q, h_q), np.float32), lse=aligned((s_q, h_q), np.float32))


def test_sparse_prefill_valid_call_on_host_memory():
    with pytest.raises(ValueError, match="q: expected device memory"):
        _core.sparse_prefill(**sparse_prefill_args())


def test_sparse_prefill_topk_not_supported():
    with pytest.raises(NotImplementedError, match="topk: expected a multiple of 64"):
        _core.sparse_prefill(**sparse_prefill_args(topk=100))


def test_sparse_prefill_attn_sink_shape():
    args = sparse_prefill_args()
    args["attn_sink"] = aligned((32,), np.float32)
    with pytest.raises(ValueError, match=r"attn_sink: expected shape\[0\] = 64 \(h_q of q\), got 32"):
        _core.sparse_prefill(**args)


def combine_args(num_splits=3, b=2, s_q=1, h_q=16, d_v=512, partial=np.float32):
    return dict(out_partial=aligned((num_splits, b, s_q, h_q, d_v), partial),
                lse_partial=aligned((num_splits, b, h_q, s_q), np.float32), attn_sink=None,
                out=aligned((b, s_q, h_q, d_v), np.float16), lse=aligned((b, h_q, s_q), np.float32))


def test_combine_valid_call_on_host_memory():
    with pytest.raises(ValueError, match="out_partial: expected device memory"):
        _core.combine(**combine_args())


def test_combine_d_v_not_supported():
    with pytest.raises(NotImplementedError, match="d_v: expected 512"):
        _core.combine(**combine_args(d_v=256))


def test_combine_lse_partial_splits():
    args = combine_args()
    args["lse_partial"] = aligned((2, 2, 16, 1), np.float32)
    with pytest.raises(ValueError, match=r"lse_partial: expected shape\[0\] = 3 \(num_splits of out_partial\), got 2"):
        _core.combine(**args)
