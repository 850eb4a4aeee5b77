"""Numba kernels of the softmax family: logsumexp, softmax, log_softmax and
their backward passes.  Twin of ``softmax.cu``.

Every kernel works on a block of rows of a flat C-ordered ``(rows, k)`` array
(see :func:`row_kernel`): the per-row reductions run row by row, the
exponentials in one flat loop over the whole block, so that short rows (k
about 10) still vectorise.  A block is a few KiB and stays in L1, so each
input is read from memory once and each output written once.

NaN and inf follow NumPy/SciPy: the row maximum propagates NaN, so a NaN row
gives NaN; an all ``-inf`` row has logsumexp ``-inf`` and softmax NaN; a row
holding ``+inf`` has logsumexp ``+inf`` and softmax/log_softmax NaN.
"""

from __future__ import annotations

import numpy as np

from ._jit import helper, maximum, row_kernel, summing
from ._vmath import vexp, vlog


@helper
def row_max(x, o, k):
    """NaN-propagating maximum of ``x[o:o + k]`` (``-inf`` when ``k == 0``)."""
    m = x.dtype.type(-np.inf)
    for j in range(o, o + k):
        m = maximum(m, x[j])
    return m


@summing
def row_sum(x, o, k):
    """Sum of ``x[o:o + k]`` (vectorised reduction)."""
    s = x.dtype.type(0)
    for j in range(o, o + k):
        s += x[j]
    return s


@summing
def row_dot(x, y, o, k):
    """Dot product of ``x[o:o + k]`` and ``y[o:o + k]`` (vectorised reduction)."""
    s = x.dtype.type(0)
    for j in range(o, o + k):
        s += x[j] * y[j]
    return s


@helper
def exp_inplace(a, i0, i1):
    """``a[i] = exp(a[i])`` for ``i0 <= i < i1``: one flat, vectorised loop."""
    for i in range(i0, i1):
        a[i] = vexp(a[i])


@helper
def shift_rows(x, out, r0, r1, k, maxima):
    """``out = x - max(row)`` row by row; the maxima go to ``maxima[r - r0]``."""
    for r in range(r0, r1):
        o = r * k
        m = row_max(x, o, k)
        maxima[r - r0] = m
        for j in range(o, o + k):
            out[j] = x[j] - m


@row_kernel
def softmax_fwd(r0, r1, x, out, k, scale):
    """``out = scale[r] * softmax(x)`` per row; ``scale`` empty means 1."""
    maxima = np.empty(r1 - r0, x.dtype)
    shift_rows(x, out, r0, r1, k, maxima)
    exp_inplace(out, r0 * k, r1 * k)
    for r in range(r0, r1):
        o = r * k
        c = (scale[r] if scale.size > 0 else out.dtype.type(1)) / row_sum(out, o, k)
        for j in range(o, o + k):
            out[j] *= c


logsumexp_bwd = softmax_fwd
"""``logsumexp_bwd(..., x, out, k, g)``: ``g[r] * softmax(x)``, the VJP of logsumexp."""


@row_kernel
def logsumexp_fwd(r0, r1, x, out, k):
    """``out[r] = log(sum(exp(x[r])))``."""
    e = np.empty((r1 - r0) * k, x.dtype)
    maxima = np.empty(r1 - r0, x.dtype)
    shift_rows(x[r0 * k : r1 * k], e, 0, r1 - r0, k, maxima)
    exp_inplace(e, 0, (r1 - r0) * k)
    for r in range(r0, r1):
        m = maxima[r - r0]
        out[r] = m if np.isinf(m) else m + vlog(row_sum(e, (r - r0) * k, k))


@row_kernel
def log_softmax_fwd(r0, r1, x, out, k):
    """``out = x - logsumexp(x)`` per row, computed as ``(x - max) - log(sum)``."""
    e = np.empty((r1 - r0) * k, x.dtype)
    maxima = np.empty(r1 - r0, x.dtype)
    shift_rows(x, out, r0, r1, k, maxima)
    for i in range(r0 * k, r1 * k):
        e[i - r0 * k] = vexp(out[i])
    for r in range(r0, r1):
        o = r * k
        ls = vlog(row_sum(e, (r - r0) * k, k))
        for j in range(o, o + k):
            out[j] -= ls


@row_kernel
def softmax_bwd(r0, r1, g, y, out, k):
    """``out = y * (g - <g, y>)`` per row."""
    for r in range(r0, r1):
        o = r * k
        d = row_dot(g, y, o, k)
        for j in range(o, o + k):
            out[j] = y[j] * (g[j] - d)


@row_kernel
def log_softmax_bwd(r0, r1, g, y, out, k):
    """``out = g - exp(y) * sum(g)`` per row."""
    for i in range(r0 * k, r1 * k):
        out[i] = vexp(y[i])
    for r in range(r0, r1):
        o = r * k
        s = row_sum(g, o, k)
        for j in range(o, o + k):
            out[j] = g[j] - out[j] * s
