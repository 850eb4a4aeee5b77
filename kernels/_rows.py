"""Row primitives shared by the softmax and Gumbel kernels: the
NaN-propagating row maximum, the row sums and dot products (blocked, with
their error bound), and the column-order helpers of the short-row paths.
Each kernel module imports them from here; ``rows.cuh`` holds the CUDA
twins."""

from __future__ import annotations

import numpy as np

NOISE_DRAW, NOISE_ARRAY, NOISE_NONE = 0, 1, 2
"""The ``noise_mode`` of the Gumbel-Softmax kernels: draw the noise from the
key, read it from the ``noise`` array, or add none (the numbers of
``gumbel_np._ops`` and of ``gnp::NOISE_*`` in ``rows.cuh``)."""

from ._jit import (
    bits_float,
    float_bits,
    helper,
    magnitude_bits,
    maximum,
    part,
    select,
    summing,
    wide_vectors,
)


@helper
def row_max(x):
    """NaN-propagating maximum of a row (``-inf`` when empty).

    Computed on the bits: as signed integers, non-negative floats order as
    their values and negative floats in reverse, all below the non-negative
    ones.  So the largest of the bits is the maximum when it is non-negative,
    and otherwise the smallest of the bits is (``-inf`` at the latest); the
    largest magnitude tells NaN.  Three integer reductions, whose horizontal
    steps are one instruction each, where ``llvm.maximum`` (``-0 < +0``, NaN)
    costs six vector instructions per step: at K = 128, float32, one thread,
    0.30 against 0.40 ns per value (the row sum takes 0.23)."""
    t = x.dtype.type
    hi = float_bits(t(-0.0))  # the most negative integer
    lo = float_bits(t(-np.inf))
    mag = float_bits(t(0.0))
    for j in range(x.size):
        b = float_bits(x[j])
        a = magnitude_bits(x[j])
        hi = select(b > hi, b, hi)
        lo = select(b < lo, b, lo)
        mag = select(a > mag, a, mag)
    m = bits_float(select(hi >= 0, hi, lo))
    return select(mag > float_bits(t(np.inf)), t(np.nan), m)


SHORT_SUM = 32
"""Rows shorter than this are summed inline, in order: the call into the
vectorised (``reassoc``) reduction costs more than it saves there.  The order
depends on the row length only, so results stay independent of chunking."""


SUM_BLOCK = 1024
"""Rows longer than this are summed in blocks of this many values: each block
by the vectorised (``reassoc``) reduction in the row's dtype, the block sums
added in float64.  Rows up to a block are one vectorised reduction.

Error bound, for ``n`` terms of one sign (the exponentials of the softmax
family), ``u`` the unit roundoff of the row's dtype (``2**-24`` float32,
``2**-53`` float64): a block summed in any order is within ``(B - 1) u`` of
its exact sum (relative), the float64 accumulation of ``ceil(n / B)`` block
sums adds ``ceil(n / B) * 2**-53`` and the final rounding ``u``, so the
relative error is at most ``B u + ceil(n / B) * 2**-53``: ``6.1e-5`` for
float32 at any ``n`` below ``2**43`` (the vectorised order, 16 to 64 partial
sums, typically gives ``1e-7``), where a single float32 accumulation drifts
by ``n u`` (``3.9e-3`` measured at ``n = 2**28``)."""


@summing
def _block_sum(x):
    wide_vectors()
    s = x.dtype.type(0)
    for j in range(x.size):
        s += x[j]
    return s


@summing
def _block_dot(x, y):
    wide_vectors()
    s = x.dtype.type(0)
    for j in range(x.size):
        s += x[j] * y[j]
    return s


@part
def _long_sum(x):
    """Sum of a row longer than :data:`SUM_BLOCK` (blocked, float64 across blocks)."""
    s = 0.0
    for b in range(0, x.size, SUM_BLOCK):
        s += np.float64(_block_sum(x[b : b + SUM_BLOCK]))
    return x.dtype.type(s)


@part
def _long_dot(x, y):
    """Dot product of rows longer than :data:`SUM_BLOCK`, as :func:`_long_sum`."""
    s = 0.0
    for b in range(0, x.size, SUM_BLOCK):
        s += np.float64(_block_dot(x[b : b + SUM_BLOCK], y[b : b + SUM_BLOCK]))
    return x.dtype.type(s)


@helper
def row_sum(x):
    """Sum of a row (one call at most: a call costs about 10 ns)."""
    if x.size > SUM_BLOCK:
        return _long_sum(x)
    if x.size >= SHORT_SUM:
        return _block_sum(x)
    s = x.dtype.type(0)
    for j in range(x.size):
        s += x[j]
    return s


@helper
def row_dot(x, y):
    """Dot product of two rows."""
    if x.size > SUM_BLOCK:
        return _long_dot(x, y)
    if x.size >= SHORT_SUM:
        return _block_dot(x, y)
    s = x.dtype.type(0)
    for j in range(x.size):
        s += x[j] * y[j]
    return s


@helper
def to_columns(x, xc, k, rows):
    """``xc[j * rows + r] = x[r * k + j]``: a flat block of rows in column order."""
    # Column by column: strided loads, contiguous stores (0.33 ns per value
    # at k = 10, against 0.55 row by row).
    for j in range(k):
        c = xc[j * rows : (j + 1) * rows]
        xj = x[j:]
        for r in range(rows):
            c[r] = xj[r * k]


@helper
def from_columns(xc, x, k, rows):
    """``x[r * k + j] = xc[j * rows + r]``: back to row order."""
    # Column by column: contiguous loads, strided stores (0.25 ns per value at
    # k = 10, against 1.0 row by row).
    for j in range(k):
        c = xc[j * rows : (j + 1) * rows]
        xj = x[j:]
        for r in range(rows):
            xj[r * k] = c[r]


@helper
def scale_columns(xc, k, rows, f):
    """``xc[j * rows + r] *= f[r]``: scale each row of a column-order block.

    Scaling in column order and then moving the block back costs less than
    scaling inside the strided stores (2.31 against 2.46 ns per value for the
    whole K = 10 softmax, float32, one thread)."""
    for j in range(k):
        c = xc[j * rows : (j + 1) * rows]
        for r in range(rows):
            c[r] *= f[r]


@helper
def shift_columns(xc, k, rows, m):
    """``xc[j * rows + r] -= m[r]``: shift each row of a column-order block
    (in column order, before moving it back: see :func:`scale_columns`)."""
    for j in range(k):
        c = xc[j * rows : (j + 1) * rows]
        for r in range(rows):
            c[r] = c[r] - m[r]


@helper
def column_max(xc, k, rows, m):
    """``m[r]`` = NaN-propagating maximum of row ``r`` of a column-order block."""
    for r in range(rows):
        m[r] = xc.dtype.type(-np.inf)
    for j in range(k):
        c = xc[j * rows : (j + 1) * rows]
        for r in range(rows):
            m[r] = maximum(m[r], c[r])


@helper
def column_block(x, r0, r1, k):
    """Rows ``r0 <= r < r1`` of the flat array ``x`` in column order, and
    their maxima."""
    rows = r1 - r0
    xc = np.empty(rows * k, x.dtype)
    m = np.empty(rows, x.dtype)
    to_columns(x[r0 * k : r1 * k], xc, k, rows)
    column_max(xc, k, rows, m)
    return xc, m
