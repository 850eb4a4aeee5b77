"""Numba kernels of the estimators beyond straight-through: conditional Gumbel
samples, the Gumbel-Rao gradient and ReinMax.  Twin of ``conditional.cu``.

The conditional sample (the top-down construction of Maddison et al. 2014,
used by REBAR and Gumbel-Rao): given that category ``i`` wins, the maximum
``z_i = lse - log E_i`` is a Gumbel of location ``lse = logsumexp(x)``, and
every other ``z_j`` is a Gumbel of location ``x_j`` truncated below ``z_i``:
``exp(-z_j) = exp(-z_i) + E_j exp(-x_j)``, with ``E`` standard exponentials.
Element ``j`` of row id ``rid`` at draw ``d`` takes ``E = -log u`` of the
Philox word of counter ``(j // W, d + CONDITIONAL_DOMAIN, rid)``: the
uniforms of the Gumbel noise's element, in the conditional stream domain
(``philox.py``), so under one key the conditional and the unconditional
draws are independent.

Nothing is exponentiated unshifted.  Written as ``z_j = z_i - log(1 +
t_j)`` with ``t_j = E_j exp(z_i - x_j) = (E_j / E_i) q_j`` and ``q_j =
exp(lse - x_j) = s / e_j`` (``e_j = exp(x_j - max)``, ``s`` their sum),
the row's exponentials, made once for its ``logsumexp``, serve every draw:
per element and draw, one logarithm for ``E`` and one for ``log(1 + t)``, as
many as Gumbel noise takes (a row drawn several times stores ``q``; a row
drawn once divides by ``e_j`` as it goes).  ``log(1 + t)`` is not corrected
to a ``log1p``: its absolute error, half an ulp of 1, is within the noise's
own accuracy (a few ulp at the scale ``max(|z|, 1)``).  That form needs
``t_j`` finite where ``x_j`` is: it is where every finite logit is within
:data:`FAST_SPREAD` of ``lse`` (tested as ``e_j >= K exp(-FAST_SPREAD)``).
Other rows (logits spread wider, masks aside) take the log-space form
``z_j = z_i - softplus(log E_j + z_i - x_j)``, one logarithm and one
exponential more.  A ``-inf`` logit gives ``t = inf``, ``z = -inf``, in
both.

Rounding could tie a ``z_j`` with ``z_i`` (``t_j`` below half an ulp of
``z_i``, which float32 meets about once in 1e7 elements); such a ``z_j`` is
set to the float just below ``z_i``, so ``argmax(z) == i`` always, ties
to the lowest index being the rule of ``categorical``.

Gumbel-Rao (Paulus et al. 2020) averages the softmax VJP ``y (g - <g, y>) /
tau`` of ``y = softmax(z / tau)`` over ``S`` conditional samples, which it
makes in the kernel (no sample is stored).  Shifted by the known maximum
``z_i``, ``y_j`` is proportional to ``exp(-log(1 + t_j) / tau)`` (``1`` at
``i``): one logarithm and one exponential per element, as Gumbel-Softmax.
There ``log(1 + t)`` is not corrected to a ``log1p``: its absolute error of
an ulp of 1 is a relative error of ``y_j`` of an ulp over ``tau``, the same
as Gumbel-Softmax's own rounding of ``z / tau``.

ReinMax (Liu et al. 2023, Algorithm 2): with ``p = softmax(x)``, ``pi =
(softmax(x / tau) + onehot(i)) / 2``, the gradient is ``2 pi (g - <g, pi>) -
p (g - <g, p>) / 2``.

An index outside ``[0, K)`` is never read: its row is NaN and ``status[0]``
is set; so is a row whose index has probability 0 (a ``-inf`` logit).  A row
without a distribution (NaN, ``+inf`` or all ``-inf``) gives NaN, as
``softmax`` does.
"""

from __future__ import annotations

import numba
import numpy as np

from ._jit import bits_float, by_type, float_bits, helper, part, row_kernel, select, wide_vectors
from ._rows import column_max, from_columns, row_dot, row_max, row_sum, to_columns
from ._vmath import log1p_nonneg, vexp_shifted, vlog, vlog_pos
from .binary import DOMAIN_SHIFT
from .gumbel import (
    exponential_of,
    inverse_tau,
    inverse_taus,
    philox_columns,
    philox_words,
    row_id,
    word_scratch,
)

CONDITIONAL_DOMAIN = np.uint64(2 << DOMAIN_SHIFT)
"""Domain 2, the uniforms of the conditional Gumbel samples (``_ops.CONDITIONAL_DOMAIN``)."""

FAST_SPREAD = (60.0, 660.0)
"""The widest ``lse - x_j`` (float32, float64) for which ``t_j = (E_j / E_i)
q_j`` cannot overflow: ``E_j <= 17`` (float32; ``37`` float64), ``1 / E_i <=
2**24`` (``2**53``), so ``t_j <= e**(spread + 22)`` (``e**(spread + 41)``),
below the largest float (``e**88.7``, ``e**709.8``)."""


@helper
def _row_start(xr, q, thr, invert):
    """``(lse, fast)`` of a row: its ``logsumexp`` (NaN when its maximum is
    not finite) and whether every finite logit is close enough to the
    maximum for the fast form (``exp(x_j - max) >= thr``, see
    :func:`_thresholds`).  ``q[j] = exp(x_j - max)``, or with ``invert``
    ``exp(lse - x_j) = sum / exp(x_j - max)`` (``inf`` at a ``-inf`` logit):
    a row drawn once divides as it draws instead, which saves this pass.
    The test is a count (an integer reduction vectorises; a floating-point
    minimum does not, and made this start 7x slower)."""
    k = xr.size
    m = row_max(xr)
    ninf = xr.dtype.type(-np.inf)
    far = 0
    for j in range(k):
        e = vexp_shifted(xr[j] - m)
        q[j] = e
        far += select((e < thr) & (xr[j] != ninf), 1, 0)
    s = row_sum(q)
    lse = (m + vlog(s)) + (m - m)
    if invert:
        for j in range(k):
            q[j] = s / q[j]
    return lse, s, far == 0


@helper
def _softplus(b, one, zero):
    """``log(1 + exp(b))`` for ``b`` finite or ``+inf``: ``max(b, 0) +
    log1p(exp(-|b|))`` (``one``, ``zero``: 1 and 0 in ``b``'s dtype)."""
    return select(b > zero, b, zero) + log1p_nonneg(vexp_shifted(-abs(b)), one)


@helper
def _check_index(i, xr, k):
    """0 for an index that can be conditioned on, 1 for one outside ``[0,
    k)``, 2 for one whose logit is ``-inf`` (probability 0)."""
    if i < 0 or i >= k:
        return 1
    if xr[i] == -np.inf:
        return 2
    return 0


@helper
def _fill(row, v):
    for j in range(row.size):
        row[j] = v


def _spread_limit(x):
    """``exp(-FAST_SPREAD)`` for ``x``'s dtype (kernels only)."""
    raise NotImplementedError("_spread_limit runs inside compiled kernels only")


_EXP_SPREAD = (np.float32(np.exp(-FAST_SPREAD[0])), np.float64(np.exp(-FAST_SPREAD[1])))
by_type(
    _spread_limit,
    {numba.float32: lambda x: _EXP_SPREAD[0], numba.float64: lambda x: _EXP_SPREAD[1]},
    of_dtype=True,
)


@helper
def _threshold(x, k):
    """The least ``exp(x_j - max)`` of the fast form: ``k exp(-FAST_SPREAD)``,
    so that ``lse - x_j <= log(k) + max - x_j <= FAST_SPREAD``."""
    return x.dtype.type(k) * _spread_limit(x)


@helper
def _conditioned_row(z, xr, q, words, i, lse, s, fast, inverted, one, zero, ninf):
    """``z`` = the conditional sample of a row given its winner ``i``, from
    the row's Philox ``words`` (see the module notes; ``q`` and ``s`` from
    :func:`_row_start`, inverted when the row has several draws).  One flat
    loop that makes each exponential and uses it."""
    k = xr.size
    ei = exponential_of(words[i])
    zi = lse - vlog_pos(ei)
    below = np.nextafter(zi, ninf)
    if fast and inverted:
        inv = one / ei
        for j in range(k):
            v = zi - vlog(one + exponential_of(words[j]) * q[j] * inv)
            z[j] = select(v < zi, v, below)
    elif fast:
        c = s / ei
        for j in range(k):
            v = zi - vlog(one + exponential_of(words[j]) * c / q[j])
            z[j] = select(v < zi, v, below)
    else:
        for j in range(k):
            v = zi - _softplus(vlog_pos(exponential_of(words[j])) + (zi - xr[j]), one, zero)
            z[j] = select(v < zi, v, below)
    z[i] = zi
    return zi


@part
def _conditional_rows(r0, r1, x, index, out, k, s, k0, k1, row_ids):
    """The row-by-row path of :func:`conditional_gumbel_fwd`; returns the
    block's status (0, or the largest :func:`_check_index` flag)."""
    wide_vectors()
    q = np.empty(k, x.dtype)
    z = np.empty(k if s > 1 else 0, x.dtype)
    words = word_scratch(x, k)
    thr = _threshold(x, k)
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    ninf = x.dtype.type(-np.inf)
    bad = 0
    for r in range(r0, r1):
        xr = x[r * k : (r + 1) * k]
        orow = out[r * k * s : (r + 1) * k * s]
        i = index[r]
        flag = _check_index(i, xr, k)
        lse, total, fast = _row_start(xr, q, thr, s > 1)
        if flag != 0 or not np.isfinite(lse):
            bad = max(bad, flag)
            _fill(orow, x.dtype.type(np.nan))
            continue
        rid = row_id(row_ids, r)
        for d in range(s):
            philox_words(words, 0, k, k0, k1, np.uint64(d) + CONDITIONAL_DOMAIN, rid)
            if s == 1:  # the row's own memory (no sample axis to interleave)
                _conditioned_row(orow, xr, q, words, i, lse, total, fast, False, one, zero, ninf)
            else:
                _conditioned_row(z, xr, q, words, i, lse, total, fast, True, one, zero, ninf)
                for j in range(k):
                    orow[j * s + d] = z[j]
    return bad


@part
def _gumbel_rao_rows(r0, r1, g, x, index, out, k, s, k0, k1, row_ids, tau):
    """The row-by-row path of :func:`gumbel_rao_bwd`; returns the block's
    status."""
    wide_vectors()
    q = np.empty(k, x.dtype)
    v = np.empty(k, x.dtype)
    words = word_scratch(x, k)
    thr = _threshold(x, k)
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    bad = 0
    for r in range(r0, r1):
        xr = x[r * k : (r + 1) * k]
        gr = g[r * k : (r + 1) * k]
        orow = out[r * k : (r + 1) * k]
        i = index[r]
        flag = _check_index(i, xr, k)
        lse, total, fast = _row_start(xr, q, thr, s > 1)
        if flag != 0 or not np.isfinite(lse):
            bad = max(bad, flag)
            _fill(orow, x.dtype.type(np.nan))
            continue
        rid = row_id(row_ids, r)
        f = inverse_tau(tau, r)
        for d in range(s):
            philox_words(words, 0, k, k0, k1, np.uint64(d) + CONDITIONAL_DOMAIN, rid)
            ei = exponential_of(words[i])
            if fast and s > 1:
                # y_j ~ exp((z_j - z_i) / tau) = exp(-log(1 + t_j) / tau)
                inv = one / ei
                for j in range(k):
                    v[j] = vexp_shifted(-vlog(one + exponential_of(words[j]) * q[j] * inv) * f)
            elif fast:
                c = total / ei
                for j in range(k):
                    v[j] = vexp_shifted(-vlog(one + exponential_of(words[j]) * c / q[j]) * f)
            else:
                zi = lse - vlog_pos(ei)
                for j in range(k):
                    b = vlog_pos(exponential_of(words[j])) + (zi - xr[j])
                    v[j] = vexp_shifted(-_softplus(b, one, zero) * f)
            v[i] = one
            zs = row_sum(v)
            a = row_dot(gr, v) / zs
            c = f / (zs * x.dtype.type(s))
            if d == 0:
                for j in range(k):
                    orow[j] = (v[j] * c) * (gr[j] - a)
            else:
                for j in range(k):
                    orow[j] += (v[j] * c) * (gr[j] - a)
    return bad


@part
def _reinmax_rows(r0, r1, g, x, index, out, k, tau):
    """The row-by-row path of :func:`reinmax_bwd`: the exponentials of both
    softmaxes in one pass, their sums and dot products with ``g``, then one
    pass that normalises and combines; returns the block's status."""
    wide_vectors()
    pi = np.empty(k, x.dtype)
    half = x.dtype.type(0.5)
    two = x.dtype.type(2)
    bad = 0
    for r in range(r0, r1):
        xr = x[r * k : (r + 1) * k]
        gr = g[r * k : (r + 1) * k]
        orow = out[r * k : (r + 1) * k]
        i = index[r]
        flag = _check_index(i, xr, k)
        m = row_max(xr)
        if flag != 0 or not np.isfinite(m):
            bad = max(bad, flag)
            _fill(orow, x.dtype.type(np.nan))
            continue
        f = inverse_tau(tau, r)
        for j in range(k):
            orow[j] = vexp_shifted(xr[j] - m)
            pi[j] = vexp_shifted((xr[j] - m) * f)
        s0 = x.dtype.type(1) / row_sum(orow)
        s1 = half / row_sum(pi)
        # <g, pi> and <g, p> from the unnormalised rows; pi's one-hot half
        # added at i.
        a = row_dot(gr, pi) * s1 + half * gr[i]
        b = row_dot(gr, orow) * s0
        for j in range(k):
            orow[j] = (two * s1) * pi[j] * (gr[j] - a) - (half * s0) * orow[j] * (gr[j] - b)
        orow[i] += gr[i] - a  # 2 (1/2) (g_i - a), the one-hot half of pi
    return bad


# --------------------------------------------------------------------------
# Short rows: a block of rows in column order


SHORT_CONDITIONAL = 32
"""Rows shorter than this run in column order: the measured crossover
(float32, 2 threads, 2M elements: at K = 16 the column order is 2.7x faster
for ``conditional_gumbel`` and 2.8x for ``gumbel_rao_backward`` with 10
samples, at K = 24 about 2x; from K = 32 the row order is as fast or faster
except at odd lengths; ``reinmax_backward``, two passes over cheap
exponentials, breaks even at K = 24).  Both orders give the same law and
agree to rounding; a given K always takes the same order, so the bits of a
call depend only on its inputs."""


@helper
def _below_f32(z):
    """The float32 just below a finite ``z`` (``np.nextafter(z, -inf)``), on
    the bits: a call to ``nextafter`` keeps the loop around it scalar."""
    b = float_bits(z)
    return bits_float(select(z > 0, np.int32(b - 1), select(z == 0, np.int32(-0x7FFFFFFF), np.int32(b + 1))))


@helper
def _below_f64(z):
    """Float64 twin of :func:`_below_f32`."""
    b = float_bits(z)
    return bits_float(select(z > 0, b - 1, select(z == 0, np.int64(-0x7FFFFFFFFFFFFFFF), b + 1)))


def _below(z):
    """The float just below a finite ``z`` (kernels only)."""
    raise NotImplementedError("_below runs inside compiled kernels only")


by_type(_below, {numba.float32: _below_f32, numba.float64: _below_f64})


_FAST, _SLOW, _VOID = 0, 1, 2
"""A row's form in the column-order paths: the fast form, the softplus form,
or none (a row without a distribution or a bad index: NaN)."""


@helper
def _log_from_one(w):
    """``vlog(w)`` for ``w >= 1`` or ``+inf``, to the bit: the special-case-
    free logarithm and one select for ``inf`` (the fast form's ``log(1 +
    t)``, ``t = inf`` at a ``-inf`` logit)."""
    return select(w - w == 0, vlog_pos(w), w)


@part
def _column_start(r0, r1, x, index, k, invert, xc, q, m, lse, total, xi, ic, far, form):
    """The column-order :func:`_row_start` and :func:`_check_index` of rows
    ``r0 <= r < r1``, into scratch of the caller (one allocation each for
    the floats and the integers: an allocation costs about 35 ns, a tenth
    of a row at K = 10).  Fills ``xc`` (the rows in column order), ``q``
    (their exponentials, ``q_j`` with ``invert``), ``m``, ``lse`` and
    ``total`` (the sum of ``exp(x_j - m)``) per row, ``ic`` (the index, -1
    where outside ``[0, k)``) and ``form`` (``_FAST``, ``_SLOW`` or
    ``_VOID``); ``xi`` and ``far`` are scratch.  Returns the block's status
    and its numbers of slow and void rows.  The sums run over ``j`` in
    order, as :func:`row_sum` does for ``k < SHORT_SUM``.  A row's own
    column ``i`` is picked out by a select per column (``ic[r] == j``), not
    read at ``i * rows + r``: LLVM vectorises no loop holding such a gather
    next to a store (it cannot bound the gather's addresses for its aliasing
    check)."""
    wide_vectors()
    rows = r1 - r0
    to_columns(x[r0 * k : r1 * k], xc, k, rows)
    column_max(xc, k, rows, m)
    thr = _threshold(x, k)
    zero = x.dtype.type(0)
    ninf = x.dtype.type(-np.inf)
    ir = index[r0:r1]
    for r in range(rows):
        i = ir[r]
        ic[r] = np.int32(select((i < 0) | (i >= k), np.int64(-1), i))
        total[r] = zero
        xi[r] = zero
        far[r] = 0
    for j in range(k):
        jj = np.int32(j)
        c = xc[j * rows : (j + 1) * rows]
        e = q[j * rows : (j + 1) * rows]
        for r in range(rows):
            v = vexp_shifted(c[r] - m[r])
            e[r] = v
            total[r] += v
            far[r] += select((v < thr) & (c[r] != ninf), np.int32(1), np.int32(0))
            xi[r] = select(ic[r] == jj, c[r], xi[r])
    if invert:
        for j in range(k):
            e = q[j * rows : (j + 1) * rows]
            for r in range(rows):
                e[r] = total[r] / e[r]
    bad = np.int32(0)
    nslow = 0
    nvoid = 0
    inf = x.dtype.type(np.inf)
    for r in range(rows):
        lse[r] = (m[r] + vlog(total[r])) + (m[r] - m[r])
        flag = select(ic[r] < 0, np.int32(1), select(xi[r] == ninf, np.int32(2), np.int32(0)))
        bad = select(flag > bad, flag, bad)
        void = (flag != 0) | ~(abs(lse[r]) < inf)
        f = select(void, np.int32(_VOID), select(far[r] == 0, np.int32(_FAST), np.int32(_SLOW)))
        form[r] = f
        nslow += select(f == _SLOW, 1, 0)
        nvoid += select(void, 1, 0)
    return bad, nslow, nvoid


@helper
def _winners(words, ic, lse, total, k, rows, inverted, wi, zi, below, c):
    """Per row of a column-order block: ``zi`` = the winner's ``z_i = lse -
    log E_i``, ``below`` the float below it and ``c`` the factor of the fast
    form, ``1 / E_i`` (``q`` inverted) or ``total / E_i`` (``wi``: scratch
    for the winners' words, picked out column by column)."""
    one = zi.dtype.type(1)
    for r in range(rows):
        wi[r] = words[r]
    for j in range(1, k):
        jj = np.int32(j)
        w = words[j * rows : (j + 1) * rows]
        for r in range(rows):
            wi[r] = select(ic[r] == jj, w[r], wi[r])
    for r in range(rows):
        ei = exponential_of(wi[r])
        z = lse[r] - vlog_pos(ei)
        zi[r] = z
        below[r] = _below(z)
        c[r] = select(inverted, one, total[r]) / ei


@part
def _void_rows(out, form, n):
    """NaN in the ``n`` values of each ``_VOID`` row of the row-order block ``out``."""
    nan = out.dtype.type(np.nan)
    for r in range(form.size):
        if form[r] == _VOID:
            orow = out[r * n : (r + 1) * n]
            for j in range(n):
                orow[j] = nan


@part
def _column_setup(r0, r1, x, index, k, inverted):
    """The start of both sampling column paths: the block's rows in column
    order and their :func:`_column_start` (``q``, maxima, sums, the
    winners' logits and columns, each row's form), the Philox words of a
    draw and the per-row scratch of :func:`_winners`.  Returns them all
    with the block's status and its counts of slow and void rows."""
    rows = r1 - r0
    n = k * rows
    fs = np.empty(2 * n + 7 * rows, x.dtype)
    xc = fs[:n]
    q = fs[n : 2 * n]
    per_row = fs[2 * n :]
    m = per_row[:rows]
    lse = per_row[rows : 2 * rows]
    total = per_row[2 * rows : 3 * rows]
    xi = per_row[3 * rows : 4 * rows]
    zi = per_row[4 * rows : 5 * rows]
    below = per_row[5 * rows : 6 * rows]
    c = per_row[6 * rows :]
    ints = np.empty(3 * rows, np.int32)
    ic = ints[:rows]
    far = ints[rows : 2 * rows]
    form = ints[2 * rows :]
    bad, nslow, nvoid = _column_start(r0, r1, x, index, k, inverted, xc, q, m, lse, total, xi, ic, far, form)
    words = word_scratch(x, n + 4 * rows)
    wi = words[n + 3 * rows : n + 4 * rows]
    return xc, q, lse, total, zi, below, c, ic, form, words, wi, bad, nslow, nvoid


@part
def _conditional_columns(r0, r1, x, index, out, k, s, k0, k1, row_ids):
    """The column-order path of :func:`conditional_gumbel_fwd` (rows shorter
    than :data:`SHORT_CONDITIONAL`): the arithmetic of
    :func:`_conditioned_row`, each step one loop over the block's rows.
    Every row takes the fast form first; a block holding slow rows then
    replaces theirs with the softplus form.  Returns the block's status."""
    wide_vectors()
    rows = r1 - r0
    inverted = s > 1
    xc, q, lse, total, zi, below, c, ic, form, words, wi, bad, nslow, nvoid = _column_setup(
        r0, r1, x, index, k, inverted
    )
    z = np.empty(k * rows, x.dtype)
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    ob = out[r0 * k * s : r1 * k * s]
    ks = np.uint64(k * s)
    for d in range(s):
        philox_columns(words, k, r0, r1, k0, k1, np.uint64(d) + CONDITIONAL_DOMAIN, row_ids)
        _winners(words, ic, lse, total, k, rows, inverted, wi, zi, below, c)
        for j in range(k):
            jj = np.int32(j)
            w = words[j * rows : (j + 1) * rows]
            qj = q[j * rows : (j + 1) * rows]
            zj = z[j * rows : (j + 1) * rows]
            if inverted:
                for r in range(rows):
                    v = zi[r] - _log_from_one(one + exponential_of(w[r]) * qj[r] * c[r])
                    zj[r] = select(ic[r] == jj, zi[r], select(v < zi[r], v, below[r]))
            else:
                for r in range(rows):
                    v = zi[r] - _log_from_one(one + exponential_of(w[r]) * c[r] / qj[r])
                    zj[r] = select(ic[r] == jj, zi[r], select(v < zi[r], v, below[r]))
        if nslow > 0:
            for j in range(k):
                jj = np.int32(j)
                w = words[j * rows : (j + 1) * rows]
                xj = xc[j * rows : (j + 1) * rows]
                zj = z[j * rows : (j + 1) * rows]
                for r in range(rows):
                    v = zi[r] - _softplus(vlog_pos(exponential_of(w[r])) + (zi[r] - xj[r]), one, zero)
                    v = select(v < zi[r], v, below[r])
                    zj[r] = select((form[r] == _SLOW) & (ic[r] != jj), v, zj[r])
        if s == 1:
            from_columns(z, ob, k, rows)
        else:
            # z_j of draw d at (r k + j) s + d: stores of stride k s, at
            # unsigned offsets (with signed ones the loop stays scalar).
            for j in range(k):
                zj = z[j * rows : (j + 1) * rows]
                oj = ob[j * s + d :]
                for r in range(rows):
                    oj[np.uint64(r) * ks] = zj[r]
    if nvoid > 0:
        _void_rows(ob, form, k * s)
    return bad


@part
def _gumbel_rao_columns(r0, r1, g, x, index, out, k, s, k0, k1, row_ids, tau):
    """The column-order path of :func:`gumbel_rao_bwd` (rows shorter than
    :data:`SHORT_CONDITIONAL`): per draw, one pass makes ``y``'s numerators
    (1 at the winner), their sums and their dot products with ``g``, a second
    adds the draw's VJP to the mean.  A block holding slow rows computes both
    forms and keeps each row's own.  Returns the block's status."""
    wide_vectors()
    rows = r1 - r0
    n = k * rows
    inverted = s > 1
    xc, q, lse, total, zi, below, c, ic, form, words, wi, bad, nslow, nvoid = _column_setup(
        r0, r1, x, index, k, inverted
    )
    fs = np.empty(3 * n + 3 * rows, x.dtype)
    gc = fs[:n]
    v = fs[n : 2 * n]
    oc = fs[2 * n : 3 * n]
    f = fs[3 * n : 3 * n + rows]
    zs = fs[3 * n + rows : 3 * n + 2 * rows]
    dot = fs[3 * n + 2 * rows :]
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    to_columns(g[r0 * k : r1 * k], gc, k, rows)
    inverse_taus(tau, r0, f)
    ns = x.dtype.type(s)
    for d in range(s):
        philox_columns(words, k, r0, r1, k0, k1, np.uint64(d) + CONDITIONAL_DOMAIN, row_ids)
        _winners(words, ic, lse, total, k, rows, inverted, wi, zi, below, c)
        for r in range(rows):
            zs[r] = zero
            dot[r] = zero
        for j in range(k):
            jj = np.int32(j)
            w = words[j * rows : (j + 1) * rows]
            qj = q[j * rows : (j + 1) * rows]
            gj = gc[j * rows : (j + 1) * rows]
            vj = v[j * rows : (j + 1) * rows]
            xj = xc[j * rows : (j + 1) * rows]
            # y_j ~ exp((z_j - z_i) / tau) = exp(-log(1 + t_j) / tau)
            if nslow > 0:
                for r in range(rows):
                    ej = exponential_of(w[r])
                    t = select(inverted, ej * qj[r] * c[r], ej * c[r] / qj[r])
                    b = vlog_pos(ej) + (zi[r] - xj[r])
                    e = select(form[r] == _SLOW, _softplus(b, one, zero), _log_from_one(one + t))
                    e = select(ic[r] == jj, one, vexp_shifted(-e * f[r]))
                    vj[r] = e
                    zs[r] += e
                    dot[r] += gj[r] * e
            elif inverted:
                for r in range(rows):
                    e = vexp_shifted(-_log_from_one(one + exponential_of(w[r]) * qj[r] * c[r]) * f[r])
                    e = select(ic[r] == jj, one, e)
                    vj[r] = e
                    zs[r] += e
                    dot[r] += gj[r] * e
            else:
                for r in range(rows):
                    e = vexp_shifted(-_log_from_one(one + exponential_of(w[r]) * c[r] / qj[r]) * f[r])
                    e = select(ic[r] == jj, one, e)
                    vj[r] = e
                    zs[r] += e
                    dot[r] += gj[r] * e
        for r in range(rows):
            dot[r] = dot[r] / zs[r]
            zs[r] = f[r] / (zs[r] * ns)
        for j in range(k):
            gj = gc[j * rows : (j + 1) * rows]
            vj = v[j * rows : (j + 1) * rows]
            oj = oc[j * rows : (j + 1) * rows]
            if d == 0:
                for r in range(rows):
                    oj[r] = (vj[r] * zs[r]) * (gj[r] - dot[r])
            else:
                for r in range(rows):
                    oj[r] += (vj[r] * zs[r]) * (gj[r] - dot[r])
    ob = out[r0 * k : r1 * k]
    from_columns(oc, ob, k, rows)
    if nvoid > 0:
        _void_rows(ob, form, k)
    return bad


@part
def _reinmax_columns(r0, r1, g, x, index, out, k, tau):
    """The column-order path of :func:`reinmax_bwd` (rows shorter than
    :data:`SHORT_CONDITIONAL`): both softmaxes' exponentials, sums and dot
    products with ``g`` in one pass, the combination in a second; returns
    the block's status."""
    wide_vectors()
    rows = r1 - r0
    n = k * rows
    fs = np.empty(3 * n + 8 * rows, x.dtype)
    xc = fs[:n]
    gc = fs[n : 2 * n]
    pc = fs[2 * n : 3 * n]
    per_row = fs[3 * n :]
    m = per_row[:rows]
    f = per_row[rows : 2 * rows]
    s0 = per_row[2 * rows : 3 * rows]
    s1 = per_row[3 * rows : 4 * rows]
    a = per_row[4 * rows : 5 * rows]
    b = per_row[5 * rows : 6 * rows]
    xi = per_row[6 * rows : 7 * rows]
    gi = per_row[7 * rows :]
    ints = np.empty(2 * rows, np.int32)
    ic = ints[:rows]
    form = ints[rows:]
    to_columns(x[r0 * k : r1 * k], xc, k, rows)
    column_max(xc, k, rows, m)
    to_columns(g[r0 * k : r1 * k], gc, k, rows)
    inverse_taus(tau, r0, f)
    zero = x.dtype.type(0)
    half = x.dtype.type(0.5)
    two = x.dtype.type(2)
    ir = index[r0:r1]
    for r in range(rows):
        i = ir[r]
        ic[r] = np.int32(select((i < 0) | (i >= k), np.int64(-1), i))
        s0[r] = zero
        s1[r] = zero
        a[r] = zero
        b[r] = zero
        xi[r] = zero
        gi[r] = zero
    for j in range(k):
        jj = np.int32(j)
        xj = xc[j * rows : (j + 1) * rows]
        pj = pc[j * rows : (j + 1) * rows]
        gj = gc[j * rows : (j + 1) * rows]
        for r in range(rows):
            xi[r] = select(ic[r] == jj, xj[r], xi[r])
            gi[r] = select(ic[r] == jj, gj[r], gi[r])
            e = vexp_shifted(xj[r] - m[r])
            p = vexp_shifted((xj[r] - m[r]) * f[r])
            xj[r] = e
            pj[r] = p
            s0[r] += e
            s1[r] += p
            a[r] += gj[r] * p
            b[r] += gj[r] * e
    bad = np.int32(0)
    nvoid = 0
    ninf = x.dtype.type(-np.inf)
    inf = x.dtype.type(np.inf)
    for r in range(rows):
        flag = select(ic[r] < 0, np.int32(1), select(xi[r] == ninf, np.int32(2), np.int32(0)))
        bad = select(flag > bad, flag, bad)
        void = (flag != 0) | ~(abs(m[r]) < inf)
        form[r] = select(void, np.int32(_VOID), np.int32(_FAST))
        nvoid += select(void, 1, 0)
        s0[r] = x.dtype.type(1) / s0[r]
        s1[r] = half / s1[r]
        # <g, pi> and <g, p> from the unnormalised rows; pi's one-hot half
        # added at i.
        a[r] = a[r] * s1[r] + half * gi[r]
        b[r] = b[r] * s0[r]
    for j in range(k):
        jj = np.int32(j)
        ej = xc[j * rows : (j + 1) * rows]
        pj = pc[j * rows : (j + 1) * rows]
        gj = gc[j * rows : (j + 1) * rows]
        for r in range(rows):
            o = (two * s1[r]) * pj[r] * (gj[r] - a[r]) - (half * s0[r]) * ej[r] * (gj[r] - b[r])
            ej[r] = select(ic[r] == jj, o + (gj[r] - a[r]), o)  # 2 (1/2) (g_i - a) at i
    ob = out[r0 * k : r1 * k]
    from_columns(xc, ob, k, rows)
    if nvoid > 0:
        _void_rows(ob, form, k)
    return bad


@row_kernel
def conditional_gumbel_fwd(r0, r1, x, index, out, k, s, k0, k1, row_ids, status):
    """``out[(r k + j) s + d]`` = ``z_j`` of draw ``d < s`` of row ``r``,
    conditioned on ``argmax z = index[r]`` (see the module notes)."""
    wide_vectors()
    if k < SHORT_CONDITIONAL:
        bad = _conditional_columns(r0, r1, x, index, out, k, s, k0, k1, row_ids)
    else:
        bad = _conditional_rows(r0, r1, x, index, out, k, s, k0, k1, row_ids)
    if bad > 0 and status.size > 0:
        status[0] = bad


@row_kernel
def gumbel_rao_bwd(r0, r1, g, x, index, out, k, s, k0, k1, row_ids, tau, status):
    """``out[r]`` = the mean over ``s`` conditional samples ``z`` (draws ``0
    .. s - 1``, as :func:`conditional_gumbel_fwd` makes them) of ``y (g - <g,
    y>) / tau`` with ``y = softmax(z / tau)``."""
    wide_vectors()
    if k < SHORT_CONDITIONAL:
        bad = _gumbel_rao_columns(r0, r1, g, x, index, out, k, s, k0, k1, row_ids, tau)
    else:
        bad = _gumbel_rao_rows(r0, r1, g, x, index, out, k, s, k0, k1, row_ids, tau)
    if bad > 0 and status.size > 0:
        status[0] = bad


@row_kernel
def reinmax_bwd(r0, r1, g, x, index, out, k, tau, status):
    """``out[r] = 2 pi (g - <g, pi>) - p (g - <g, p>) / 2`` with ``p =
    softmax(x)`` and ``pi = (softmax(x / tau) + onehot(index[r])) / 2``."""
    wide_vectors()
    if k < SHORT_CONDITIONAL:
        bad = _reinmax_columns(r0, r1, g, x, index, out, k, tau)
    else:
        bad = _reinmax_rows(r0, r1, g, x, index, out, k, tau)
    if bad > 0 and status.size > 0:
        status[0] = bad
