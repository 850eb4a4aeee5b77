"""Row primitives shared by the softmax and Gumbel kernels: the
NaN-propagating row maximum, the row sums and dot products (blocked, with
their error bound), the softmax core (exponentials and normalisation, in row
and in column order), the one-hot of the first maximum, the noise modes, and
the column-order helpers of the short-row paths.
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
from ._vmath import vexp_shifted


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


@helper
def softmax_row(src, dst, m, f, num):
    """The softmax core of one row: ``dst = num * exp((src - m) * f) / sum``
    (``m``: the row maximum; ``f``: the factor of the shifted values, 1 for
    softmax, ``1 / tau`` for Gumbel-Softmax, exact either way; ``num``: the
    numerator of the normalisation).  ``src`` may be ``dst``."""
    for j in range(dst.size):
        dst[j] = vexp_shifted((src[j] - m) * f)
    c = num / row_sum(dst)
    for j in range(dst.size):
        dst[j] *= c


@helper
def softmax_columns(xc, k, rows, m, num):
    """The softmax core in column order: row ``r`` of the block ``xc``
    becomes ``num[r] * exp(xc - m[r]) / sum`` (the sums added over ``j`` in
    order, as :func:`row_sum` does for these ``k``); ``num`` is overwritten
    with ``num[r] / sum``.  (Gumbel-Softmax scales the shifted values by
    ``1 / tau`` first and passes maxima of 0: the same exponentials, and no
    multiplication by 1 for the softmax itself.)"""
    s = np.empty(rows, xc.dtype)
    for r in range(rows):
        s[r] = xc.dtype.type(0)
    for j in range(k):
        c = xc[j * rows : (j + 1) * rows]
        for r in range(rows):
            e = vexp_shifted(c[r] - m[r])
            c[r] = e
            s[r] += e
    for r in range(rows):
        num[r] = num[r] / s[r]
    scale_columns(xc, k, rows, num)


@helper
def first_index_of(z, v):
    """Lowest ``j`` with ``z[j] == v``, or ``z.size`` if none (``v`` NaN)."""
    k = z.size
    a = k
    for j in range(k):
        a = min(a, select(z[j] == v, np.int64(j), np.int64(k)))
    return a


@part
def first_maximum(row):
    """The maximum of a row and the lowest index holding it (``row.size`` for
    a NaN row), compiled on its own: in a function that then writes the row,
    LLVM kept both loops scalar (hard Gumbel-Softmax, K = 1024: 0.42 against
    1.0 ns per value for the one-hot step)."""
    wide_vectors()
    my = row_max(row)
    return my, first_index_of(row, my)


@helper
def one_hot_row(row):
    """``row`` = the one-hot of its first maximum (ties to the lowest index; a
    NaN row stays NaN, as ``max - max`` is NaN there)."""
    k = row.size
    my, a = first_maximum(row)
    fill = my - my
    for j in range(k):
        row[j] = fill
    if a < k:
        row[a] = fill + 1


@helper
def one_hot_columns(xc, k, rows, m, out):
    """``out`` (a flat block in row order) = the one-hot of the first maximum
    of each row of the column-order block ``xc``, as :func:`one_hot_row`
    (``m``: scratch for the maxima)."""
    column_max(xc, k, rows, m)
    first = np.empty(rows, np.int32)
    for r in range(rows):
        first[r] = np.int32(k)
    for j in range(k - 1, -1, -1):
        c = xc[j * rows : (j + 1) * rows]
        for r in range(rows):
            first[r] = select(c[r] == m[r], np.int32(j), first[r])
    one = xc.dtype.type(1)
    for j in range(k):
        oj = out[j:]
        for r in range(rows):
            fill = m[r] - m[r]
            oj[r * k] = select(first[r] == j, fill + one, fill)
