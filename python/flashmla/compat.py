"""FlashMLA's Python API on FlashMLA-cpp: ``import flashmla.compat as flash_mla``.

Same names, signatures, defaults and return conventions as FlashMLA's
``flash_mla`` package (the lazily planned ``FlashMLASchedMeta`` API):

- ``get_mla_metadata(*args, **kwargs) -> (FlashMLASchedMeta, None)``; the
  arguments are accepted and ignored.
- ``flash_mla_with_kvcache(...) -> (out, lse)``: the first call with a fresh
  metadata object plans the step on the GPU (from ``cache_seqlens``, or
  ``topk_length`` for sparse decode) into buffers it keeps; later calls with
  the same object reuse the plan, after checking that their configuration
  matches (``ValueError`` otherwise). Create a new object whenever the
  lengths change, i.e. once per decoding step, and reuse it for every layer.
- ``flash_mla_sparse_fwd(...) -> (out, max_logits, lse)``.

lse is ``[b, h_q, s_q]`` (``[s_q, h_q]`` for the prefill), natural log, with
``+inf`` for a row with no key, as FlashMLA returns it. Dense decode also
takes an FP8 k_cache in the V32 layout (656 bytes a token, as sparse decode
reads it), which FlashMLA's dense kernel does not. Valid inputs that no
compiled kernel serves (FP8 dense with more than 128 heads, d_v other than 512)
raise ``NotImplementedError`` with the library's message.

Importing this module does not import torch; calling a function does.
"""

import dataclasses
from typing import Any, Optional, Tuple

__all__ = [
    "FlashMLASchedMeta",
    "get_mla_metadata",
    "flash_mla_with_kvcache",
    "flash_mla_sparse_fwd",
]


@dataclasses.dataclass
class FlashMLASchedMeta:
    """Decode metadata, planned by the first ``flash_mla_with_kvcache`` call that receives it."""

    @dataclasses.dataclass
    class Config:
        b: int
        s_q: int
        h_q: int
        page_block_size: int
        h_k: int
        causal: bool
        is_fp8_kvcache: bool
        topk: Optional[int]
        extra_page_block_size: Optional[int]
        extra_topk: Optional[int]

    have_initialized: bool = False
    config: Optional[Config] = None
    # The schedule buffer (uint8 on the device) once planned. FlashMLA keeps
    # its own metadata tensors here; programs only pass the object along.
    tile_scheduler_metadata: Any = None
    num_splits: Any = None
    # The flashmla.ops.DecodePlan that owns the schedule and the workspace.
    plan: Any = dataclasses.field(default=None, repr=False)


def get_mla_metadata(*args, **kwargs) -> Tuple[FlashMLASchedMeta, None]:
    """Returns a fresh, unplanned ``FlashMLASchedMeta`` and ``None``; arguments are ignored."""
    return FlashMLASchedMeta(), None


def _set_empty_lse_to_inf(lse):
    # The library marks a row with no key with lse = -inf; FlashMLA with +inf.
    # In place and allocation-free (NaN stays NaN), so CUDA graphs are fine.
    return lse.nan_to_num_(nan=float("nan"), posinf=float("inf"), neginf=float("inf"))


def _require_none(**tensors) -> None:
    for name, value in tensors.items():
        if value is not None:
            raise ValueError(f"{name}: expected None for dense decode (indices is None), got a tensor")


def flash_mla_with_kvcache(
    q,
    k_cache,
    block_table,
    cache_seqlens,
    head_dim_v: int,
    tile_scheduler_metadata: FlashMLASchedMeta,
    num_splits: None = None,
    softmax_scale: Optional[float] = None,
    causal: bool = False,
    is_fp8_kvcache: bool = False,
    indices=None,
    attn_sink=None,
    extra_k_cache=None,
    extra_indices_in_kvcache=None,
    topk_length=None,
    extra_topk_length=None,
):
    """Decode attention over a paged KV cache; returns ``(out, lse)``.

    Dense when ``indices`` is None: q [b, s_q, h_q, d_qk], k_cache
    [num_blocks, page_block_size, h_k, d_qk], block_table [b, max_blocks] int32,
    cache_seqlens [b] int32; with ``is_fp8_kvcache=True`` k_cache is an FP8 cache
    in the V32 layout ([num_blocks, page_block_size, 1, 656] bytes, q bf16).
    Sparse otherwise: indices [b, s_q, topk] int32
    into an FP8 k_cache (``is_fp8_kvcache=True``, ``causal=False``).
    ``softmax_scale`` defaults to ``q.shape[-1] ** -0.5``.
    """
    import torch  # noqa: F401  (the ops need it; fail here with a plain ImportError)

    from . import ops

    meta = tile_scheduler_metadata
    if not isinstance(meta, FlashMLASchedMeta):
        raise TypeError("tile_scheduler_metadata: expected the FlashMLASchedMeta of get_mla_metadata(), "
                        f"got {type(meta).__name__}")
    if num_splits is not None:
        raise ValueError("num_splits: expected None (the schedule lives in tile_scheduler_metadata)")
    if softmax_scale is None:
        softmax_scale = q.shape[-1] ** -0.5
    b, s_q, h_q = q.shape[0], q.shape[1], q.shape[2]
    sparse = indices is not None

    if sparse:
        if causal:
            raise ValueError("causal: expected False for sparse decode (indices given), got True")
        if not is_fp8_kvcache:
            raise ValueError("is_fp8_kvcache: expected True for sparse decode (indices given), got False")
        extra_topk = extra_indices_in_kvcache.shape[-1] if extra_indices_in_kvcache is not None else None
        config = FlashMLASchedMeta.Config(
            b, s_q, h_q, k_cache.shape[1], k_cache.shape[2], causal, is_fp8_kvcache,
            indices.shape[-1], extra_k_cache.shape[1] if extra_k_cache is not None else None,
            extra_topk)
    else:
        _require_none(attn_sink=attn_sink, extra_k_cache=extra_k_cache,
                      extra_indices_in_kvcache=extra_indices_in_kvcache, topk_length=topk_length,
                      extra_topk_length=extra_topk_length)
        if block_table is None or cache_seqlens is None:
            raise ValueError("block_table, cache_seqlens: expected tensors for dense decode, got None")
        fp8_cache = k_cache.element_size() == 1
        if bool(is_fp8_kvcache) != fp8_cache:
            raise ValueError(f"is_fp8_kvcache: expected {fp8_cache} for a k_cache of dtype {k_cache.dtype}, "
                             f"got {is_fp8_kvcache}")
        config = FlashMLASchedMeta.Config(b, s_q, h_q, k_cache.shape[1], k_cache.shape[2], causal,
                                          is_fp8_kvcache, None, None, None)

    if not meta.have_initialized:
        if sparse:
            plan = ops.DecodePlan("sparse", max_b=b, s_q=s_q, h_q=h_q, h_kv=1,
                                  topk=config.topk, extra_topk=config.extra_topk or 0,
                                  d_v=head_dim_v, device=q.device)
            plan.plan(topk_length, extra_topk_length, b=b)
        else:
            plan = ops.DecodePlan("dense", max_b=b, s_q=s_q, h_q=h_q, h_kv=config.h_k,
                                  d_v=head_dim_v, device=q.device)
            plan.plan(cache_seqlens)
        meta.config = config
        meta.plan = plan
        meta.tile_scheduler_metadata = plan.schedule
        meta.have_initialized = True
    elif meta.config != config:
        raise ValueError(
            f"tile_scheduler_metadata: planned for {meta.config}, called with {config}; create a "
            "new one with get_mla_metadata() for each decoding step and configuration")

    if sparse:
        out, lse = ops.sparse_decode(
            q, k_cache, indices, meta.plan, softmax_scale, topk_length=topk_length,
            attn_sink=attn_sink, extra_kv_cache=extra_k_cache,
            extra_indices=extra_indices_in_kvcache, extra_topk_length=extra_topk_length)
    else:
        out, lse = ops.dense_decode(q, k_cache, block_table, cache_seqlens, meta.plan,
                                    softmax_scale, causal)
    return out, _set_empty_lse_to_inf(lse)


def flash_mla_sparse_fwd(q, kv, indices, sm_scale: float, d_v: int = 512, attn_sink=None,
                         topk_length=None):
    """Sparse prefill; returns ``(out [s_q, h_q, d_v], max_logits [s_q, h_q], lse [s_q, h_q])``.

    q [s_q, h_q, d_qk] bf16, kv [s_kv, h_kv, d_qk] bf16, indices [s_q, h_kv, topk] int32.
    """
    import torch  # noqa: F401

    from . import ops

    out, max_logits, lse = ops.sparse_prefill(q, kv, indices, sm_scale, d_v=d_v,
                                              attn_sink=attn_sink, topk_length=topk_length)
    return out, max_logits, _set_empty_lse_to_inf(lse)
