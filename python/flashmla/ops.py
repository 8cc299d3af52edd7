"""PyTorch ops: ``torch.ops.flashmla.*`` and the Python wrappers engines call.

The ops are registered with ``torch.library.custom_op``; each writes into
caller-provided tensors (``mutates_args``) and returns nothing, has a fake
implementation, and launches on the current PyTorch stream of the device of
its tensors. So they work under ``torch.compile(fullgraph=True)``, inside CUDA
graphs, and pass ``torch.library.opcheck``:

    torch.ops.flashmla.plan_decode(schedule, lengths, extra_lengths, kind, b, s_q, h_q,
                                   h_kv, topk, extra_topk, num_sms)
    torch.ops.flashmla.dense_decode(q, kv, block_table, cache_seqlens, schedule,
                                    schedule_meta, softmax_scale, causal, out, lse, workspace)
    torch.ops.flashmla.sparse_decode(q, kv, indices, topk_length, attn_sink, extra_kv,
                                     extra_indices, extra_topk_length, schedule,
                                     schedule_meta, softmax_scale, out, lse, workspace)
    torch.ops.flashmla.sparse_prefill(q, kv, indices, attn_sink, topk_length,
                                      softmax_scale, out, max_logits, lse)
    torch.ops.flashmla.combine(out_partial, lse_partial, attn_sink, out, lse)

The wrappers below (``dense_decode`` etc.) allocate ``out``/``lse`` in Python
only when they are not given: an engine that passes ``out=``, ``lse=`` and a
:class:`DecodePlan` never allocates.

lse follows the library: natural log, ``-inf`` for a row with no key
(``flashmla.compat`` turns that into FlashMLA's ``+inf``).
"""

from typing import List, Optional, Tuple

import torch
from torch import Tensor

from . import _core

__all__ = [
    "DecodePlan",
    "plan_decode",
    "dense_decode",
    "sparse_decode",
    "sparse_prefill",
    "combine",
]

_KIND_CODE = {"dense": 0, "sparse": 1}
_FP8_DTYPES = tuple(
    getattr(torch, name) for name in ("float8_e4m3fn", "float8_e4m3fnuz") if hasattr(torch, name)
)


def _dl(tensor: Optional[Tensor]):
    """A DLPack capsule of ``tensor`` without stream synchronization.

    ``Tensor.__dlpack__()`` without a stream makes the default stream wait on
    the current one, which is an error inside CUDA-graph capture; ``stream=-1``
    asks for no synchronization (the kernels run on the current stream anyway).
    """
    if tensor is None:
        return None
    if tensor.requires_grad:
        tensor = tensor.detach()
    if tensor.is_cuda:
        # torch exports a CUDA tensor only while its device is current
        # (BufferError otherwise); the library itself runs on the device of q.
        with torch.cuda.device(tensor.device):
            return tensor.__dlpack__(stream=-1)
    return tensor.__dlpack__(stream=-1)


def _as_bytes(kv: Tensor) -> Tensor:
    """FP8 caches cross DLPack as bytes (uint8); others unchanged."""
    return kv.view(torch.uint8) if kv.dtype in _FP8_DTYPES else kv


def _stream(tensor: Tensor) -> int:
    """The current PyTorch stream of ``tensor``'s device, as an int (0 off CUDA)."""
    if tensor.device.type != "cuda":
        return 0
    return torch.cuda.current_stream(tensor.device).cuda_stream


# ----- torch.library ops ----------------------------------------------------------------------


@torch.library.custom_op("flashmla::plan_decode", mutates_args=("schedule",))
def _plan_decode_op(
    schedule: Tensor,
    lengths: Optional[Tensor],
    extra_lengths: Optional[Tensor],
    kind: str,
    b: int,
    s_q: int,
    h_q: int,
    h_kv: int,
    topk: int,
    extra_topk: int,
    num_sms: int,
) -> None:
    _core.plan_decode(
        _dl(schedule), _dl(lengths), _dl(extra_lengths), kind, b=b, s_q=s_q, h_q=h_q, h_kv=h_kv,
        topk=topk, extra_topk=extra_topk, num_sms=num_sms, stream=_stream(schedule))


@_plan_decode_op.register_fake
def _(schedule, lengths, extra_lengths, kind, b, s_q, h_q, h_kv, topk, extra_topk, num_sms):
    return None


@torch.library.custom_op("flashmla::dense_decode", mutates_args=("out", "lse", "workspace"))
def _dense_decode_op(
    q: Tensor,
    kv: Tensor,
    block_table: Tensor,
    cache_seqlens: Tensor,
    schedule: Tensor,
    schedule_meta: List[int],
    softmax_scale: float,
    causal: bool,
    out: Tensor,
    lse: Tensor,
    workspace: Tensor,
) -> None:
    _core.dense_decode(
        _dl(q), _dl(_as_bytes(kv)), _dl(block_table), _dl(cache_seqlens), _dl(schedule),
        schedule_meta, softmax_scale, causal, _dl(out), _dl(lse), _dl(workspace),
        stream=_stream(q))


@_dense_decode_op.register_fake
def _(q, kv, block_table, cache_seqlens, schedule, schedule_meta, softmax_scale, causal, out,
      lse, workspace):
    return None


@torch.library.custom_op("flashmla::sparse_decode", mutates_args=("out", "lse", "workspace"))
def _sparse_decode_op(
    q: Tensor,
    kv: Tensor,
    indices: Tensor,
    topk_length: Optional[Tensor],
    attn_sink: Optional[Tensor],
    extra_kv: Optional[Tensor],
    extra_indices: Optional[Tensor],
    extra_topk_length: Optional[Tensor],
    schedule: Tensor,
    schedule_meta: List[int],
    softmax_scale: float,
    out: Tensor,
    lse: Tensor,
    workspace: Tensor,
) -> None:
    _core.sparse_decode(
        _dl(q), _dl(_as_bytes(kv)), _dl(indices), _dl(topk_length), _dl(attn_sink),
        _dl(None if extra_kv is None else _as_bytes(extra_kv)), _dl(extra_indices),
        _dl(extra_topk_length), _dl(schedule), schedule_meta, softmax_scale, _dl(out), _dl(lse),
        _dl(workspace), stream=_stream(q))


@_sparse_decode_op.register_fake
def _(q, kv, indices, topk_length, attn_sink, extra_kv, extra_indices, extra_topk_length,
      schedule, schedule_meta, softmax_scale, out, lse, workspace):
    return None


@torch.library.custom_op("flashmla::sparse_prefill", mutates_args=("out", "max_logits", "lse"))
def _sparse_prefill_op(
    q: Tensor,
    kv: Tensor,
    indices: Tensor,
    attn_sink: Optional[Tensor],
    topk_length: Optional[Tensor],
    softmax_scale: float,
    out: Tensor,
    max_logits: Tensor,
    lse: Tensor,
) -> None:
    _core.sparse_prefill(
        _dl(q), _dl(kv), _dl(indices), _dl(attn_sink), _dl(topk_length), softmax_scale, _dl(out),
        _dl(max_logits), _dl(lse), stream=_stream(q))


@_sparse_prefill_op.register_fake
def _(q, kv, indices, attn_sink, topk_length, softmax_scale, out, max_logits, lse):
    return None


@torch.library.custom_op("flashmla::combine", mutates_args=("out", "lse"))
def _combine_op(
    out_partial: Tensor,
    lse_partial: Tensor,
    attn_sink: Optional[Tensor],
    out: Tensor,
    lse: Tensor,
) -> None:
    _core.combine(_dl(out_partial), _dl(lse_partial), _dl(attn_sink), _dl(out), _dl(lse),
                  stream=_stream(out_partial))


@_combine_op.register_fake
def _(out_partial, lse_partial, attn_sink, out, lse):
    return None


# ----- planning -----------------------------------------------------------------------------------


def _cuda_device(device) -> torch.device:
    device = torch.device("cuda") if device is None else torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def _byte_buffer(name: str, given: Optional[Tensor], nbytes: int, device: torch.device) -> Tensor:
    if given is None:
        return torch.empty(nbytes, dtype=torch.uint8, device=device)
    if given.dtype != torch.uint8 or given.dim() != 1 or not given.is_contiguous():
        raise ValueError(f"{name}: expected a contiguous 1-D uint8 tensor, got {given.dtype} "
                         f"of shape {tuple(given.shape)}")
    if given.numel() < nbytes:
        raise ValueError(f"{name}: expected at least {nbytes} bytes (plan_decode_sizes at max_b), "
                         f"got {given.numel()}")
    return given


class DecodePlan:
    """The schedule of one decode step, shared by every layer of the step.

    Create it once (buffers sized for ``max_b``; pass ``schedule=`` and
    ``workspace=`` to use your own uint8 tensors), call :meth:`plan` once per
    step with that step's device-resident lengths (no host synchronization, so
    it can be captured in a CUDA graph), then pass the plan to every layer's
    :func:`dense_decode` / :func:`sparse_decode`. Decode calls check that the
    plan was made for their shapes (``ValueError`` otherwise).

    ``kind`` is ``"dense"`` (lengths = cache_seqlens [b]) or ``"sparse"``
    (lengths = topk_length [b] or None, with ``topk`` / ``extra_topk``).
    """

    def __init__(self, kind: str = "dense", *, max_b: int, s_q: int, h_q: int, h_kv: int = 1,
                 topk: int = 0, extra_topk: int = 0, d_v: int = 512, device=None,
                 num_sms: Optional[int] = None, schedule: Optional[Tensor] = None,
                 workspace: Optional[Tensor] = None):
        if kind not in _KIND_CODE:
            raise ValueError(f"kind: expected 'dense' or 'sparse', got {kind!r}")
        self.device = _cuda_device(device)
        if num_sms is None:
            num_sms = torch.cuda.get_device_properties(self.device).multi_processor_count
        self.kind, self.max_b, self.s_q, self.h_q, self.h_kv = kind, max_b, s_q, h_q, h_kv
        self.topk, self.extra_topk, self.d_v, self.num_sms = topk, extra_topk, d_v, num_sms
        sizes = _core.plan_decode_sizes(kind, b=max_b, s_q=s_q, h_q=h_q, h_kv=h_kv, topk=topk,
                                        extra_topk=extra_topk, num_sms=num_sms, d_v=d_v)
        # The number of workers depends on the shapes and SMs, not on b.
        self.num_workers: int = sizes["num_workers"]
        self.schedule = _byte_buffer("schedule", schedule, sizes["schedule_bytes"], self.device)
        self.workspace = _byte_buffer("workspace", workspace, sizes["workspace_bytes"], self.device)
        self.b: Optional[int] = None
        self.meta: Optional[List[int]] = None

    @staticmethod
    def sizes(kind: str = "dense", *, max_b: int, s_q: int, h_q: int, h_kv: int = 1,
              topk: int = 0, extra_topk: int = 0, d_v: int = 512, num_sms: int) -> dict:
        """Bytes of the schedule and workspace buffers for batches up to ``max_b``."""
        return _core.plan_decode_sizes(kind, b=max_b, s_q=s_q, h_q=h_q, h_kv=h_kv, topk=topk,
                                       extra_topk=extra_topk, num_sms=num_sms, d_v=d_v)

    def plan(self, lengths: Optional[Tensor] = None, extra_lengths: Optional[Tensor] = None, *,
             b: Optional[int] = None) -> "DecodePlan":
        """Plans this step on the current stream; returns ``self``."""
        if lengths is not None:
            b = lengths.shape[0]
        if b is None:
            raise ValueError("b: expected the batch size when lengths is None")
        if b > self.max_b:
            raise ValueError(f"b: expected <= max_b = {self.max_b} (the plan's buffers), got {b}")
        torch.ops.flashmla.plan_decode(self.schedule, lengths, extra_lengths, self.kind, b,
                                       self.s_q, self.h_q, self.h_kv, self.topk, self.extra_topk,
                                       self.num_sms)
        self.b = b
        self.meta = [_KIND_CODE[self.kind], b, self.s_q, self.h_q, self.h_kv, self.topk,
                     self.extra_topk, self.num_workers]
        return self

    def _checked_meta(self) -> List[int]:
        if self.meta is None:
            raise ValueError("plan: expected a planned DecodePlan, got one that was never planned "
                             "(call plan.plan(lengths) once per step first)")
        return self.meta

    def __repr__(self) -> str:
        return (f"DecodePlan(kind={self.kind!r}, b={self.b}, max_b={self.max_b}, s_q={self.s_q}, "
                f"h_q={self.h_q}, h_kv={self.h_kv}, topk={self.topk}, extra_topk={self.extra_topk}, "
                f"num_workers={self.num_workers}, device={self.device})")


def plan_decode(lengths: Optional[Tensor], *, s_q: int, h_q: int, h_kv: int = 1,
                kind: str = "dense", topk: int = 0, extra_topk: int = 0,
                extra_lengths: Optional[Tensor] = None, b: Optional[int] = None, d_v: int = 512,
                device=None) -> DecodePlan:
    """A :class:`DecodePlan` sized for exactly this batch, planned from ``lengths``."""
    if lengths is not None:
        b = lengths.shape[0]
        device = lengths.device if device is None else device
    if b is None:
        raise ValueError("b: expected the batch size when lengths is None")
    plan = DecodePlan(kind, max_b=b, s_q=s_q, h_q=h_q, h_kv=h_kv, topk=topk,
                      extra_topk=extra_topk, d_v=d_v, device=device)
    return plan.plan(lengths, extra_lengths, b=b)


# ----- wrappers -----------------------------------------------------------------------------------


def dense_decode(q: Tensor, kv_cache: Tensor, block_table: Tensor, cache_seqlens: Tensor,
                 plan: DecodePlan, softmax_scale: float, causal: bool = False, *,
                 out: Optional[Tensor] = None,
                 lse: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """Dense paged decode. Returns ``(out [b, s_q, h_q, d_v], lse [b, h_q, s_q])``.

    q [b, s_q, h_q, d_qk] bf16/fp16; kv_cache [num_blocks, page_block_size, h_kv, d_qk]
    of q's dtype, or an FP8 cache in the V32 layout as bytes (uint8 or float8_e4m3fn
    [num_blocks, page_block_size, 1, 656], q bf16, h_q <= 128); block_table
    [b, max_blocks_per_seq] int32; cache_seqlens [b] int32.
    """
    meta = plan._checked_meta()
    b, s_q, h_q = q.shape[0], q.shape[1], q.shape[2]
    if out is None:
        out = q.new_empty((b, s_q, h_q, plan.d_v))
    if lse is None:
        lse = torch.empty((b, h_q, s_q), dtype=torch.float32, device=q.device)
    torch.ops.flashmla.dense_decode(q, kv_cache, block_table, cache_seqlens, plan.schedule, meta,
                                    float(softmax_scale), bool(causal), out, lse, plan.workspace)
    return out, lse


def sparse_decode(q: Tensor, kv_cache: Tensor, indices: Tensor, plan: DecodePlan,
                  softmax_scale: float, *, topk_length: Optional[Tensor] = None,
                  attn_sink: Optional[Tensor] = None, extra_kv_cache: Optional[Tensor] = None,
                  extra_indices: Optional[Tensor] = None,
                  extra_topk_length: Optional[Tensor] = None, out: Optional[Tensor] = None,
                  lse: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """Sparse decode over an FP8 paged cache. Returns ``(out, lse)``.

    q [b, s_q, h_q, d_qk] bf16; kv_cache [num_blocks, page_block_size, 1, 656 or 584]
    bytes (uint8 / float8_e4m3fn); indices [b, s_q, topk] int32.
    """
    meta = plan._checked_meta()
    b, s_q, h_q = q.shape[0], q.shape[1], q.shape[2]
    if out is None:
        out = q.new_empty((b, s_q, h_q, plan.d_v))
    if lse is None:
        lse = torch.empty((b, h_q, s_q), dtype=torch.float32, device=q.device)
    torch.ops.flashmla.sparse_decode(q, kv_cache, indices, topk_length, attn_sink, extra_kv_cache,
                                     extra_indices, extra_topk_length, plan.schedule, meta,
                                     float(softmax_scale), out, lse, plan.workspace)
    return out, lse


def sparse_prefill(q: Tensor, kv: Tensor, indices: Tensor, softmax_scale: float, *,
                   d_v: int = 512, attn_sink: Optional[Tensor] = None,
                   topk_length: Optional[Tensor] = None, out: Optional[Tensor] = None,
                   max_logits: Optional[Tensor] = None,
                   lse: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
    """Sparse prefill. Returns ``(out [s_q, h_q, d_v], max_logits [s_q, h_q], lse [s_q, h_q])``."""
    s_q, h_q = q.shape[0], q.shape[1]
    if out is None:
        out = q.new_empty((s_q, h_q, d_v))
    if max_logits is None:
        max_logits = torch.empty((s_q, h_q), dtype=torch.float32, device=q.device)
    if lse is None:
        lse = torch.empty((s_q, h_q), dtype=torch.float32, device=q.device)
    torch.ops.flashmla.sparse_prefill(q, kv, indices, attn_sink, topk_length, float(softmax_scale),
                                      out, max_logits, lse)
    return out, max_logits, lse


def combine(out_partial: Tensor, lse_partial: Tensor, *, attn_sink: Optional[Tensor] = None,
            out_dtype: Optional[torch.dtype] = None, out: Optional[Tensor] = None,
            lse: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """Merges partials over disjoint key sets.

    out_partial [num_splits, b, s_q, h_q, d_v], lse_partial [num_splits, b, h_q, s_q] fp32.
    Returns ``(out [b, s_q, h_q, d_v], lse [b, h_q, s_q])``; ``out_dtype`` defaults to bf16.
    """
    _, b, s_q, h_q, d_v = out_partial.shape
    if out is None:
        out = torch.empty((b, s_q, h_q, d_v), dtype=out_dtype or torch.bfloat16,
                          device=out_partial.device)
    if lse is None:
        lse = torch.empty((b, h_q, s_q), dtype=torch.float32, device=out_partial.device)
    torch.ops.flashmla.combine(out_partial, lse_partial, attn_sink, out, lse)
    return out, lse
