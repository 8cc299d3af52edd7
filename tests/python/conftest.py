"""Shared helpers of the Python tests.

CPU tests drive flashmla._core with NumPy arrays (no torch, no GPU): every
argument check runs before the device check, so a valid call on host arrays
ends in ValueError "expected device memory" and an invalid one in the
library's own message.

NumPy has no bfloat16; ``Reinterpret`` hands the bindings a NumPy array's
memory through DLPack under another dtype (bf16, fp8) so the bf16-only
operations can be validated on the CPU too.
"""

import ctypes

import numpy as np

# DLPack dtype codes (dlpack.h) and device types.
DL_INT, DL_UINT, DL_FLOAT, DL_BFLOAT, DL_FLOAT8_E4M3FN = 0, 1, 2, 4, 10
DL_CPU = 1


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int), ("device_id", ctypes.c_int)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", _DLDevice),
        ("ndim", ctypes.c_int),
        ("dtype", _DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


class _DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", _DLTensor), ("manager_ctx", ctypes.c_void_p),
                ("deleter", ctypes.c_void_p)]


_CAPSULE_NAME = b"dltensor"
_PyCapsule_New = ctypes.pythonapi.PyCapsule_New
_PyCapsule_New.restype = ctypes.py_object
_PyCapsule_New.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]


class Reinterpret:
    """A NumPy array's memory seen through DLPack as (code, bits) elements.

    The element size must equal the array's itemsize; shape and strides are
    the array's. Each ``__dlpack__`` call makes a fresh capsule (a capsule is
    consumed once) with no deleter; this object keeps the memory alive.
    """

    def __init__(self, array: np.ndarray, code: int, bits: int):
        assert array.itemsize * 8 == bits, "the reinterpreted dtype must keep the element size"
        self.array = array
        self.code, self.bits = code, bits
        self.shape = array.shape
        self._keep = []

    def __dlpack__(self, **kwargs):
        a = self.array
        shape = (ctypes.c_int64 * a.ndim)(*a.shape)
        strides = (ctypes.c_int64 * a.ndim)(*(s // a.itemsize for s in a.strides))
        managed = _DLManagedTensor()
        managed.dl_tensor.data = a.ctypes.data
        managed.dl_tensor.device = _DLDevice(DL_CPU, 0)
        managed.dl_tensor.ndim = a.ndim
        managed.dl_tensor.dtype = _DLDataType(self.code, self.bits, 1)
        managed.dl_tensor.shape = shape
        managed.dl_tensor.strides = strides
        managed.dl_tensor.byte_offset = 0
        managed.manager_ctx = None
        managed.deleter = None
        self._keep.append((shape, strides, managed))
        return _PyCapsule_New(ctypes.addressof(managed), _CAPSULE_NAME, None)

    def __dlpack_device__(self):
        return (DL_CPU, 0)


def aligned(shape, dtype, align: int = 256, fill=0) -> np.ndarray:
    """A C-contiguous array whose data pointer is a multiple of ``align`` bytes."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.zeros(nbytes + align, dtype=np.uint8)
    offset = (-raw.ctypes.data) % align
    array = raw[offset:offset + nbytes].view(dtype).reshape(shape)
    array[...] = fill
    return array


def bf16(shape) -> Reinterpret:
    return Reinterpret(aligned(shape, np.uint16), DL_BFLOAT, 16)


def fp8(shape) -> Reinterpret:
    return Reinterpret(aligned(shape, np.uint8), DL_FLOAT8_E4M3FN, 8)

