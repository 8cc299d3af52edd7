"""flashmla.compat without a GPU: FlashMLA's names, signatures and defaults."""

import importlib.util
import inspect

import pytest

import flashmla.compat as flash_mla

HAS_TORCH = importlib.util.find_spec("torch") is not None


def parameters(function):
    return [(p.name, p.default) for p in inspect.signature(function).parameters.values()]


def test_public_names():
    for name in ("get_mla_metadata", "flash_mla_with_kvcache", "flash_mla_sparse_fwd",
                 "FlashMLASchedMeta"):
        assert hasattr(flash_mla, name)


def test_flash_mla_with_kvcache_signature():
    empty = inspect.Parameter.empty
    assert parameters(flash_mla.flash_mla_with_kvcache) == [
        ("q", empty), ("k_cache", empty), ("block_table", empty), ("cache_seqlens", empty),
        ("head_dim_v", empty), ("tile_scheduler_metadata", empty), ("num_splits", None),
        ("softmax_scale", None), ("causal", False), ("is_fp8_kvcache", False), ("indices", None),
        ("attn_sink", None), ("extra_k_cache", None), ("extra_indices_in_kvcache", None),
        ("topk_length", None), ("extra_topk_length", None)]


def test_flash_mla_sparse_fwd_signature():
    empty = inspect.Parameter.empty
    assert parameters(flash_mla.flash_mla_sparse_fwd) == [
        ("q", empty), ("kv", empty), ("indices", empty), ("sm_scale", empty), ("d_v", 512),
        ("attn_sink", None), ("topk_length", None)]


def test_get_mla_metadata_ignores_arguments():
    for args, kwargs in [((), {}), ((None, 128, 1), {}), ((), {"num_heads_q": 128, "topk": 2048})]:
        meta, second = flash_mla.get_mla_metadata(*args, **kwargs)
        assert second is None
        assert isinstance(meta, flash_mla.FlashMLASchedMeta)
        assert not meta.have_initialized
        assert meta.config is None and meta.tile_scheduler_metadata is None
        assert meta.num_splits is None


def test_metadata_objects_are_independent():
    first, _ = flash_mla.get_mla_metadata()
    second, _ = flash_mla.get_mla_metadata()
    assert first is not second


@pytest.mark.skipif(HAS_TORCH, reason="torch is installed; this checks the message without it")
def test_calls_need_torch():
    meta, _ = flash_mla.get_mla_metadata()
    with pytest.raises(ImportError):
        flash_mla.flash_mla_with_kvcache(None, None, None, None, 512, meta)
