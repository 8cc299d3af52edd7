"""PyTorch ops on an sm_90 GPU: parity with a plain-torch fp32 reference, CUDA
graphs, torch.compile, opcheck, streams, devices, and the compat API.

Skipped (with the reason) without torch, without CUDA, or on a GPU other than
compute capability 9.0. Every assertion message says what was compared.
"""

import math

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed: the GPU tests need PyTorch")

if not torch.cuda.is_available():
    pytest.skip("no CUDA device visible to torch", allow_module_level=True)
if torch.cuda.get_device_capability(0) != (9, 0):
    pytest.skip(f"needs an sm_90 GPU, device 0 is {torch.cuda.get_device_name(0)} "
                f"(sm_{''.join(map(str, torch.cuda.get_device_capability(0)))})",
                allow_module_level=True)

import flashmla.compat as flash_mla  # noqa: E402
from flashmla import ops  # noqa: E402

pytestmark = pytest.mark.gpu

PAGE = 64
GARBAGE_PAGE_IDS = (2**31 - 1, -1, -(2**31), 10**6)  # in block-table slots past the length


# ----- inputs and the reference -------------------------------------------------------------------


class DenseCase:
    """A paged dense decode: NaN in every KV slot that is not a valid key,
    pages in random order, garbage page ids in unused block-table slots."""

    def __init__(self, seqlens, s_q, h_q, h_kv=1, d_qk=576, d_v=512, dtype=torch.bfloat16,
                 causal=False, device="cuda", seed=0):
        gen = torch.Generator().manual_seed(seed)
        self.b, self.s_q, self.h_q, self.h_kv = len(seqlens), s_q, h_q, h_kv
        self.d_qk, self.d_v, self.dtype, self.causal = d_qk, d_v, dtype, causal
        self.scale = d_qk ** -0.5
        self.max_blocks = max(1, max(math.ceil(n / PAGE) for n in seqlens) + 1)
        pages_needed = sum(math.ceil(n / PAGE) for n in seqlens)
        self.num_blocks = pages_needed + 3  # spare pages stay NaN
        kv = torch.full((self.num_blocks, PAGE, h_kv, d_qk), float("nan"))
        block_table = torch.empty((self.b, self.max_blocks), dtype=torch.int32)
        order = torch.randperm(self.num_blocks, generator=gen).tolist()
        for i, n in enumerate(seqlens):
            pages = [order.pop() for _ in range(math.ceil(n / PAGE))]
            for j in range(self.max_blocks):
                block_table[i, j] = pages[j] if j < len(pages) else \
                    GARBAGE_PAGE_IDS[(i + j) % len(GARBAGE_PAGE_IDS)]
            for j, page in enumerate(pages):
                rows = min(PAGE, n - j * PAGE)
                kv[page, :rows] = torch.randn((rows, h_kv, d_qk), generator=gen)
        self.kv = kv.to(dtype).to(device)
        self.block_table = block_table.to(device)
        self.cache_seqlens = torch.tensor(seqlens, dtype=torch.int32, device=device)
        self.q = torch.randn((self.b, s_q, h_q, d_qk), generator=gen).to(dtype).to(device)
        self.device = torch.device(device)

    def new_outputs(self):
        out = torch.full((self.b, self.s_q, self.h_q, self.d_v), float("nan"), dtype=self.dtype,
                         device=self.device)
        lse = torch.full((self.b, self.h_q, self.s_q), float("nan"), dtype=torch.float32,
                         device=self.device)
        return out, lse

    def plan(self):
        return ops.DecodePlan("dense", max_b=self.b, s_q=self.s_q, h_q=self.h_q, h_kv=self.h_kv,
                              d_v=self.d_v, device=self.device).plan(self.cache_seqlens)

    def reference(self, q=None, seqlens=None):
        """fp32 attention from the exact inputs: (out [b, s_q, h_q, d_v], lse [b, h_q, s_q])."""
        q = (self.q if q is None else q).float().cpu()
        seqlens = (self.cache_seqlens if seqlens is None else seqlens).cpu().tolist()
        kv, block_table = self.kv.float().cpu(), self.block_table.cpu()
        group = self.h_q // self.h_kv
        out = torch.zeros((self.b, self.s_q, self.h_q, self.d_v))
        lse = torch.full((self.b, self.h_q, self.s_q), float("-inf"))
        for i, n in enumerate(seqlens):
            if n == 0:
                continue
            pages = block_table[i, :math.ceil(n / PAGE)].long()
            k = kv[pages].reshape(-1, self.h_kv, self.d_qk)[:n]          # [n, h_kv, d_qk]
            k = k.repeat_interleave(group, dim=1)                        # [n, h_q, d_qk]
            scores = torch.einsum("shd,nhd->hsn", q[i], k) * self.scale  # [h_q, s_q, n]
            if self.causal:
                # Bottom-right: query token s sees keys [0, n - (s_q - 1 - s)).
                limit = n - (self.s_q - 1 - torch.arange(self.s_q))
                masked = torch.arange(n)[None, :] >= limit[:, None]     # [s_q, n]
                scores = scores.masked_fill(masked[None], float("-inf"))
            row_lse = torch.logsumexp(scores, dim=-1)                    # [h_q, s_q]
            p = torch.exp(scores - row_lse[..., None]).nan_to_num(0.0)   # empty rows: 0
            out[i] = torch.einsum("hsn,nhd->shd", p, k[..., :self.d_v])
            lse[i] = row_lse
        return out, lse


def check_against_reference(case, out, lse, q=None, seqlens=None, what="dense_decode"):
    ref_out, ref_lse = case.reference(q, seqlens)
    out, lse = out.float().cpu(), lse.cpu()
    assert not out.isnan().any(), f"{what}: out has NaN (unwritten or poisoned)"
    assert not lse.isnan().any(), f"{what}: lse has NaN (unwritten or poisoned)"
    torch.testing.assert_close(out, ref_out, atol=1e-2, rtol=2e-2, msg=lambda m: f"{what} out: {m}")
    torch.testing.assert_close(lse, ref_lse, atol=1e-2, rtol=1e-3, msg=lambda m: f"{what} lse: {m}")
    nonempty = ref_lse.isfinite()
    if nonempty.any():
        assert out.abs().sum() > 0, f"{what}: out is all zeros"
        cos = torch.nn.functional.cosine_similarity(out.flatten(), ref_out.flatten(), dim=0)
        assert cos > 0.9999, f"{what}: cosine similarity to the reference {cos:.6f}"
    empty_rows = (~nonempty).transpose(1, 2)  # [b, s_q, h_q]
    assert (out[empty_rows] == 0).all(), f"{what}: rows with no key must be exactly 0"


def allocations():
    torch.cuda.synchronize()
    return torch.cuda.memory_stats()["allocation.all.allocated"]


# ----- parity -------------------------------------------------------------------------------------


DENSE_SHAPES = [
    # (seqlens, s_q, h_q, h_kv, d_qk, dtype, causal)
    ([700, 1], 1, 128, 1, 576, torch.bfloat16, False),        # DeepSeek, TP1
    ([65, 0, 300], 2, 16, 1, 576, torch.float16, True),       # MTP, an empty request
    ([64, 129, 3, 1000], 1, 9, 3, 576, torch.bfloat16, False),  # odd heads, GQA
    ([200, 37], 4, 64, 1, 576, torch.bfloat16, True),         # causal windows inside a page
    ([700, 1], 1, 128, 1, 512, torch.bfloat16, False),        # MODEL1's d_qk: V is all of K
    ([65, 0, 300], 2, 16, 1, 512, torch.float16, True),
]


@pytest.mark.parametrize("seqlens,s_q,h_q,h_kv,d_qk,dtype,causal", DENSE_SHAPES)
def test_dense_decode_parity(seqlens, s_q, h_q, h_kv, d_qk, dtype, causal):
    case = DenseCase(seqlens, s_q, h_q, h_kv, d_qk=d_qk, dtype=dtype, causal=causal)
    plan = case.plan()
    out, lse = case.new_outputs()
    ret_out, ret_lse = ops.dense_decode(case.q, case.kv, case.block_table, case.cache_seqlens, plan,
                                        case.scale, causal, out=out, lse=lse)
    assert ret_out is out and ret_lse is lse, "out=/lse= must be written in place and returned"
    check_against_reference(case, out, lse)


def test_dense_decode_allocates_outputs_when_not_given():
    case = DenseCase([100, 5], 1, 16)
    out, lse = ops.dense_decode(case.q, case.kv, case.block_table, case.cache_seqlens, case.plan(),
                                case.scale)
    assert out.shape == (2, 1, 16, 512) and out.dtype == case.dtype
    assert lse.shape == (2, 16, 1) and lse.dtype == torch.float32
    check_against_reference(case, out, lse)


def test_one_plan_serves_every_layer_and_out_variant_does_not_allocate():
    case = DenseCase([300, 64, 1], 1, 128)
    plan = case.plan()
    layers = [torch.randn_like(case.q, dtype=torch.float32).to(case.dtype) for _ in range(3)]
    outputs = [case.new_outputs() for _ in layers]
    before = allocations()
    for q, (out, lse) in zip(layers, outputs):
        ops.dense_decode(q, case.kv, case.block_table, case.cache_seqlens, plan, case.scale,
                         out=out, lse=lse)
    assert allocations() == before, "a decode with out=, lse= and a plan must not allocate"
    for q, (out, lse) in zip(layers, outputs):
        check_against_reference(case, out, lse, q=q, what="layer")


def test_plan_sized_for_max_batch_serves_smaller_batches():
    case = DenseCase([90, 700], 1, 64)
    plan = ops.DecodePlan("dense", max_b=16, s_q=1, h_q=64, device="cuda").plan(case.cache_seqlens)
    assert plan.b == 2 and plan.meta[1] == 2
    out, lse = case.new_outputs()
    ops.dense_decode(case.q, case.kv, case.block_table, case.cache_seqlens, plan, case.scale,
                     out=out, lse=lse)
    check_against_reference(case, out, lse)


def test_stale_plan_is_rejected():
    case = DenseCase([90, 70], 1, 16)
    other = DenseCase([90, 70, 5], 1, 16)
    with pytest.raises(ValueError, match="schedule: planned for b = 3, called with b = 2"):
        ops.dense_decode(case.q, case.kv, case.block_table, case.cache_seqlens, other.plan(),
                         case.scale)


def test_cpu_tensors_are_rejected():
    case = DenseCase([90, 70], 1, 16)
    plan = case.plan()
    with pytest.raises(ValueError, match="expected device memory"):
        ops.dense_decode(case.q.cpu(), case.kv, case.block_table, case.cache_seqlens, plan,
                         case.scale)


# ----- CUDA graphs --------------------------------------------------------------------------------


def test_cuda_graph_capture_and_replay_with_changed_lengths():
    case = DenseCase([500, 64, 1, 250], 2, 16, causal=True)
    plan = ops.DecodePlan("dense", max_b=case.b, s_q=2, h_q=16, device="cuda")
    out, lse = case.new_outputs()
    q, seqlens = case.q, case.cache_seqlens

    def step():
        plan.plan(seqlens)
        ops.dense_decode(q, case.kv, case.block_table, seqlens, plan, case.scale, True,
                         out=out, lse=lse)

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        step()  # warm-up outside capture
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()

    max_lengths = [500, 64, 1, 250]  # the pages in the block table bound each length
    rounds = [[500, 64, 1, 250], [1, 0, 1, 2], [37, 64, 0, 129], [499, 63, 1, 250]]
    for r, lengths in enumerate(rounds):
        assert all(n <= m for n, m in zip(lengths, max_lengths))
        seqlens.copy_(torch.tensor(lengths, dtype=torch.int32))
        q.normal_()
        out.fill_(float("nan"))
        lse.fill_(float("nan"))
        before = allocations()
        graph.replay()
        assert allocations() == before, f"replay {r}: graph replay must not allocate"
        check_against_reference(case, out, lse, q=q, seqlens=seqlens, what=f"replay {r}")


# ----- torch.compile and opcheck -------------------------------------------------------------------


def test_torch_compile_fullgraph():
    torch._dynamo.reset()
    case = DenseCase([300, 20], 2, 16, causal=True)
    plan = case.plan()

    def attention(q, kv, block_table, seqlens, plan):
        out, lse = ops.dense_decode(q, kv, block_table, seqlens, plan, case.scale, True)
        return out.float() * 2.0, lse

    compiled = torch.compile(attention, fullgraph=True)
    got_out, got_lse = compiled(case.q, case.kv, case.block_table, case.cache_seqlens, plan)
    eager_out, eager_lse = attention(case.q, case.kv, case.block_table, case.cache_seqlens, plan)
    torch.testing.assert_close(got_out, eager_out, atol=0, rtol=0)
    torch.testing.assert_close(got_lse, eager_lse, atol=0, rtol=0)
    check_against_reference(case, got_out / 2.0, got_lse, what="compiled")


def test_opcheck_plan_and_dense_decode():
    # No NaN poison here: opcheck compares arguments before and after a call.
    case = DenseCase([300, 64, 1], 1, 64)
    case.kv.nan_to_num_(0.0)
    plan = case.plan()
    torch.library.opcheck(
        torch.ops.flashmla.plan_decode.default,
        (plan.schedule, case.cache_seqlens, None, "dense", case.b, 1, 64, 1, 0, 0, plan.num_sms))
    out, lse = (t.zero_() for t in case.new_outputs())
    torch.library.opcheck(
        torch.ops.flashmla.dense_decode.default,
        (case.q, case.kv, case.block_table, case.cache_seqlens, plan.schedule, plan.meta,
         case.scale, False, out, lse, plan.workspace))


def reference_combine(out_partial, lse_partial):
    lse = torch.logsumexp(lse_partial, dim=0)                     # [b, h_q, s_q]
    weights = torch.exp(lse_partial - lse[None]).nan_to_num(0.0)  # [splits, b, h_q, s_q]
    out = torch.einsum("xbhs,xbshd->bshd", weights, out_partial)
    return out, lse


def test_combine_parity_and_opcheck():
    gen = torch.Generator().manual_seed(3)
    splits, b, s_q, h_q = 3, 2, 2, 16
    out_partial = torch.randn((splits, b, s_q, h_q, 512), generator=gen)
    lse_partial = torch.randn((splits, b, h_q, s_q), generator=gen) * 3
    lse_partial[1, 0] = float("-inf")           # an empty split
    out_partial[1, 0] = float("nan")            # never read when its lse is -inf
    lse_partial[:, 1, 3, 0] = float("-inf")     # a row empty in every split
    ref_out, ref_lse = reference_combine(out_partial.nan_to_num(0.0), lse_partial)
    out, lse = ops.combine(out_partial.cuda(), lse_partial.cuda(), out_dtype=torch.bfloat16)
    torch.testing.assert_close(out.float().cpu(), ref_out, atol=1e-2, rtol=2e-2)
    torch.testing.assert_close(lse.cpu(), ref_lse, atol=1e-3, rtol=1e-5)
    out2 = torch.zeros_like(out)
    lse2 = torch.zeros_like(lse)
    torch.library.opcheck(torch.ops.flashmla.combine.default,
                          (out_partial.nan_to_num(0.0).cuda(), lse_partial.cuda(), None, out2, lse2))


# ----- streams and devices --------------------------------------------------------------------------


def test_runs_on_the_current_stream():
    # On a side stream: a long sleep, then new q and lengths written on that
    # stream, then plan + decode. Launching anywhere else would read the old
    # values before the writes land.
    if not hasattr(torch.cuda, "_sleep"):
        pytest.skip("torch.cuda._sleep is not available")
    case = DenseCase([400, 100], 1, 16)
    plan = ops.DecodePlan("dense", max_b=2, s_q=1, h_q=16, device="cuda")
    new_q = torch.randn_like(case.q, dtype=torch.float32).to(case.dtype)
    new_lengths = torch.tensor([17, 99], dtype=torch.int32, device="cuda")
    out, lse = case.new_outputs()
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        torch.cuda._sleep(200_000_000)  # ~0.1 s of GPU cycles
        case.q.copy_(new_q)
        case.cache_seqlens.copy_(new_lengths)
        plan.plan(case.cache_seqlens)
        ops.dense_decode(case.q, case.kv, case.block_table, case.cache_seqlens, plan, case.scale,
                         out=out, lse=lse)
    side.synchronize()
    check_against_reference(case, out, lse, q=new_q, seqlens=new_lengths, what="side stream")


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_tensors_on_a_non_current_device():
    torch.cuda.set_device(0)
    case = DenseCase([300, 7], 1, 16, device="cuda:1")
    plan = case.plan()
    assert plan.schedule.device == torch.device("cuda:1")
    out, lse = ops.dense_decode(case.q, case.kv, case.block_table, case.cache_seqlens, plan,
                                case.scale)
    assert torch.cuda.current_device() == 0, "the caller's current device must be left unchanged"
    torch.cuda.synchronize(1)
    check_against_reference(case, out, lse, what="device 1")


# ----- compat -----------------------------------------------------------------------------------------


def test_compat_dense_matches_native():
    case = DenseCase([300, 0, 64], 2, 32, causal=True)
    meta, none = flash_mla.get_mla_metadata()
    assert none is None
    out, lse = flash_mla.flash_mla_with_kvcache(case.q, case.kv, case.block_table, case.cache_seqlens,
                                               512, meta, causal=True)
    assert meta.have_initialized and meta.config.b == 3 and meta.config.h_q == 32
    native_out, native_lse = ops.dense_decode(case.q, case.kv, case.block_table, case.cache_seqlens,
                                              case.plan(), case.d_qk ** -0.5, True)
    torch.testing.assert_close(out, native_out, atol=0, rtol=0)
    assert lse.shape == (3, 32, 2)
    empty = native_lse == float("-inf")
    assert empty[1].all(), "request 1 has no keys"
    assert (lse[empty] == float("inf")).all(), "compat returns +inf for rows with no key"
    torch.testing.assert_close(lse[~empty], native_lse[~empty], atol=0, rtol=0)

    # The same metadata serves the next layer; a different configuration is refused.
    q2 = torch.randn_like(case.q, dtype=torch.float32).to(case.dtype)
    out2, _ = flash_mla.flash_mla_with_kvcache(q2, case.kv, case.block_table, case.cache_seqlens,
                                              512, meta, causal=True)
    ref_out, _ = case.reference(q=q2)
    torch.testing.assert_close(out2.float().cpu(), ref_out, atol=1e-2, rtol=2e-2)
    with pytest.raises(ValueError, match="tile_scheduler_metadata: planned for"):
        flash_mla.flash_mla_with_kvcache(case.q, case.kv, case.block_table, case.cache_seqlens,
                                         512, meta, causal=False)


def test_compat_default_softmax_scale_and_errors():
    case = DenseCase([100], 1, 16)
    meta, _ = flash_mla.get_mla_metadata()
    out, _ = flash_mla.flash_mla_with_kvcache(case.q, case.kv, case.block_table, case.cache_seqlens,
                                             512, meta)  # scale = 576 ** -0.5
    ref_out, _ = case.reference()
    torch.testing.assert_close(out.float().cpu(), ref_out, atol=1e-2, rtol=2e-2)
    meta, _ = flash_mla.get_mla_metadata()
    with pytest.raises(NotImplementedError, match="d_v: expected 512"):
        flash_mla.flash_mla_with_kvcache(case.q, case.kv, case.block_table, case.cache_seqlens,
                                         256, meta)


# ----- sparse prefill and sparse decode -----------------------------------------------------------


def sparse_prefill_reference(q, kv, indices, scale, d_v=512, topk_length=None, attn_sink=None):
    """fp32 torch reference of spec section 1: masked positions and indices
    outside [0, s_kv) never select a row; empty rows give out 0, max_logits and
    lse -inf; the sink joins the denominator only."""
    s_q, h_q, _ = q.shape
    s_kv, topk = kv.shape[0], indices.shape[-1]
    idx = indices[:, 0, :].long()
    valid = (idx >= 0) & (idx < s_kv)
    if topk_length is not None:
        valid &= torch.arange(topk, device=q.device)[None, :] < topk_length[:, None].long()
    rows = kv[:, 0, :].float()[torch.where(valid, idx, 0)]  # [s_q, topk, d_qk]
    rows = torch.where(valid[..., None], rows, 0.0)
    logits = torch.einsum("shd,std->sht", q.float(), rows) * scale
    logits = logits.masked_fill(~valid[:, None, :], float("-inf"))
    max_logits = logits.amax(-1)
    safe_max = torch.where(torch.isinf(max_logits), 0.0, max_logits)
    weights = torch.exp(logits - safe_max[..., None])
    total = weights.sum(-1)
    lse = torch.where(total > 0, torch.log(total) + safe_max, float("-inf"))
    denominator = total
    if attn_sink is not None:
        denominator = total + torch.exp(attn_sink.float()[None, :] - safe_max)
    out = torch.einsum("sht,std->shd", weights, rows[..., :d_v])
    out = torch.where(denominator[..., None] > 0, out / denominator[..., None], 0.0)
    return out, max_logits, lse


@pytest.mark.parametrize("h_q,d_qk,with_extras", [(128, 576, False), (16, 576, True), (64, 512, True)])
def test_sparse_prefill_matches_reference(h_q, d_qk, with_extras):
    gen = torch.Generator().manual_seed(h_q + d_qk)
    s_q, s_kv, topk = 37, 300, 128
    q = torch.randn((s_q, h_q, d_qk), generator=gen).to(torch.bfloat16).cuda()
    kv = torch.randn((s_kv, 1, d_qk), generator=gen).to(torch.bfloat16)
    indices = torch.randint(0, s_kv, (s_q, 1, topk), generator=gen, dtype=torch.int32)
    indices[0, 0, :] = -1                   # a row with no valid index
    indices[1, 0, ::3] = s_kv + 7           # out of range: masked, never read
    indices[2, 0, ::5] = -(2**31)
    selected = torch.zeros(s_kv, dtype=torch.bool)
    selected[indices[(indices >= 0) & (indices < s_kv)].long()] = True
    kv[~selected] = float("nan")            # rows nothing selects may hold NaN
    kv, indices = kv.cuda(), indices.cuda()
    topk_length = attn_sink = None
    if with_extras:
        topk_length = torch.randint(0, topk + 1, (s_q,), generator=gen, dtype=torch.int32).cuda()
        attn_sink = torch.randn((h_q,), generator=gen).cuda()
        attn_sink[0] = float("-inf")
    scale = d_qk ** -0.5
    out, max_logits, lse = ops.sparse_prefill(q, kv, indices, scale, attn_sink=attn_sink,
                                              topk_length=topk_length)
    ref_out, ref_max, ref_lse = sparse_prefill_reference(q, kv, indices, scale, 512, topk_length,
                                                         attn_sink)
    torch.testing.assert_close(out.float(), ref_out, atol=1e-2, rtol=2e-2,
                               msg=lambda m: f"sparse_prefill out vs torch reference: {m}")
    torch.testing.assert_close(max_logits, ref_max, atol=1e-3, rtol=1e-3,
                               msg=lambda m: f"sparse_prefill max_logits vs torch reference: {m}")
    torch.testing.assert_close(lse, ref_lse, atol=1e-3, rtol=1e-3,
                               msg=lambda m: f"sparse_prefill lse vs torch reference: {m}")
    # The compat API returns the same tensors, with +inf lse for empty rows (FlashMLA's convention).
    c_out, c_max, c_lse = flash_mla.flash_mla_sparse_fwd(q, kv, indices, scale, attn_sink=attn_sink,
                                                         topk_length=topk_length)
    assert torch.equal(c_out, out), "compat sparse_fwd out differs from ops.sparse_prefill"
    assert torch.equal(c_max, max_logits), "compat sparse_fwd max_logits differs"
    assert torch.equal(c_lse, torch.where(torch.isneginf(lse), float("inf"), lse)), \
        "compat sparse_fwd lse: expected ops' lse with -inf replaced by +inf"


def encode_v32(rows):
    """[n, 576] float -> [n, 656] uint8 in the V32 layout of spec section 3."""
    n = rows.shape[0]
    nope = rows[:, :512].float().reshape(n, 4, 128)
    amax = nope.abs().amax(-1)
    scale = torch.exp2(torch.ceil(torch.log2(torch.clamp(amax / 448.0, min=1e-4))))
    fp8 = (nope / scale[..., None]).to(torch.float8_e4m3fn).reshape(n, 512)
    rope = rows[:, 512:].to(torch.bfloat16).contiguous()
    return torch.cat([fp8.view(torch.uint8), scale.contiguous().view(torch.uint8).reshape(n, 16),
                      rope.view(torch.uint8).reshape(n, 128)], dim=1)


def decode_v32(raw):
    """[n, 656] uint8 -> [n, 576] float: bf16(fp8) * scale, RoPE as stored."""
    n = raw.shape[0]
    fp8 = raw[:, :512].contiguous().view(torch.float8_e4m3fn).float().reshape(n, 4, 128)
    scale = raw[:, 512:528].contiguous().view(torch.float32).reshape(n, 4)
    rope = raw[:, 528:].contiguous().view(torch.bfloat16).float()
    return torch.cat([(fp8 * scale[..., None]).reshape(n, 512), rope], dim=1)


@pytest.mark.parametrize("h_q", [16, 64, 128])
def test_sparse_decode_matches_reference(h_q):
    gen = torch.Generator().manual_seed(h_q)
    b, s_q, topk, num_blocks = 3, 2, 128, 8
    tokens = num_blocks * PAGE
    rows = (torch.randn((tokens, 576), generator=gen) / 4).to(torch.bfloat16)
    raw = encode_v32(rows)
    indices = torch.randint(0, tokens, (b, s_q, topk), generator=gen, dtype=torch.int32)
    indices[0, 1, :] = -1                       # a row with no valid index
    indices[1, 0, ::3] = tokens + 5             # out of range: masked, never read
    indices[2, 1, ::7] = -(2**31)
    selected = torch.zeros(tokens, dtype=torch.bool)
    selected[indices[(indices >= 0) & (indices < tokens)].long()] = True
    raw[~selected] = 0xFF                       # NaN bytes in every token nothing selects
    dequant = decode_v32(raw)
    kv = raw.reshape(num_blocks, PAGE, 1, 656).cuda()
    q = (torch.randn((b, s_q, h_q, 576), generator=gen) / 4).to(torch.bfloat16).cuda()
    topk_length = torch.tensor([topk, 77, topk], dtype=torch.int32).cuda()
    attn_sink = torch.randn((h_q,), generator=gen).cuda()
    scale = 576 ** -0.5
    plan = ops.DecodePlan("sparse", max_b=b, s_q=s_q, h_q=h_q, topk=topk, device="cuda").plan(topk_length)
    out, lse = ops.sparse_decode(q, kv, indices.cuda(), plan, scale, topk_length=topk_length,
                                 attn_sink=attn_sink)
    # The reference: each (request, token) row is a prefill row over the dequantized cache.
    flat_q = q.reshape(b * s_q, h_q, 576)
    flat_idx = indices.reshape(b * s_q, 1, topk).cuda()
    flat_len = topk_length.repeat_interleave(s_q)
    ref_out, _, ref_lse = sparse_prefill_reference(flat_q, dequant.reshape(tokens, 1, 576).cuda(),
                                                   flat_idx, scale, 512, flat_len, attn_sink)
    torch.testing.assert_close(out.float().reshape(b * s_q, h_q, 512), ref_out, atol=1e-2, rtol=2e-2,
                               msg=lambda m: f"sparse_decode out vs torch reference: {m}")
    torch.testing.assert_close(lse.transpose(1, 2).reshape(b * s_q, h_q), ref_lse, atol=1e-3,
                               rtol=1e-3, msg=lambda m: f"sparse_decode lse vs torch reference: {m}")
    # The compat entry point (FlashMLA's flash_mla_with_kvcache with indices) gives the same out.
    meta, _ = flash_mla.get_mla_metadata()
    c_out, c_lse = flash_mla.flash_mla_with_kvcache(q, kv, None, None, 512, meta, softmax_scale=scale,
                                                    is_fp8_kvcache=True, indices=indices.cuda(),
                                                    topk_length=topk_length, attn_sink=attn_sink)
    assert torch.equal(c_out, out), "compat flash_mla_with_kvcache out differs from ops.sparse_decode"
    assert torch.equal(c_lse, torch.where(torch.isneginf(lse), float("inf"), lse)), \
        "compat lse: expected ops' lse with -inf replaced by +inf"


@pytest.mark.parametrize("h_q", [16, 128])
def test_dense_decode_fp8_cache_matches_dequantized_bf16(h_q):
    # Dense decode over a V32 cache equals dense decode over its dequantized
    # values (exact in bf16: the scales are powers of two), through ops and compat.
    case = DenseCase([300, 0, 64, 129], 2, h_q, causal=True, seed=h_q)
    n = case.num_blocks * PAGE
    rows = case.kv.float().cpu().reshape(n, 576)
    finite = torch.isfinite(rows).all(-1)
    raw = encode_v32(torch.where(finite[:, None], rows, 0.0))
    raw[~finite] = 0xFF                          # NaN bytes wherever the bf16 cache held NaN
    fp8_kv = raw.reshape(case.num_blocks, PAGE, 1, 656).cuda()
    dequant = torch.where(finite[:, None], decode_v32(raw), float("nan"))
    case.kv = dequant.reshape(case.num_blocks, PAGE, 1, 576).to(torch.bfloat16).cuda()
    plan = case.plan()
    out, lse = ops.dense_decode(case.q, fp8_kv, case.block_table, case.cache_seqlens, plan, case.scale, True)
    check_against_reference(case, out, lse, what="dense_decode over a V32 cache")
    meta, _ = flash_mla.get_mla_metadata()
    c_out, _ = flash_mla.flash_mla_with_kvcache(case.q, fp8_kv, case.block_table, case.cache_seqlens, 512,
                                                meta, causal=True, is_fp8_kvcache=True)
    assert torch.equal(c_out, out), "compat FP8 dense out differs from ops.dense_decode"
    meta, _ = flash_mla.get_mla_metadata()
    with pytest.raises(ValueError, match="is_fp8_kvcache: expected True"):
        flash_mla.flash_mla_with_kvcache(case.q, fp8_kv, case.block_table, case.cache_seqlens, 512, meta)


def test_flashmla_style_script_runs_unchanged():
    # python/examples/flashmla_style_decode.py is a FlashMLA program with its import changed.
    import pathlib
    import runpy

    script = pathlib.Path(__file__).resolve().parents[2] / "python" / "examples" / "flashmla_style_decode.py"
    namespace = runpy.run_path(str(script))
    assert namespace["main"]() == 0
