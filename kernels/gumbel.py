"""Numba kernels of the Gumbel family: noise, Gumbel-Softmax, Gumbel-Max.

Twin of ``gumbel.cu``.  Noise comes from the Philox stream of ``philox.py`` (element
``j`` of row id ``rid`` at draw ``d``), so a value never depends on the block,
chunk or thread that computes it.  Each row is done in two loops: the Philox
words of the row go to a small scratch buffer that stays in L1, then one flat
loop turns them into noise and consumes it.  Both loops vectorise; the fused
single loop, with its four interleaved outputs per Philox block, did not and
ran 14x slower (364 ms against 26 ms for 2**24 float32 values, one thread).
Short rows (:data:`SHORT_ROW`) draw and consume their noise in column order.
"""

from __future__ import annotations

import numba
import numpy as np

from ._jit import by_type, helper, maximum, part, row_kernel, select, wide_vectors
from ._vmath import vlog, vlog_pos
from ._rows import (
    NOISE_ARRAY,
    NOISE_DRAW,
    column_block,
    column_max,
    first_index_of,
    from_columns,
    row_dot,
    row_max,
    row_sum,
    one_hot_columns,
    one_hot_row,
    shift_columns,
    softmax_columns,
    softmax_row,
    to_columns,
)
from .philox import philox4x32_10, uniform_f32, uniform_f64

_LO32 = np.uint64(0xFFFFFFFF)
_U32 = np.uint64(32)


@helper
def philox_words_f32(words, o, n, k0, k1, draw, rid):
    """``words[o + j]`` = the Philox word of float32 element ``j < n`` of row
    ``rid``; up to 3 words past the row are overwritten."""
    rlo = np.uint64(rid) & _LO32
    rhi = np.uint64(rid) >> _U32
    nblocks = (n + 3) // 4
    w = words[o : o + 4 * nblocks]
    for b in range(nblocks):
        w0, w1, w2, w3 = philox4x32_10(np.uint64(b), draw, rlo, rhi, k0, k1)
        w[4 * b] = np.uint32(w0)
        w[4 * b + 1] = np.uint32(w1)
        w[4 * b + 2] = np.uint32(w2)
        w[4 * b + 3] = np.uint32(w3)


@helper
def philox_words_f64(words, o, n, k0, k1, draw, rid):
    """``words[o + j]`` = the 64 Philox bits of float64 element ``j < n`` of row
    ``rid``; up to 1 word past the row is overwritten."""
    rlo = np.uint64(rid) & _LO32
    rhi = np.uint64(rid) >> _U32
    nblocks = (n + 1) // 2
    w = words[o : o + 2 * nblocks]
    for b in range(nblocks):
        w0, w1, w2, w3 = philox4x32_10(np.uint64(b), draw, rlo, rhi, k0, k1)
        w[2 * b] = (w0 << _U32) | w1
        w[2 * b + 1] = (w2 << _U32) | w3


@helper
def block_row_ids(row_ids, r0, r1):
    """``(ids, base)`` with ``row_id(ids, r) + base`` the stream id of row
    ``r0 + r``: the block's slice of ``row_ids``, indexed from 0 (so a loop over
    ``r`` loads them contiguously and vectorises), or the offset ``r0`` when
    there are none."""
    return row_ids[r0:r1], select(row_ids.size > 0, np.int64(0), np.int64(r0))


@helper
def philox_columns_f32(words, k, r0, r1, k0, k1, draw, row_ids):
    """Float32 Philox words of rows ``r0 <= r < r1`` in column order:
    ``words[j * R + (r - r0)]`` with ``R = r1 - r0`` (short rows: the loop runs
    across rows, so it vectorises when a row has only a few Philox blocks)."""
    rows = r1 - r0
    ids, base = block_row_ids(row_ids, r0, r1)
    for b in range((k + 3) // 4):
        w = words[4 * b * rows : 4 * (b + 1) * rows]
        for r in range(rows):
            rid = np.uint64(row_id(ids, r) + base)
            w0, w1, w2, w3 = philox4x32_10(np.uint64(b), draw, rid & _LO32, rid >> _U32, k0, k1)
            w[r] = np.uint32(w0)
            w[rows + r] = np.uint32(w1)
            w[2 * rows + r] = np.uint32(w2)
            w[3 * rows + r] = np.uint32(w3)


@helper
def philox_columns_f64(words, k, r0, r1, k0, k1, draw, row_ids):
    """Float64 twin of :func:`philox_columns_f32` (two words per value)."""
    rows = r1 - r0
    ids, base = block_row_ids(row_ids, r0, r1)
    for b in range((k + 1) // 2):
        w = words[2 * b * rows : 2 * (b + 1) * rows]
        for r in range(rows):
            rid = np.uint64(row_id(ids, r) + base)
            w0, w1, w2, w3 = philox4x32_10(np.uint64(b), draw, rid & _LO32, rid >> _U32, k0, k1)
            w[r] = (w0 << _U32) | w1
            w[rows + r] = (w2 << _U32) | w3


def philox_columns(words, k, r0, r1, k0, k1, draw, row_ids):
    """Philox words of a block of rows in column order (kernels only)."""
    raise NotImplementedError("philox_columns runs inside compiled kernels only")


by_type(philox_columns, {numba.uint32: philox_columns_f32, numba.uint64: philox_columns_f64}, of_dtype=True)


@helper
def exponential_f32(word):
    """Float32 standard exponential ``-log u`` from one Philox word: in
    ``[6e-8, 16.7]``, as ``u`` is in ``[2**-24, 1)`` (a positive normal
    argument, so the special-case-free log serves)."""
    return -vlog_pos(uniform_f32(np.uint64(word)))


@helper
def exponential_f64(word):
    """Float64 standard exponential from 64 Philox bits (in ``[1.1e-16,
    36.8]``)."""
    return -vlog_pos(uniform_f64(word >> _U32, word & _LO32))


@helper
def gumbel_f32(word):
    """Float32 Gumbel noise ``-log E`` from one Philox word (``E``, a
    positive normal number, from :func:`exponential_f32`)."""
    return -vlog_pos(exponential_f32(word))


@helper
def gumbel_f64(word):
    """Float64 Gumbel noise from 64 Philox bits (as :func:`gumbel_f32`)."""
    return -vlog_pos(exponential_f64(word))


def word_scratch(like, n):
    """Scratch for the Philox words of ``n`` elements of ``like``'s dtype
    (padded to whole Philox blocks; kernels only)."""
    raise NotImplementedError("word_scratch runs inside compiled kernels only")


def philox_words(words, o, n, k0, k1, draw, rid):
    """Philox words of one row into ``words`` (kernels only)."""
    raise NotImplementedError("philox_words runs inside compiled kernels only")


def gumbel_of(word):
    """Gumbel noise of one element from its Philox word(s) (kernels only)."""
    raise NotImplementedError("gumbel_of runs inside compiled kernels only")


def exponential_of(word):
    """The standard exponential of one element from its Philox word(s) (kernels only)."""
    raise NotImplementedError("exponential_of runs inside compiled kernels only")


by_type(
    word_scratch,
    {
        numba.float32: lambda like, n: np.empty(n + 3, np.uint32),
        numba.float64: lambda like, n: np.empty(n + 1, np.uint64),
    },
    of_dtype=True,
)


by_type(philox_words, {numba.uint32: philox_words_f32, numba.uint64: philox_words_f64}, of_dtype=True)


by_type(gumbel_of, {numba.uint32: gumbel_f32, numba.uint64: gumbel_f64})
by_type(exponential_of, {numba.uint32: exponential_f32, numba.uint64: exponential_f64})


@helper
def row_id(row_ids, r):
    """The stream id of row ``r``: ``row_ids[r]``, or ``r`` when none are given."""
    return row_ids[r] if row_ids.size > 0 else np.int64(r)


SHORT_ROW = 64
"""Rows shorter than this draw their Philox words across rows (column
order): a row of 10 float32 values has only 3 Philox blocks, too few for the
row-wise loop to vectorise (noise cost 4.7 ns per value that way at K = 10,
against 1.5 at K = 1024, one thread).  Their Gumbel-Softmax and Gumbel-Max
kernels then work in column order throughout (see
:data:`~.softmax.COLUMN_ROW`): at K = 10, one thread, 2.0x and 2.1x faster
than adding column-order noise to row-order rows."""


@helper
def block_words(words, r0, r1, k, k0, k1, draw, row_ids):
    """Philox words of rows ``r0 <= r < r1`` into ``words[(r - r0) * k + j]``.

    Rows are written in order, so the padding one row's last Philox block
    writes past its end is overwritten by the next row."""
    for r in range(r0, r1):
        philox_words(words, (r - r0) * k, k, k0, k1, draw, row_id(row_ids, r))


@helper
def row_noise(z, r0, r1, k, k0, k1, draw, row_ids):
    """Gumbel noise of rows ``r0 <= r < r1`` (``k >= SHORT_ROW``) into the
    flat block ``z``."""
    words = word_scratch(z, z.size + 3)
    block_words(words, r0, r1, k, k0, k1, draw, row_ids)
    for i in range(z.size):
        z[i] = gumbel_of(words[i])


@part
def _gumbel_columns(r0, r1, out, k, k0, k1, draw, row_ids):
    """Gumbel noise of short rows: Philox words across rows (column order),
    turned into noise in one flat loop, then moved to row order."""
    wide_vectors()
    rows = r1 - r0
    words = word_scratch(out, (k + 3) * rows)
    philox_columns(words, k, r0, r1, k0, k1, draw, row_ids)
    cols = np.empty(k * rows, out.dtype)
    for i in range(cols.size):
        cols[i] = gumbel_of(words[i])
    from_columns(cols, out[r0 * k : r1 * k], k, rows)


@helper
def tau_of(tau, r):
    """Row ``r``'s temperature: ``tau`` holds one value per row, or one for all."""
    return tau[min(r, tau.size - 1)]


@helper
def inverse_tau(tau, r):
    """``1 / tau`` of row ``r``: the forward kernels scale by it rather than
    divide, as a vector division is slow (float32 ``exp((x - m) / tau)`` over
    1024 values in L1, one thread: 0.66 ns per value, 0.56 to 0.62 with the
    multiplication)."""
    return tau.dtype.type(1) / tau_of(tau, r)


@part
def inverse_taus(tau, r0, f):
    """``f[r]`` = :func:`inverse_tau` of row ``r0 + r``, for a block of
    ``f.size`` rows, in loops indexed from 0 (they vectorise)."""
    one = tau.dtype.type(1)
    if tau.size == 1:
        t = one / tau[0]
        for r in range(f.size):
            f[r] = t
    else:
        tr = tau[r0 : r0 + f.size]
        for r in range(f.size):
            f[r] = one / tr[r]


@row_kernel
def gumbel_fwd(r0, r1, out, k, k0, k1, draw, row_ids):
    """Standard Gumbel noise of rows ``r0 <= r < r1`` into ``out`` (flat, rows x k)."""
    wide_vectors()
    if k < SHORT_ROW:
        _gumbel_columns(r0, r1, out, k, k0, k1, draw, row_ids)
        return
    row_noise(out[r0 * k : r1 * k], r0, r1, k, k0, k1, draw, row_ids)


@row_kernel
def gumbel_softmax_fwd(r0, r1, x, out, k, k0, k1, row_ids, tau, noise_mode, noise, out_soft, hard):
    """Gumbel-Softmax of rows ``r0 <= r < r1``.

    ``z = (x - max x) + G``, ``y = softmax(z / tau)`` computed as
    ``exp((z - max z) * (1 / tau)) / sum``.  ``noise_mode``: ``NOISE_DRAW``
    draws ``G`` from the key (draw index 0), ``NOISE_ARRAY`` reads it from
    ``noise``, ``NOISE_NONE`` uses no noise (``_rows.py``).  With
    ``hard`` the output is the one-hot of the lowest index of ``max y`` (a NaN
    row for a NaN row) and ``y`` goes to ``out_soft`` when that is not empty.
    """
    wide_vectors()
    if k < SHORT_ROW:
        _gumbel_softmax_columns(r0, r1, x, out, k, k0, k1, row_ids, tau, noise_mode, noise, out_soft, hard)
    else:
        _gumbel_softmax_long_rows(r0, r1, x, out, k, k0, k1, row_ids, tau, noise_mode, noise, out_soft, hard)


@part
def scaled_columns(r0, r1, x, k, k0, k1, row_ids, tau, noise_mode, noise):
    """``(z, m)``: rows ``r0 <= r < r1`` in column order as ``((x - max x) +
    G - max) * (1 / tau)`` (``noise_mode`` as in :func:`gumbel_softmax_fwd`),
    and scratch of one value per row.  The column-order start of
    ``gumbel_softmax_fwd`` and of ``concrete.log_gumbel_softmax_fwd``; the
    Philox words come in column order already, so the noise is added as it
    is made."""
    wide_vectors()
    rows = r1 - r0
    z, m = column_block(x, r0, r1, k)
    f = np.empty(rows, x.dtype)
    if noise_mode == NOISE_DRAW:
        words = word_scratch(z, (k + 3) * rows)
        philox_columns(words, k, r0, r1, k0, k1, np.uint64(0), row_ids)
        for j in range(k):
            c = z[j * rows : (j + 1) * rows]
            w = words[j * rows : (j + 1) * rows]
            for r in range(rows):
                c[r] = (c[r] - m[r]) + gumbel_of(w[r])
    elif noise_mode == NOISE_ARRAY:
        nc = np.empty(rows * k, x.dtype)
        to_columns(noise[r0 * k : r1 * k], nc, k, rows)
        for j in range(k):
            c = z[j * rows : (j + 1) * rows]
            g = nc[j * rows : (j + 1) * rows]
            for r in range(rows):
                c[r] = (c[r] - m[r]) + g[r]
    else:
        shift_columns(z, k, rows, m)
    column_max(z, k, rows, m)
    inverse_taus(tau, r0, f)
    for j in range(k):
        c = z[j * rows : (j + 1) * rows]
        for r in range(rows):
            c[r] = (c[r] - m[r]) * f[r]
    return z, m


@part
def _gumbel_softmax_columns(r0, r1, x, out, k, k0, k1, row_ids, tau, noise_mode, noise, out_soft, hard):
    """The short-row path of :func:`gumbel_softmax_fwd`: the same arithmetic in
    column order (see :data:`~.softmax.COLUMN_ROW`)."""
    wide_vectors()
    rows = r1 - r0
    z, m = scaled_columns(r0, r1, x, k, k0, k1, row_ids, tau, noise_mode, noise)
    s = np.empty(rows, x.dtype)
    one = x.dtype.type(1)
    for r in range(rows):
        m[r] = x.dtype.type(0)
        s[r] = one
    softmax_columns(z, k, rows, m, s)
    if not hard:
        from_columns(z, out[r0 * k : r1 * k], k, rows)
        return
    if out_soft.size > 0:
        from_columns(z, out_soft[r0 * k : r1 * k], k, rows)
    one_hot_columns(z, k, rows, m, out[r0 * k : r1 * k])


@helper
def _harden_row(orow, out_soft, o):
    """The soft row to ``out_soft[o:]`` (when not empty), and the one-hot of
    its first maximum into ``orow``."""
    if out_soft.size > 0:
        srow = out_soft[o : o + orow.size]
        for j in range(orow.size):
            srow[j] = orow[j]
    one_hot_row(orow)


@part
def perturbed_rows(r0, r1, x, z, mz, k, k0, k1, row_ids, noise_mode, noise):
    """``z`` (the block of rows ``r0 <= r < r1``, flat) ``= (x - max x) + G``
    with the noise of ``noise_mode`` (drawn from the key at draw 0, read from
    ``noise``, or none), and ``mz[r - r0]`` = the maximum of each row of
    ``z``: the long-row start of ``concrete.log_gumbel_softmax_fwd`` (and the
    arithmetic of ``gumbel_softmax_fwd``'s, which fuses it with the softmax
    row by row).  A block is a few KiB, so its rows are still in L1 when the
    caller goes over them again."""
    wide_vectors()
    words = word_scratch(x, k)
    for r in range(r0, r1):
        xr = x[r * k : (r + 1) * k]
        zr = z[(r - r0) * k : (r - r0 + 1) * k]
        m = row_max(xr)
        mr = x.dtype.type(-np.inf)
        if noise_mode == NOISE_DRAW:
            philox_words(words, 0, k, k0, k1, np.uint64(0), row_id(row_ids, r))
            for j in range(k):
                v = (xr[j] - m) + gumbel_of(words[j])
                zr[j] = v
                mr = maximum(mr, v)
        elif noise_mode == NOISE_ARRAY:
            nr = noise[r * k : (r + 1) * k]
            for j in range(k):
                v = (xr[j] - m) + nr[j]
                zr[j] = v
                mr = maximum(mr, v)
        else:
            for j in range(k):
                v = xr[j] - m
                zr[j] = v
                mr = maximum(mr, v)
        mz[r - r0] = mr


@part
def _gumbel_softmax_long_rows(r0, r1, x, out, k, k0, k1, row_ids, tau, noise_mode, noise, out_soft, hard):
    """The row-by-row path of :func:`gumbel_softmax_fwd` (``k >= SHORT_ROW``):
    the shift, the noise and the maximum of ``z`` in one pass, the scaling
    fused into the exponential.  From K = 64 up it is as fast as or faster than
    working on whole blocks of rows in flat loops (K = 64: 4.0 against 5.1 ms
    for 2**20 float32 values, one thread), so it serves every such K."""
    wide_vectors()
    # The perturbation of perturbed_rows, fused with the softmax row by row:
    # calling perturbed_rows for the block first costs 6% at K = 1024
    # (float32, one thread: 8.0 against 7.55 ms for 4096 rows).
    words = word_scratch(out, k)
    for r in range(r0, r1):
        xr = x[r * k : (r + 1) * k]
        orow = out[r * k : (r + 1) * k]
        m = row_max(xr)
        mz = x.dtype.type(-np.inf)
        if noise_mode == NOISE_DRAW:
            philox_words(words, 0, k, k0, k1, np.uint64(0), row_id(row_ids, r))
            for j in range(k):
                z = (xr[j] - m) + gumbel_of(words[j])
                orow[j] = z
                mz = maximum(mz, z)
        elif noise_mode == NOISE_ARRAY:
            nr = noise[r * k : (r + 1) * k]
            for j in range(k):
                z = (xr[j] - m) + nr[j]
                orow[j] = z
                mz = maximum(mz, z)
        else:
            for j in range(k):
                z = xr[j] - m
                orow[j] = z
                mz = maximum(mz, z)
        softmax_row(orow, orow, mz, inverse_tau(tau, r), x.dtype.type(1))
        if hard:
            _harden_row(orow, out_soft, r * k)


@row_kernel
def gumbel_softmax_bwd(r0, r1, g, y, out, k, tau, dtau):
    """VJP of ``softmax(z / tau)``: ``out = y (g - <g, y>) / tau`` and, when
    ``dtau`` is not empty, ``dtau[r] = -sum_j out_j log(y_j)`` (terms with
    ``y_j == 0`` count 0: ``y log y -> 0``)."""
    wide_vectors()
    terms = np.empty(k if dtau.size > 0 else 0, y.dtype)
    for r in range(r0, r1):
        gr = g[r * k : (r + 1) * k]
        yr = y[r * k : (r + 1) * k]
        orow = out[r * k : (r + 1) * k]
        d = row_dot(gr, yr)
        t = tau_of(tau, r)
        for j in range(k):
            orow[j] = yr[j] * (gr[j] - d) / t
        if dtau.size > 0:
            for j in range(k):
                yj = yr[j]
                terms[j] = select(yj == 0, yj - yj, orow[j] * vlog(yj))
            dtau[r] = -row_sum(terms)


@row_kernel
def categorical_fwd(r0, r1, x, out, k, s, k0, k1, row_ids):
    """Gumbel-Max: ``out[r * s + d]`` = lowest index of ``max_j (x_j - max x)
    + G(j, draw d)`` for ``d < s``; -1 for a row whose maximum is NaN or
    infinite (nothing valid to draw)."""
    wide_vectors()
    if k < SHORT_ROW:
        _categorical_columns(r0, r1, x, out, k, s, k0, k1, row_ids)
    else:
        _categorical_long_rows(r0, r1, x, out, k, s, k0, k1, row_ids)


@part
def _categorical_columns(r0, r1, x, out, k, s, k0, k1, row_ids):
    """The short-row path of :func:`categorical_fwd`, in column order: per
    draw, the running maximum and its first index over ``j`` for all rows at
    once (a strictly greater value replaces the best, so ties keep the lowest
    index, as :func:`first_index_of` does)."""
    wide_vectors()
    rows = r1 - r0
    sc, m = column_block(x, r0, r1, k)
    best = np.empty(rows, x.dtype)
    first = np.empty(rows, np.int32)
    shift_columns(sc, k, rows, m)
    words = word_scratch(sc, (k + 3) * rows)
    ob = out[r0 * s : r1 * s]
    for d in range(s):
        philox_columns(words, k, r0, r1, k0, k1, np.uint64(d), row_ids)
        for r in range(rows):
            best[r] = x.dtype.type(-np.inf)
            first[r] = np.int32(k)
        for j in range(k):
            c = sc[j * rows : (j + 1) * rows]
            w = words[j * rows : (j + 1) * rows]
            for r in range(rows):
                v = c[r] + gumbel_of(w[r])
                better = v > best[r]
                best[r] = select(better, v, best[r])
                first[r] = select(better, np.int32(j), first[r])
        for r in range(rows):
            ob[r * s + d] = select(np.isfinite(m[r]), np.int64(first[r]), np.int64(-1))


@part
def _categorical_long_rows(r0, r1, x, out, k, s, k0, k1, row_ids):
    """The row-by-row path of :func:`categorical_fwd` (``k >= SHORT_ROW``):
    per row and draw, one pass makes ``z`` and its maximum, a second finds the
    first index of it."""
    wide_vectors()
    words = word_scratch(x, k)
    z = np.empty(k, x.dtype)
    for r in range(r0, r1):
        xr = x[r * k : (r + 1) * k]
        m = row_max(xr)
        valid = np.isfinite(m)
        rid = row_id(row_ids, r)
        for d in range(s):
            if not valid:
                out[r * s + d] = -1
                continue
            philox_words(words, 0, k, k0, k1, np.uint64(d), rid)
            mz = x.dtype.type(-np.inf)
            for j in range(k):
                v = (xr[j] - m) + gumbel_of(words[j])
                z[j] = v
                mz = maximum(mz, v)
            out[r * s + d] = first_index_of(z, mz)
