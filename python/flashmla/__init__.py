"""FlashMLA-cpp: Multi-head Latent Attention kernels for Hopper (sm_90a).

Three layers, each usable on its own:

- ``flashmla._core``: the torch-free core. Takes DLPack arrays (PyTorch, CuPy,
  JAX) without copying, an explicit ``stream`` (an int, 0 = default stream),
  and caller-provided outputs, schedule and workspace. Runs on the device
  that owns the arrays.
- ``flashmla.ops``: PyTorch ops registered with ``torch.library``
  (``torch.ops.flashmla.*``), usable under ``torch.compile`` and in CUDA
  graphs, plus :class:`flashmla.ops.DecodePlan` for engines (plan once per
  step, decode every layer). Imports torch.
- ``flashmla.compat``: FlashMLA's Python API (``get_mla_metadata``,
  ``flash_mla_with_kvcache``, ``flash_mla_sparse_fwd``), so that
  ``import flashmla.compat as flash_mla`` runs FlashMLA programs unchanged.

Errors: ``ValueError`` for invalid arguments, ``NotImplementedError`` for
valid inputs this build or GPU has no kernel for (fall back to another
backend), ``RuntimeError`` for CUDA errors; the message is the library's.

Importing this package does not import torch: the names of ``flashmla.ops``
(``DecodePlan``, ``dense_decode``, ...) are loaded on first use.
"""

from . import _core
from ._core import (
    SCHEDULE_META_FIELDS,
    check_device_supported,
    describe_schedule,
    device_count,
    device_info,
    plan_decode_sizes,
)

__version__ = _core.__version__

_OPS_NAMES = (
    "DecodePlan",
    "plan_decode",
    "dense_decode",
    "sparse_decode",
    "sparse_prefill",
    "combine",
)

__all__ = [
    "SCHEDULE_META_FIELDS",
    "check_device_supported",
    "describe_schedule",
    "device_count",
    "device_info",
    "is_device_supported",
    "plan_decode_sizes",
    *_OPS_NAMES,
]


def is_device_supported(device: int = 0) -> tuple[bool, str]:
    """``(True, "")`` when CUDA device ``device`` can run the kernels, else ``(False, reason)``."""
    try:
        check_device_supported(device)
    except (NotImplementedError, ValueError, RuntimeError) as error:
        return False, str(error)
    return True, ""


def __getattr__(name: str):
    if name in _OPS_NAMES:
        from . import ops

        return getattr(ops, name)
    raise AttributeError(f"module 'flashmla' has no attribute '{name}'")
