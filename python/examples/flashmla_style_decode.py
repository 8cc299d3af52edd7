"""A decode step written against FlashMLA's Python API, run on FlashMLA-cpp.

The only line that differs from a FlashMLA program is the import. The rest
follows FlashMLA's documented usage: metadata from get_mla_metadata, then
flash_mla_with_kvcache per layer, lse with +inf for rows with no key. It
checks the result against a plain PyTorch fp32 evaluation with the spec's
accuracy bar and exits non-zero on a mismatch.

    python3 python/examples/flashmla_style_decode.py
"""
import math
import sys

import torch

import flashmla.compat as flash_mla  # was: import flash_mla


def reference(q, blocked_k, block_table, cache_seqlens, head_dim_v, causal, softmax_scale):
    b, s_q, h_q, d = q.shape
    block_size, h_kv = blocked_k.shape[1], blocked_k.shape[2]
    out = torch.zeros(b, s_q, h_q, head_dim_v, dtype=torch.float32)
    lse = torch.full((b, h_q, s_q), float("inf"), dtype=torch.float32)
    for i in range(b):
        n = int(cache_seqlens[i])
        if n == 0:
            continue
        pages = block_table[i, : math.ceil(n / block_size)]
        k = blocked_k[pages].reshape(-1, h_kv, d)[:n].float()  # [n, h_kv, d]
        k = k.repeat_interleave(h_q // h_kv, dim=1)             # [n, h_q, d]
        s = torch.einsum("shd,nhd->hsn", q[i].float(), k) * softmax_scale
        if causal:
            key = torch.arange(n)
            for j in range(s_q):
                s[:, j, key >= n - (s_q - 1 - j)] = float("-inf")
        row_lse = torch.logsumexp(s, dim=-1)                    # [h_q, s_q]
        p = torch.exp(s - row_lse[..., None]).nan_to_num(0.0).to(q.dtype).float()
        out[i] = torch.einsum("hsn,nhd->shd", p, k[..., :head_dim_v])
        lse[i] = torch.where(torch.isfinite(row_lse), row_lse, torch.full_like(row_lse, float("inf")))
    return out, lse


def main():
    torch.manual_seed(0)
    b, s_q, h_q, h_kv, d, dv, block_size = 6, 2, 64, 1, 576, 512, 64
    causal = True
    cache_seqlens = torch.tensor([1, 700, 64, 0, 4097, 129], dtype=torch.int32, device="cuda")
    max_seqlen_pad = math.ceil(int(cache_seqlens.max()) / 256) * 256
    q = torch.randn(b, s_q, h_q, d, dtype=torch.bfloat16, device="cuda") / 10
    block_table = torch.arange(b * max_seqlen_pad // block_size, dtype=torch.int32,
                               device="cuda").view(b, max_seqlen_pad // block_size)
    blocked_k = torch.randn(block_table.numel(), block_size, h_kv, d, dtype=torch.bfloat16, device="cuda") / 10
    for i in range(b):  # FlashMLA's tests poison every slot past the length with NaN
        blocked_k.view(b, max_seqlen_pad, h_kv, d)[i, int(cache_seqlens[i]):] = float("nan")

    tile_scheduler_metadata, num_splits = flash_mla.get_mla_metadata(cache_seqlens, s_q * h_q // h_kv, h_kv)
    outs = []
    for _layer in range(3):  # one metadata object serves every layer of the step
        out, lse = flash_mla.flash_mla_with_kvcache(q, blocked_k, block_table, cache_seqlens, dv,
                                                   tile_scheduler_metadata, num_splits, causal=causal)
        outs.append(out)
    torch.cuda.synchronize()

    ref_out, ref_lse = reference(q.cpu(), blocked_k.cpu(), block_table.cpu(), cache_seqlens.cpu(), dv, causal,
                                 d ** -0.5)
    got = out.float().cpu()
    bound = 1e-3 + (2 / 128) * ref_out.abs()
    errors = []
    if not torch.equal(torch.isnan(got), torch.isnan(ref_out)):
        errors.append("NaN positions differ")
    if ((got - ref_out).abs() > bound).any():
        errors.append(f"out: {int(((got - ref_out).abs() > bound).sum())} elements out of bounds")
    cos = 1 - torch.nn.functional.cosine_similarity(got.flatten().double(), ref_out.flatten().double(), dim=0)
    if cos > 5e-6:
        errors.append(f"out: cosine distance {float(cos):.3g} > 5e-6")
    got_lse = lse.cpu()
    if not torch.equal(torch.isinf(got_lse), torch.isinf(ref_lse)):
        errors.append("lse: +inf positions differ (FlashMLA returns +inf for rows with no key)")
    finite = torch.isfinite(ref_lse)
    if ((got_lse[finite] - ref_lse[finite]).abs() > 1e-5 + 1.3e-4 * ref_lse[finite].abs()).any():
        errors.append("lse out of bounds")
    if any(not torch.equal(o, outs[0]) for o in outs):
        errors.append("the layers' outputs differ bitwise")
    if errors:
        print("FAILED: " + "; ".join(errors))
        return 1
    print(f"ok: flash_mla_with_kvcache through flashmla.compat matches the reference "
          f"(max |err| {float((got - ref_out).abs().max()):.2e}, cosine distance {float(cos):.2e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
