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

from ._jit import (
    helper,
    part,
    row_kernel,
    select,
    summing,
    wide_vectors,
)
from ._rows import (
    SHORT_SUM,
    SUM_BLOCK,
    column_block,
    from_columns,
    row_dot,
    row_max,
    row_sum,
    shift_columns,
    softmax_columns,
    softmax_row,
)
from ._vmath import vexp, vexp_shifted, vexp_term, vlog


LONG_ROW = 256
"""Rows at least this long run row by row, with the exponential fused into
the pass that reads the input (one pass less over the row); shorter rows take
their exponentials in one flat loop over a block of rows."""


@part
def exact_rest(x, m):
    """``sum(exp(x - m))`` over ``x < m``, with the exact, subnormal-aware
    exponential, accumulated in float64."""
    t = 0.0
    for j in range(x.size):
        d = x[j] - m
        t += np.float64(select(d < 0, vexp_shifted(d), x.dtype.type(0)))
    return x.dtype.type(t)


@summing
def rests_of_terms(e, xb, k, m, s, t):
    """``t[r] = s[r] - 1`` without the rounding of ``s[r]``, for each row ``r``
    of the flat block ``xb`` whose sum ``s[r]`` of the terms ``e = vexp_term(x
    - m[r])`` (flat, rows x k) is below 2 (:func:`log_of_terms`); ``t[r] =
    s[r]`` for the other rows.

    Below 2, exactly one term is 1 (the maximum's: two would make ``s >= 2``),
    so the others are the terms below 1, summed here in a second pass over
    those rows of ``e`` (float64 across blocks of :data:`SUM_BLOCK`): one call
    per block of rows, as a call costs about as much as a short row.  Terms
    are clamped below (at ``exp(-87)`` float32, ``exp(-708)`` float64), which
    changes a rest of at least ``2**100`` times the clamp by less than ``k *
    2**-100`` of itself; a smaller rest is summed again from the row of ``xb``
    by :func:`exact_rest` (rows peaked beyond ``exp(-17)``, float32).
    Compiled with ``reassoc`` (a reduction); the exponential stays in
    ``exact_rest``."""
    wide_vectors()
    zero = e.dtype.type(0)
    tiny = np.float64(vexp_term(e.dtype.type(-np.inf))) * 2.0**100
    for r in range(s.size):
        if not s[r] < 2:
            t[r] = s[r]
            continue
        er = e[r * k : (r + 1) * k]
        acc = 0.0
        for b in range(0, k, SUM_BLOCK):
            eb = er[b : b + SUM_BLOCK]
            tb = zero
            for j in range(eb.size):
                tb += select(eb[j] < 1, eb[j], zero)
            acc += np.float64(tb)
        if acc < tiny:
            t[r] = exact_rest(xb[r * k : (r + 1) * k], m[r])
        else:
            t[r] = e.dtype.type(acc)


@helper
def rows_below_2(s):
    """How many of the row sums ``s`` are below 2 (a flat loop: the call to
    :func:`rests_of_terms` is skipped for a block without such rows; the
    rests of the other rows are not read)."""
    n = 0
    for r in range(s.size):
        n += select(s[r] < 2, 1, 0)
    return n


@helper
def log_of_terms(s, t, one):
    """``log(s)`` of a row sum ``s`` of shifted terms whose rest (the terms
    other than the maximum's 1) is ``t``: ``log1p(t)`` below 2, where ``log(s)``
    would lose the relative precision of a result near 0 (``logsumexp([0,
    -40]) = 4.2e-18``), ``log(s)`` otherwise.  Branch-free, with one log
    (of ``1 + t`` or of ``s``).  ``log1p(t)`` to a few ulp is ``log(w) * t /
    (w - 1)`` with ``w = 1 + t`` rounded (the quotient undoes the rounding of
    ``w``), and ``t`` itself where ``w`` rounds to 1; ``one`` is 1 in the
    dtype."""
    w = t + one
    small = s < 2
    lg = vlog(select(small, w, s))
    return select(small, select(w == one, t, lg * (t / (w - one))), lg)


@helper
def exp_shifted_inplace(a):
    """``a = exp(a)`` for a block of values less their row maxima
    (:func:`~._vmath.vexp_shifted`): one flat, vectorised loop."""
    for i in range(a.size):
        a[i] = vexp_shifted(a[i])


@helper
def shift_rows(x, out, k, maxima):
    """``out = x - max(row)`` for each row of the flat blocks ``x`` and
    ``out``; the maxima go to ``maxima``."""
    for r in range(maxima.size):
        xr = x[r * k : (r + 1) * k]
        orow = out[r * k : (r + 1) * k]
        m = row_max(xr)
        maxima[r] = m
        for j in range(k):
            orow[j] = xr[j] - m


COLUMN_ROW = SHORT_SUM
"""Rows shorter than this run in column order: a block of rows is transposed
into scratch (``xc[j * R + r]``, ``R`` rows), so that every per-row step --
maximum, exponential, sum, scaling -- is one loop over the ``R`` rows, which
vectorises, where row by row each would be a scalar loop of ``k`` steps.  The
sums still run over ``j`` in order, as :func:`row_sum` does for these ``k``,
so the results are those of the row-wise code bit for bit.  At k = 10,
float32, one thread: 0.33 ns per value for each transposition against about
3 ns per value for the row-wise block."""


@part
def _softmax_columns(r0, r1, x, out, k, scale):
    """The column-order path of :func:`softmax_fwd` (rows shorter than
    :data:`COLUMN_ROW`)."""
    wide_vectors()
    rows = r1 - r0
    xc, m = column_block(x, r0, r1, k)
    num = scale[r0:r1].copy() if scale.size > 0 else np.ones(rows, x.dtype)
    softmax_columns(xc, k, rows, m, num)
    from_columns(xc, out[r0 * k : r1 * k], k, rows)


@row_kernel
def softmax_fwd(r0, r1, x, out, k, scale):
    """``out = scale[r] * softmax(x)`` per row; ``scale`` empty means 1."""
    wide_vectors()
    if k < COLUMN_ROW:
        _softmax_columns(r0, r1, x, out, k, scale)
        return
    if k >= LONG_ROW:
        one = x.dtype.type(1)
        for r in range(r0, r1):
            xr = x[r * k : (r + 1) * k]
            num = scale[r] if scale.size > 0 else one
            softmax_row(xr, out[r * k : (r + 1) * k], row_max(xr), one, num)
        return
    xb = x[r0 * k : r1 * k]
    ob = out[r0 * k : r1 * k]
    maxima = np.empty(r1 - r0, x.dtype)
    shift_rows(xb, ob, k, maxima)
    exp_shifted_inplace(ob)
    sc = scale[r0:r1]
    for r in range(r1 - r0):
        orow = ob[r * k : (r + 1) * k]
        c = (sc[r] if scale.size > 0 else out.dtype.type(1)) / row_sum(orow)
        for j in range(k):
            orow[j] *= c


logsumexp_bwd = softmax_fwd
"""``logsumexp_bwd(..., x, out, k, g)``: ``g[r] * softmax(x)``, the VJP of logsumexp."""


@row_kernel
def logsumexp_fwd(r0, r1, x, out, k):
    """``out[r] = log(sum(exp(x[r])))``."""
    wide_vectors()
    rows = r1 - r0
    mls = np.empty(2 * rows, x.dtype)
    m = mls[:rows]
    ls = mls[rows:]
    log_normalisers(r0, r1, x, k, m, ls)
    # One flat, branch-free loop (a select, not a conditional, and the output
    # sliced from 0).
    ob = out[r0:r1]
    for r in range(rows):
        ob[r] = select(np.isinf(m[r]), m[r], m[r] + ls[r])


@part
def log_normalisers(r0, r1, x, k, m, ls):
    """For each row ``r0 <= r < r1``: its maximum ``m[r - r0]`` (NaN if it
    holds NaN) and ``ls[r - r0] = log(sum(exp(x - m)))`` by
    :func:`log_of_terms` (``logsumexp = m + ls``, ``log_softmax = (x - m) -
    ls``).  ``ls`` is meaningless where ``m`` is not finite.  The shared core
    of :func:`logsumexp_fwd` and ``estimators.categorical_log_prob_fwd``."""
    wide_vectors()
    rows = r1 - r0
    one = x.dtype.type(1)
    if k < COLUMN_ROW:
        xc, mc = column_block(x, r0, r1, k)
        lc = shift_and_log_columns(xc, x[r0 * k : r1 * k], k, rows, mc)
        for r in range(rows):
            m[r] = mc[r]
            ls[r] = lc[r]
        return
    if k >= LONG_ROW:
        # The terms, then room for one row's s, m and t (rests_of_terms):
        # one allocation per block, as each costs about 30 ns.
        scratch = np.empty(k + 3, x.dtype)
        e = scratch[:k]
        for r in range(r0, r1):
            xr = x[r * k : (r + 1) * k]
            mr = row_max(xr)
            for j in range(k):
                e[j] = vexp_term(xr[j] - mr)
            s = row_sum(e)
            t = s
            if s < 2:  # the rest, for log1p (one call, only here)
                scratch[k] = s
                scratch[k + 1] = mr
                rests_of_terms(e, xr, k, scratch[k + 1 : k + 2], scratch[k : k + 1], scratch[k + 2 :])
                t = scratch[k + 2]
            m[r - r0] = mr
            ls[r - r0] = log_of_terms(s, t, one)
        return
    # The terms, the sums and the rests: one allocation.
    scratch = np.empty(rows * (k + 2), x.dtype)
    e = scratch[: rows * k]
    s = scratch[rows * k : rows * (k + 1)]
    t = scratch[rows * (k + 1) :]
    shift_rows(x[r0 * k : r1 * k], e, k, m)
    for i in range(e.size):
        e[i] = vexp_term(e[i])
    for r in range(rows):
        s[r] = row_sum(e[r * k : (r + 1) * k])
    # The logs in one flat loop over the rows, which vectorises (as in the
    # column order), instead of one scalar log per row.
    if rows_below_2(s) > 0:
        rests_of_terms(e, x[r0 * k : r1 * k], k, m, s, t)
    for r in range(rows):
        ls[r] = log_of_terms(s[r], t[r], one)


@helper
def shift_and_log_columns(xc, x, k, rows, m):
    """``xc -= m[r]`` in column order; returns the logs of the row sums of
    ``vexp_term(xc)`` (:func:`log_of_terms`), the sums added over ``j`` in
    order (logsumexp, log_softmax); ``x`` is the block in row order."""
    st = np.empty(2 * rows, xc.dtype)
    s = st[:rows]
    t = st[rows:]
    zero = xc.dtype.type(0)
    clamp = vexp_term(xc.dtype.type(-np.inf))
    for r in range(rows):
        s[r] = zero
        t[r] = zero
    for j in range(k):
        c = xc[j * rows : (j + 1) * rows]
        for r in range(rows):
            d = c[r] - m[r]
            c[r] = d
            e = vexp_term(d)
            s[r] += e
            t[r] += select(d < 0, e, zero)
    # Rare: a rest so small that clamped terms could matter (rests_of_terms).
    # Counted in a flat loop first: a branch per row costs a tenth of a row.
    tiny = clamp * xc.dtype.type(2.0**100)
    rare = 0
    for r in range(rows):
        rare += select((s[r] < 2) & (t[r] < tiny), 1, 0)
    if rare > 0:
        for r in range(rows):
            if s[r] < 2 and t[r] < tiny:
                t[r] = exact_rest(x[r * k : (r + 1) * k], m[r])
    for r in range(rows):
        s[r] = log_of_terms(s[r], t[r], xc.dtype.type(1))
    return s


@helper
def nan_unless_finite(ls, m):
    """log_softmax's ``log(sum)`` ``ls`` of a row with maximum ``m``; NaN when
    ``m`` is infinite.

    A row holding ``+inf`` has log_softmax NaN; its terms are clamped
    ``vexp_term`` values, not 0, so the sum alone does not show it.  ``m - m``
    is 0 for a finite ``m`` (adding it changes nothing, ``ls >= 0``) and NaN
    otherwise."""
    return ls + (m - m)


@part
def _log_softmax_columns(r0, r1, x, out, k):
    """The column-order path of :func:`log_softmax_fwd`."""
    wide_vectors()
    rows = r1 - r0
    xc, m = column_block(x, r0, r1, k)
    s = shift_and_log_columns(xc, x[r0 * k : r1 * k], k, rows, m)
    for r in range(rows):
        s[r] = nan_unless_finite(s[r], m[r])
    shift_columns(xc, k, rows, s)
    from_columns(xc, out[r0 * k : r1 * k], k, rows)


@row_kernel
def log_softmax_fwd(r0, r1, x, out, k):
    """``out = x - logsumexp(x)`` per row, computed as ``(x - max) - log(sum)``."""
    wide_vectors()
    if k < COLUMN_ROW:
        _log_softmax_columns(r0, r1, x, out, k)
        return
    rows = r1 - r0
    ob = out[r0 * k : r1 * k]
    # The terms, the maxima, the sums and the rests: one allocation.
    scratch = np.empty(rows * (k + 3), x.dtype)
    e = scratch[: rows * k]
    maxima = scratch[rows * k : rows * (k + 1)]
    ls = scratch[rows * (k + 1) : rows * (k + 2)]
    t = scratch[rows * (k + 2) :]
    shift_rows(x[r0 * k : r1 * k], ob, k, maxima)
    for i in range(e.size):
        e[i] = vexp_term(ob[i])
    for r in range(rows):
        ls[r] = row_sum(e[r * k : (r + 1) * k])
    if rows_below_2(ls) > 0:
        rests_of_terms(e, x[r0 * k : r1 * k], k, maxima, ls, t)
    one = x.dtype.type(1)
    for r in range(r1 - r0):
        ls[r] = nan_unless_finite(log_of_terms(ls[r], t[r], one), maxima[r])
    for r in range(r1 - r0):
        orow = ob[r * k : (r + 1) * k]
        c = ls[r]
        for j in range(k):
            orow[j] -= c


@row_kernel
def softmax_bwd(r0, r1, g, y, out, k):
    """``out = y * (g - <g, y>)`` per row."""
    wide_vectors()
    for r in range(r0, r1):
        gr = g[r * k : (r + 1) * k]
        yr = y[r * k : (r + 1) * k]
        orow = out[r * k : (r + 1) * k]
        d = row_dot(gr, yr)
        for j in range(k):
            orow[j] = yr[j] * (gr[j] - d)


@row_kernel
def log_softmax_bwd(r0, r1, g, y, out, k):
    """``out = g - exp(y) * sum(g)`` per row."""
    wide_vectors()
    yb = y[r0 * k : r1 * k]
    ob = out[r0 * k : r1 * k]
    for i in range(ob.size):
        ob[i] = vexp(yb[i])
    for r in range(r0, r1):
        gr = g[r * k : (r + 1) * k]
        orow = out[r * k : (r + 1) * k]
        s = row_sum(gr)
        for j in range(k):
            orow[j] = gr[j] - orow[j] * s
