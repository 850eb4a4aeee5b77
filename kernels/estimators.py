"""Numba kernels of the categorical distribution's log-probability, entropy
and KL divergence, their backward passes, and the score-function (REINFORCE)
estimator.  Twin of ``estimators.cu``.

All of them are built on the softmax family's row passes, so that a row's
normaliser is computed the way ``log_softmax`` computes it:

* ``categorical_log_prob_fwd`` is ``log_softmax`` gathered at the indices:
  the row maxima and log-sums of :func:`~.softmax.log_normalisers` (the core
  of ``logsumexp_fwd``, with its ``log1p`` precision for peaked rows), then
  ``(x[i] - m) - ls`` per sample, bit for bit the ``log_softmax`` element;
  the row is read once for the normaliser and once more at the samples.
* ``score_bwd`` is ``softmax_fwd``'s block with the row scale ``-sum_s w_s``
  (the weights of the samples), then the weights added at the samples' indices
  in sample order: ``sum_s w_s (onehot(i_s) - softmax(x))`` in the one pass
  of the softmax over the row.  The three weightings (``SCORE_*``) serve the
  log-probability's backward pass and ``reinforce`` with and without
  baselines.
* The entropy and the KL divergence take exact exponentials (``vexp_shifted``,
  not the clamped sum terms) because they multiply each by its log:
  a category whose probability is exactly 0 (a ``-inf`` logit) contributes
  an exact 0 to the sum and to the gradient, never ``0 * -inf``.

An index outside ``[0, K)`` is never read: it gives NaN and sets the
``status`` flag, from which the public layer raises (the range check is part
of the pass that reads the indices, not a pass of its own).  A row without a distribution (NaN, ``+inf`` or
all ``-inf``) gives NaN, as ``log_softmax`` does.
"""

from __future__ import annotations

import numpy as np

from ._jit import part, row_kernel, select, wide_vectors
from ._rows import row_sum
from ._vmath import vexp_shifted
from .softmax import log_normalisers, log_of_terms, nan_unless_finite, shift_rows, softmax_fwd

SCORE_SUM, SCORE_MEAN, SCORE_LOO = 0, 1, 2
"""The ``estimator`` argument of :func:`score_bwd` (``gumbel_np._ops.SCORE_*``)."""

_softmax_block = softmax_fwd.block


@row_kernel
def categorical_log_prob_fwd(r0, r1, x, out, k, n, index, status):
    """``out[r * n + s] = log_softmax(x[r])[index[r * n + s]]``; NaN for an
    index outside ``[0, k)``, which also sets ``status[0] = 1`` (when
    ``status`` is given)."""
    wide_vectors()
    rows = r1 - r0
    mls = np.empty(2 * rows, x.dtype)
    m = mls[:rows]
    ls = mls[rows:]
    log_normalisers(r0, r1, x, k, m, ls)
    for r in range(rows):  # flat: vectorises
        ls[r] = nan_unless_finite(ls[r], m[r])
    # The gather without per-row slices (a slice per row costs as much as a
    # short row's gather): x[i] - (m + ls) would lose the precision of a
    # dominant category's log p = -ls, so (x[i] - m) - ls as log_softmax.
    nan = x.dtype.type(np.nan)
    bad = 0
    if n == 1:  # one flat loop, indexed from 0 (it vectorises: a gather)
        xb, ib, ob = x[r0 * k : r1 * k], index[r0:r1], out[r0:r1]
        for r in range(rows):
            i = ib[r]
            ok = (i >= 0) & (i < k)
            v = xb[r * k + select(ok, i, np.int64(0))]
            ob[r] = select(ok, (v - m[r]) - ls[r], nan)
            bad += select(ok, 0, 1)
        rows = 0
    for r in range(rows):
        mr, lr = m[r], ls[r]
        o = (r0 + r) * n
        base = (r0 + r) * k
        for s in range(n):
            i = index[o + s]
            ok = (i >= 0) & (i < k)
            v = x[base + select(ok, i, np.int64(0))]
            out[o + s] = select(ok, (v - mr) - lr, nan)
            bad += select(ok, 0, 1)
    if bad > 0 and status.size > 0:
        status[0] = 1  # every block that finds one writes the same value


@row_kernel
def score_bwd(r0, r1, x, out, k, n, index, weights, baseline, estimator, status):
    """``out[r] = sum_s w_s * (onehot(index[r, s]) - softmax(x[r]))`` with
    the weights ``w_s`` of ``estimator``: ``weights`` as given
    (``SCORE_SUM``); ``(weights - baseline) / n``, the baseline absent meaning
    0 (``SCORE_MEAN``); ``(weights - mean(weights)) / (n - 1)``, the mean of
    ``(weights_s - b_s) / n`` with ``b_s`` the mean of the other samples
    (``SCORE_LOO``).  A row with an index outside ``[0, k)`` is NaN and sets
    ``status[0] = 1`` (when ``status`` is given)."""
    wide_vectors()
    rows = r1 - r0
    scratch = np.empty(rows * (n + 1), x.dtype)
    ws = scratch[: rows * n]
    scale = scratch[rows * n :]
    zero = x.dtype.type(0)
    # The weights and their row sums in flat loops over the block (no slice
    # per row: at K = 10 a row's whole softmax costs about 15 ns).
    wb = weights[r0 * n : r1 * n]
    if estimator == SCORE_LOO:
        # Sample-major loops over the rows (strided, but vectorised across
        # rows; each row's sum still runs over s in order).
        fn, c = x.dtype.type(n), x.dtype.type(n - 1)
        for r in range(rows):
            scale[r] = zero
        for s in range(n):
            for r in range(rows):
                scale[r] += wb[r * n + s]
        for r in range(rows):
            scale[r] = scale[r] / fn  # the row's mean, for now
        for s in range(n):
            for r in range(rows):
                ws[r * n + s] = (wb[r * n + s] - scale[r]) / c
    elif estimator == SCORE_MEAN:
        c = x.dtype.type(n)
        if baseline.size > 0:
            bb = baseline[r0 * n : r1 * n]
            for i in range(rows * n):
                ws[i] = (wb[i] - bb[i]) / c
        else:
            for i in range(rows * n):
                ws[i] = wb[i] / c
    else:
        for i in range(rows * n):
            ws[i] = wb[i]
    if n == 1:
        for r in range(rows):
            scale[r] = -ws[r]
    else:
        for r in range(rows):
            scale[r] = zero
        for s in range(n):
            for r in range(rows):
                scale[r] -= ws[r * n + s]
    ob = out[r0 * k : r1 * k]
    _softmax_block(0, rows, x[r0 * k : r1 * k], ob, k, scale)
    nan = x.dtype.type(np.nan)
    ib = index[r0 * n : r1 * n]
    for r in range(rows):
        bad = False
        for s in range(n):
            i = ib[r * n + s]
            if i < 0 or i >= k:
                bad = True
            else:
                ob[r * k + i] += ws[r * n + s]
        if bad:
            for j in range(k):
                ob[r * k + j] = nan
            if status.size > 0:
                status[0] = 1


@part
def distribution_terms(xb, k, rows, d, e, t, m, s, ls):
    """For a block of ``rows`` rows (flat ``xb``): ``m`` the row maxima,
    ``d = x - m``, ``e = exp(d)`` exact (0 for a ``-inf`` logit), ``s`` the row
    sums of ``e`` and ``ls = log(s)`` (:func:`~.softmax.log_of_terms`, from
    the rest ``t = sum of e where d < 0``; ``t`` is scratch of the block's
    size, left holding those terms)."""
    wide_vectors()
    shift_rows(xb, d, k, m)
    zero = xb.dtype.type(0)
    for i in range(d.size):
        ei = vexp_shifted(d[i])
        e[i] = ei
        t[i] = select(d[i] < zero, ei, zero)
    one = xb.dtype.type(1)
    for r in range(rows):
        sr = row_sum(e[r * k : (r + 1) * k])
        s[r] = sr
        ls[r] = log_of_terms(sr, row_sum(t[r * k : (r + 1) * k]), one)


@row_kernel
def categorical_entropy_fwd(r0, r1, x, out, k):
    """``out[r] = -sum_j p_j log p_j`` of ``p = softmax(x[r])``, computed as
    ``ls - sum_j e_j d_j / s`` (``0 log 0 = 0``); NaN for a row without a
    distribution."""
    wide_vectors()
    rows = r1 - r0
    scratch = np.empty(3 * rows * k + 3 * rows, x.dtype)
    n = rows * k
    d, e, t = scratch[:n], scratch[n : 2 * n], scratch[2 * n : 3 * n]
    m, s, ls = scratch[3 * n : 3 * n + rows], scratch[3 * n + rows : 3 * n + 2 * rows], scratch[3 * n + 2 * rows :]
    distribution_terms(x[r0 * k : r1 * k], k, rows, d, e, t, m, s, ls)
    _entropies(d, e, t, k, rows, m, s, ls, out[r0:r1])


@part
def _entropies(d, e, t, k, rows, m, s, ls, h):
    """The entropies ``h`` of a block from :func:`distribution_terms` (``t``
    is overwritten)."""
    wide_vectors()
    zero = d.dtype.type(0)
    for i in range(t.size):
        t[i] = select(e[i] == zero, zero, e[i] * d[i])
    for r in range(rows):
        h[r] = nan_unless_finite(ls[r] - row_sum(t[r * k : (r + 1) * k]) / s[r], m[r])


@row_kernel
def categorical_entropy_bwd(r0, r1, g, x, out, k):
    """``out[r] = -g[r] * p * (log p + H)``, the gradient of the entropy ``H``
    of ``p = softmax(x[r])`` times ``g[r]``: exactly 0 where ``p_j = 0``, NaN
    for a row without a distribution."""
    wide_vectors()
    rows = r1 - r0
    scratch = np.empty(3 * rows * k + 4 * rows, x.dtype)
    n = rows * k
    d, e, t = scratch[:n], scratch[n : 2 * n], scratch[2 * n : 3 * n]
    m, s = scratch[3 * n : 3 * n + rows], scratch[3 * n + rows : 3 * n + 2 * rows]
    ls, h = scratch[3 * n + 2 * rows : 3 * n + 3 * rows], scratch[3 * n + 3 * rows :]
    distribution_terms(x[r0 * k : r1 * k], k, rows, d, e, t, m, s, ls)
    _entropies(d, e, t, k, rows, m, s, ls, h)
    zero = x.dtype.type(0)
    for r in range(rows):
        orow = out[(r0 + r) * k : (r0 + r + 1) * k]
        dr = d[r * k : (r + 1) * k]
        er = e[r * k : (r + 1) * k]
        zr = m[r] - m[r]  # 0, or NaN for a row without a distribution
        c = -g[r0 + r] / s[r]
        lr, hr = ls[r], h[r]
        for j in range(k):
            orow[j] = select(er[j] == zero, zr, c * (er[j] * ((dr[j] - lr) + hr)))


@row_kernel
def categorical_kl_fwd(r0, r1, x, xp, out, k):
    """``out[r] = sum_j q_j (log q_j - log p_j)``, ``q = softmax(x[r])``, ``p =
    softmax(xp[r])``: ``0 log 0 = 0`` where ``q_j = 0``, ``+inf`` where ``q_j > 0 =
    p_j``, NaN where either row has no distribution."""
    wide_vectors()
    rows = r1 - r0
    n = rows * k
    a = np.empty(6 * n, x.dtype)
    dq, eq, tq, dp, ep, tp = a[:n], a[n : 2 * n], a[2 * n : 3 * n], a[3 * n : 4 * n], a[4 * n : 5 * n], a[5 * n :]
    b = np.empty(6 * rows, x.dtype)
    mq, sq, lq = b[:rows], b[rows : 2 * rows], b[2 * rows : 3 * rows]
    mp, sp, lp = b[3 * rows : 4 * rows], b[4 * rows : 5 * rows], b[5 * rows :]
    distribution_terms(x[r0 * k : r1 * k], k, rows, dq, eq, tq, mq, sq, lq)
    distribution_terms(xp[r0 * k : r1 * k], k, rows, dp, ep, tp, mp, sp, lp)
    _divergences(dq, eq, tq, dp, k, rows, mq, sq, lq, mp, lp, out[r0:r1])


@part
def _divergences(dq, eq, tq, dp, k, rows, mq, sq, lq, mp, lp, kl):
    """The divergences ``kl`` of a block from the two rows' terms
    (:func:`distribution_terms`; ``tq`` is overwritten)."""
    wide_vectors()
    zero = dq.dtype.type(0)
    for r in range(rows):
        a, b = lq[r], lp[r]
        dqr, eqr, dpr = dq[r * k : (r + 1) * k], eq[r * k : (r + 1) * k], dp[r * k : (r + 1) * k]
        tr = tq[r * k : (r + 1) * k]
        for j in range(k):
            tr[j] = select(eqr[j] == zero, zero, eqr[j] * ((dqr[j] - a) - (dpr[j] - b)))
    for r in range(rows):
        kl[r] = row_sum(tq[r * k : (r + 1) * k]) / sq[r] + (mq[r] - mq[r]) + (mp[r] - mp[r])


@row_kernel
def categorical_kl_bwd(r0, r1, g, x, xp, out, out_p, k):
    """The gradient of ``g[r] * KL(q || p)`` with respect to the logits of
    ``q`` (``out``: ``g q (log q - log p - KL)``, exactly 0 where ``q_j = 0``)
    and of ``p`` (``out_p``: ``g (p - q)``)."""
    wide_vectors()
    rows = r1 - r0
    n = rows * k
    a = np.empty(6 * n, x.dtype)
    dq, eq, tq, dp, ep, tp = a[:n], a[n : 2 * n], a[2 * n : 3 * n], a[3 * n : 4 * n], a[4 * n : 5 * n], a[5 * n :]
    b = np.empty(7 * rows, x.dtype)
    mq, sq, lq = b[:rows], b[rows : 2 * rows], b[2 * rows : 3 * rows]
    mp, sp, lp, kl = b[3 * rows : 4 * rows], b[4 * rows : 5 * rows], b[5 * rows : 6 * rows], b[6 * rows :]
    distribution_terms(x[r0 * k : r1 * k], k, rows, dq, eq, tq, mq, sq, lq)
    distribution_terms(xp[r0 * k : r1 * k], k, rows, dp, ep, tp, mp, sp, lp)
    _divergences(dq, eq, tq, dp, k, rows, mq, sq, lq, mp, lp, kl)
    zero = x.dtype.type(0)
    for r in range(rows):
        o = out[(r0 + r) * k : (r0 + r + 1) * k]
        op = out_p[(r0 + r) * k : (r0 + r + 1) * k]
        dqr, eqr = dq[r * k : (r + 1) * k], eq[r * k : (r + 1) * k]
        dpr, epr = dp[r * k : (r + 1) * k], ep[r * k : (r + 1) * k]
        zr = (mq[r] - mq[r]) + (mp[r] - mp[r])  # 0, or NaN without a distribution
        gr = g[r0 + r]
        cq, cp = gr / sq[r], gr / sp[r]
        la, lb, c = lq[r], lp[r], kl[r]
        for j in range(k):
            o[j] = select(eqr[j] == zero, zr, cq * (eqr[j] * (((dqr[j] - la) - (dpr[j] - lb)) - c)))
            op[j] = zr + (cp * epr[j] - cq * eqr[j])
