"""CPU backend: the backend contract on NumPy arrays, run by Numba kernels.

Every function takes 2-D C-contiguous ``(rows, K)`` arrays of one float dtype
(float32 or float64) and writes into preallocated outputs; the public layer
has already validated, converted and reshaped.  ``kernels/cuda.py`` implements
the same contract on CuPy arrays.

Kernel modules are imported on first use, so ``import gumbel_np`` compiles
nothing; each kernel compiles on its first call for a given dtype.
"""

from __future__ import annotations

import functools
import importlib

import numpy as np

from ._jit import as_u64

name = "cpu"
_NO_ROWS = np.empty(0, np.int64)


@functools.cache
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


def _noise_args(noise, like):
    """``(noise_mode, noise array)`` of the kernels for ``noise``."""
    if noise is None:
        return 0, like[:0]
    if isinstance(noise, float):
        return 2, like[:0]
    return 1, noise.ravel()


def gumbel_softmax_fwd(logits, out, key, row_ids, tau, noise, out_soft, hard):
    rows, k = logits.shape
    mode, noise_flat = _noise_args(noise, out.ravel())
    soft = out.ravel()[:0] if out_soft is None else out_soft.ravel()
    key = (0, 0) if key is None else key
    _kernels("gumbel").gumbel_softmax_fwd(
        rows, k, logits.ravel(), out.ravel(), k, as_u64(key[0]), as_u64(key[1]),
        _row_ids(row_ids), tau, mode, noise_flat, soft, bool(hard),
    )


def gumbel_softmax_bwd(g, y_soft, tau, out, dtau):
    rows, k = y_soft.shape
    dt = out.ravel()[:0] if dtau is None else dtau
    _kernels("gumbel").gumbel_softmax_bwd(rows, k, g.ravel(), y_soft.ravel(), out.ravel(), k, tau, dt)


def categorical_fwd(logits, out, key, row_ids):
    rows, k = logits.shape
    s = out.shape[1]
    _kernels("gumbel").categorical_fwd(
        rows, k, logits.ravel(), out.ravel(), k, s, as_u64(key[0]), as_u64(key[1]), _row_ids(row_ids),
        work=k * s,
    )
