"""CPU backend: the backend contract on NumPy arrays, run by Numba kernels.

Every function takes 2-D C-contiguous ``(rows, K)`` arrays of one float dtype
(float32 or float64) and writes into preallocated outputs; the public layer
has already validated, converted and reshaped.  ``kernels/cuda.py`` implements
the same contract on CuPy arrays.

Kernel modules are imported on first use, so ``import gumbel_np`` compiles
nothing; each kernel compiles on its first call for a given dtype.
"""

from __future__ import annotations

import importlib

import numpy as np

from ._jit import as_u64

name = "cpu"
_NO_ROWS = np.empty(0, np.int64)


def _kernels(module):
    return importlib.import_module(f"{__package__}.{module}")


def _row_ids(row_ids):
    return _NO_ROWS if row_ids is None else row_ids


def logsumexp_fwd(x, out):
    rows, k = x.shape
    _kernels("softmax").logsumexp_fwd(rows, k, x.ravel(), out, k)


def softmax_fwd(x, out):
    rows, k = x.shape
    _kernels("softmax").softmax_fwd(rows, k, x.ravel(), out.ravel(), k, np.empty(0, x.dtype))


def log_softmax_fwd(x, out):
    rows, k = x.shape
    _kernels("softmax").log_softmax_fwd(rows, k, x.ravel(), out.ravel(), k)


def logsumexp_bwd(g, x, out):
    rows, k = x.shape
    _kernels("softmax").logsumexp_bwd(rows, k, x.ravel(), out.ravel(), k, g)


def softmax_bwd(g, y, out):
    rows, k = y.shape
    _kernels("softmax").softmax_bwd(rows, k, g.ravel(), y.ravel(), out.ravel(), k)


def log_softmax_bwd(g, y, out):
    rows, k = y.shape
    _kernels("softmax").log_softmax_bwd(rows, k, g.ravel(), y.ravel(), out.ravel(), k)


def gumbel_fwd(out, key, row_ids=None, draw=0):
    rows, k = out.shape
    _kernels("gumbel").gumbel_fwd(
        rows, k, out.ravel(), k, as_u64(key[0]), as_u64(key[1]), as_u64(draw), _row_ids(row_ids)
    )
