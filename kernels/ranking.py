"""Numba kernels of ordered samples without replacement: the Gumbel-top-k
sampler and the Plackett-Luce log-probability with its backward pass.  Twin
of ``ranking.cu``.

* ``categorical_topk_fwd``: the indices of the ``s`` largest ``z = (x - max
  x) + G`` (draw 0, the noise of ``categorical``'s single draw, made the same
  way, so the first index is ``categorical``'s), in decreasing order, ties to
  the lowest index.  The noise is made row by row as in ``categorical_fwd``
  and consumed by a selection that keeps only the ``s`` best so far:

  - short rows (``k < SHORT_ROW``), column order: a compare-exchange of each
    candidate down ``s`` rank buffers, for all rows of the block at once
    (branch-free, vectorised across rows; ``k * s`` steps per row);
  - longer rows, ``s <= SMALL_TOP``: a sorted buffer of ``s`` entries, which a
    candidate enters only when it beats the current ``s``-th, the row scanned
    in blocks that are skipped whole when none of their values can enter
    (:data:`SCAN`);
  - ``s > SMALL_TOP``: a selection (``np.partition``) for the ``s``-th value,
    then a stable sort of the ``s`` candidates.

  A masked category (``x == -inf``) is never drawn.  A category whose shifted
  value ``x - max x`` overflows to ``-inf`` (float32 logits beyond 1.7e38
  apart) is not masked: it is drawn after every finite ``z``, in index order.
  A row whose maximum is NaN or ``+inf``, or with fewer than ``s`` categories
  that are not ``-inf``, gets ``-1`` in its first sample (the public layer
  raises, naming it).

* ``plackett_luce_log_prob_fwd`` and ``_bwd``: for the ranking ``i_0 ..
  i_{n-1}`` of a row, ``sum_q x[i_q] - L_q`` with ``L_q = logsumexp`` over the
  categories not in ``i_0 .. i_{q-1}``.  No normaliser is a difference: the
  categories never chosen are summed directly (``L_n``, masked by a per-row
  mark of the chosen ones), and ``L_q = logaddexp(L_{q+1}, x[i_q])`` going
  back from ``q = n - 1``, with ``log1p`` for the sum of two terms.  So a row
  whose first choices hold ``1 - 1e-12`` of the mass gets every term to a few
  ulp, where ``log(total - chosen)`` would keep 4 digits.  The gradient
  ``sum_q onehot(i_q) - softmax over the remaining set`` is written per
  element as ``-A_{n-1} exp(x_j - L_{n-1})`` for a category never chosen
  (``A_q = sum_{p <= q} exp(L_q - L_p)``, in ``[1, q + 1]``) and as
  ``exp(L_{q+1} - L_q) - A_{q-1} exp(x[i_q] - L_{q-1})`` for ``i_q``, where
  ``exp(L_{q+1} - L_q) = 1 - p_q`` again without a difference.

  A ranking that repeats a category or chooses a masked one has probability 0:
  its log-probability is ``-inf`` and its gradient 0 (the log-probability is
  ``-inf`` at every nearby logits).  An index outside ``[0, k)`` is never
  read: the row is NaN and ``status[0]`` is set (the public layer raises).
  NaN and ``+inf`` logits propagate NaN.
"""

from __future__ import annotations

import numpy as np

from ._jit import helper, maximum, part, row_kernel, select, wide_vectors
from ._rows import column_block, row_max, row_sum
from ._vmath import log1p_nonneg, vexp, vexp_shifted, vlog
from .softmax import COLUMN_ROW, exp_shifted_inplace, shift_rows
from .gumbel import SHORT_ROW, gumbel_of, philox_columns, philox_words, row_id, word_scratch

SMALL_TOP = 128
"""Samples per row up to which rows of ``SHORT_ROW`` or more select with a
sorted buffer rather than a partition and a sort.  Measured (float32, one
thread, the block functions alone): at K = 1024 the buffer takes 6.5, 12.6,
21.5, 43.8 and 95.4 ms for 2048 rows at s = 8, 32, 64, 128 and 256, the
partition 26.8, 29.3, 33.3, 41.8 and 61.0 (the crossover near 128); at K =
50257 the buffer wins up to 256 at least (7.8 against 18.8 ms for 32 rows).
``bench/topk_paths.py`` times both paths in interleaved pairs."""


# --------------------------------------------------------------------------
# The sampler


@row_kernel
def categorical_topk_fwd(r0, r1, x, out, k, s, k0, k1, row_ids):
    """``out[r * s + q]`` = the index of the ``q``-th largest ``(x_j - max x)
    + G(j, draw 0)`` of row ``r``, ties to the lowest index; ``out[r * s] =
    -1`` for a row with nothing valid to draw (see the module notes)."""
    wide_vectors()
    if k < SHORT_ROW:
        _topk_columns(r0, r1, x, out, k, s, k0, k1, row_ids)
    elif s <= SMALL_TOP:
        _topk_buffer(r0, r1, x, out, k, s, k0, k1, row_ids)
    else:
        _topk_partition(r0, r1, x, out, k, s, k0, k1, row_ids)


@part
def _topk_columns(r0, r1, x, out, k, s, k0, k1, row_ids):
    """Short rows in column order: for each category ``j`` and rank ``q``, a
    compare-exchange of the carried candidate with rank buffer ``q``, for all
    rows at once.  A candidate takes a rank when it is greater, or equal with
    a lower index (an empty rank holds ``-inf`` and the index ``k``); a
    masked category carries the empty index ``k`` and takes nothing."""
    wide_vectors()
    rows = r1 - r0
    xc, m = column_block(x, r0, r1, k)
    words = word_scratch(xc, (k + 3) * rows)
    philox_columns(words, k, r0, r1, k0, k1, np.uint64(0), row_ids)
    bv = np.empty(s * rows, x.dtype)
    bi = np.empty(s * rows, np.int32)
    cv = np.empty(rows, x.dtype)
    ci = np.empty(rows, np.int32)
    empty = np.int32(k)
    ninf = x.dtype.type(-np.inf)
    for i in range(s * rows):
        bv[i] = ninf
        bi[i] = empty
    for j in range(k):
        c = xc[j * rows : (j + 1) * rows]
        w = words[j * rows : (j + 1) * rows]
        for r in range(rows):
            cv[r] = (c[r] - m[r]) + gumbel_of(w[r])
            ci[r] = select(c[r] == ninf, empty, np.int32(j))
        # Ranks past j are still empty: the candidate stops at the first one.
        for q in range(min(s, j + 1)):
            v = bv[q * rows : (q + 1) * rows]
            ix = bi[q * rows : (q + 1) * rows]
            for r in range(rows):
                # Lexicographic (value, then lower index): a candidate pushed
                # down by a later, larger one passes equal values of higher
                # index; an empty rank (index k) takes any candidate.
                take = (ci[r] != empty) & ((cv[r] > v[r]) | ((cv[r] == v[r]) & (ci[r] < ix[r])))
                ov, oi = v[r], ix[r]
                v[r] = select(take, cv[r], ov)
                ix[r] = select(take, ci[r], oi)
                cv[r] = select(take, ov, cv[r])
                ci[r] = select(take, oi, ci[r])
    ob = out[r0 * s : r1 * s]
    for q in range(s):
        ix = bi[q * rows : (q + 1) * rows]
        for r in range(rows):
            ob[r * s + q] = np.int64(ix[r])
    last = bi[(s - 1) * rows :]
    for r in range(rows):
        ok = np.isfinite(m[r]) & (last[r] != empty)
        ob[r * s] = select(ok, ob[r * s], np.int64(-1))


SCAN = 64
"""Elements per block of the selection's scan: a block is first tested
whole, in one vectorised count of its values above the current ``s``-th
best, and scanned element by element only when that count is not 0, which
after the first blocks is rare.  Measured per row of 1024 float32 values
(one thread): 207 ns for ``s = 1`` and 690 ns for ``s = 8``, against 470 and
625 ns for a plain scan and 860 and 940 ns for a selection through the
maxima of interleaved groups; the noise of the row takes about 1400 ns."""


@part
def _row_z(xr, z, words, m, k0, k1, rid):
    """``z = (xr - m) + G(draw 0)`` of one row (``categorical_fwd``'s values)."""
    wide_vectors()
    philox_words(words, 0, xr.size, k0, k1, np.uint64(0), rid)
    for j in range(xr.size):
        z[j] = (xr[j] - m) + gumbel_of(words[j])


@part
def _top_of_row(xr, z, bv, bi):
    """The ``s = bv.size`` largest ``z`` in decreasing order into ``bv`` and
    their indices into ``bi`` (ties to the lowest index: the scan runs in
    index order and a value enters only when strictly greater than the
    ``s``-th best); returns how many were found (fewer than ``s`` when the
    row has fewer categories that are not masked)."""
    wide_vectors()
    s = bv.size
    k = z.size
    n = 0
    thr = z.dtype.type(-np.inf)
    for b0 in range(0, k, SCAN):
        b1 = min(k, b0 + SCAN)
        zb = z[b0:b1]
        above = 0
        for t in range(zb.size):
            above += zb[t] > thr
        if above == 0:
            continue
        for j in range(b0, b1):
            v = z[j]
            if v > thr:
                if n < s:
                    n += 1
                p = n - 1
                while p > 0 and bv[p - 1] < v:
                    bv[p] = bv[p - 1]
                    bi[p] = bi[p - 1]
                    p -= 1
                bv[p] = v
                bi[p] = j
                if n == s:
                    thr = bv[s - 1]
    return _overflowed_last(xr, z, bi, n)


@helper
def _overflowed_last(xr, z, bi, n):
    """Fill a buffer holding ``n`` of the finite ``z`` with the categories
    whose shifted value overflowed (``z = -inf``, ``x`` not), in index order;
    returns the new count (the row is not read when the buffer is full, as
    it almost always is)."""
    if n == bi.size:
        return n
    for j in range(z.size):
        if n < bi.size and z[j] == -np.inf and xr[j] != -np.inf:
            bi[n] = j
            n += 1
    return n


@part
def _topk_buffer(r0, r1, x, out, k, s, k0, k1, row_ids):
    """Rows of ``SHORT_ROW`` or more, ``s <= SMALL_TOP``: the noise of a row,
    then one scan keeping a sorted buffer of the ``s`` best."""
    wide_vectors()
    words = word_scratch(x, k)
    z = np.empty(k, x.dtype)
    bv = np.empty(s, x.dtype)
    bi = np.empty(s, np.int64)
    for r in range(r0, r1):
        xr = x[r * k : (r + 1) * k]
        o = out[r * s : (r + 1) * s]
        m = row_max(xr)
        if not np.isfinite(m):
            o[0] = -1
            continue
        # The noise inline, as categorical_fwd makes it (in a part of its
        # own the loop ran 15% slower).
        philox_words(words, 0, k, k0, k1, np.uint64(0), row_id(row_ids, r))
        for j in range(k):
            z[j] = (xr[j] - m) + gumbel_of(words[j])
        n = _top_of_row(xr, z, bv, bi)
        for q in range(s):
            o[q] = bi[q]
        if n < s:
            o[0] = -1


@part
def _topk_partition(r0, r1, x, out, k, s, k0, k1, row_ids):
    """Rows of ``SHORT_ROW`` or more, ``s > SMALL_TOP``: the ``s``-th largest
    ``z`` by a partition, the candidates above it (and those equal to it, in
    index order, as many as fit) gathered in index order, then a stable sort
    of them by decreasing value."""
    wide_vectors()
    words = word_scratch(x, k)
    z = np.empty(k, x.dtype)
    c = np.empty(k, x.dtype)
    vals = np.empty(s, x.dtype)
    idx = np.empty(s, np.int64)
    for r in range(r0, r1):
        xr = x[r * k : (r + 1) * k]
        o = out[r * s : (r + 1) * s]
        m = row_max(xr)
        if not np.isfinite(m):
            o[0] = -1
            continue
        _row_z(xr, z, words, m, k0, k1, row_id(row_ids, r))
        for j in range(k):
            c[j] = z[j]
        t = np.partition(c, k - s)[k - s]
        n = 0
        for j in range(k):
            if z[j] > t:
                vals[n] = z[j]
                idx[n] = j
                n += 1
        for j in range(k):
            if n < s and z[j] == t and xr[j] != -np.inf:
                vals[n] = z[j]
                idx[n] = j
                n += 1
        if n < s:
            o[0] = -1
            continue
        order = np.argsort(-vals, kind="mergesort")
        for q in range(s):
            o[q] = idx[order[q]]


# --------------------------------------------------------------------------
# The Plackett-Luce log-probability


REST_FLOOR = 2.0**-60
"""Rows whose categories never chosen sum below this fraction of the row
maximum's term are summed again, shifted by their own maximum
(:func:`_rest_of_row`): shifted by the row maximum (a chosen category's),
their terms could underflow (float32 logits 104 below it)."""


@part
def _rest_of_row(xr, ir):
    """``logsumexp`` of the categories of the row ``xr`` not in the ranking
    ``ir`` (``-inf`` when there are none), shifted by their own maximum."""
    wide_vectors()
    k = xr.size
    ninf = xr.dtype.type(-np.inf)
    mark = np.zeros(k, np.uint8)
    for q in range(ir.size):
        i = ir[q]
        if i >= 0 and i < k:
            mark[i] = 1
    mu = ninf
    for j in range(k):
        mu = maximum(mu, select(mark[j] != 0, ninf, xr[j]))
    if mu == ninf:
        return ninf
    t = 0.0
    for j in range(k):
        if mark[j] == 0:
            t += np.float64(vexp_shifted(xr[j] - mu))
    return mu + vlog(xr.dtype.type(t))


@part
def pl_normalisers(r0, r1, x, k, n, index, c, L, imp):
    """The normalisers of the rankings of rows ``r0 <= r < r1``, column-major
    per block (``R = r1 - r0`` rows): ``c[q * R + r] = x[i_q]``, ``L[q * R +
    r] = L_q`` for ``q <= n`` (``L_n``: the logsumexp of the categories never
    chosen, ``-inf`` when there are none; NaN for a row whose maximum is not
    finite), ``imp[r] = 1`` for a ranking of probability 0 (a repeat, a
    masked category).  An index outside ``[0, k)`` makes ``c`` NaN and counts
    in the returned number of bad indices.

    The terms ``exp(x - max)`` of the block are made in flat loops (in column
    order for short rows, as ``log_normalisers``), the chosen ones are marked
    (-1, which also finds a repeat) and then zeroed, and each row sums the
    rest: the categories never chosen, directly."""
    wide_vectors()
    rows = r1 - r0
    zero = x.dtype.type(0)
    ninf = x.dtype.type(-np.inf)
    nan = x.dtype.type(np.nan)
    mark = x.dtype.type(-1)
    columns = k < COLUMN_ROW
    if columns:  # e[j * R + r]
        e, m = column_block(x, r0, r1, k)
        for j in range(k):
            ej = e[j * rows : (j + 1) * rows]
            for r in range(rows):
                ej[r] = vexp_shifted(ej[r] - m[r])
        sj, sr = rows, 1
    else:  # e[r * k + j]
        e = np.empty(rows * k, x.dtype)
        m = np.empty(rows, x.dtype)
        shift_rows(x[r0 * k : r1 * k], e, k, m)
        exp_shifted_inplace(e)
        sj, sr = 1, k
    bad = 0
    for r in range(rows):
        imp[r] = 0
        xr = x[(r0 + r) * k : (r0 + r + 1) * k]
        ir = index[(r0 + r) * n : (r0 + r + 1) * n]
        for q in range(n):
            i = ir[q]
            if i < 0 or i >= k:
                bad += 1
                c[q * rows + r] = nan
                continue
            p = i * sj + r * sr
            if e[p] == mark or xr[i] == ninf:
                imp[r] = 1
            e[p] = mark
            c[q * rows + r] = xr[i]
        for q in range(n):
            i = ir[q]
            if i >= 0 and i < k:
                e[i * sj + r * sr] = zero
    s = np.empty(rows, x.dtype)
    if columns:
        for r in range(rows):
            s[r] = zero
        for j in range(k):
            ej = e[j * rows : (j + 1) * rows]
            for r in range(rows):
                s[r] += ej[r]
    else:
        for r in range(rows):
            s[r] = row_sum(e[r * k : (r + 1) * k])
    ln = L[n * rows : (n + 1) * rows]
    floor = x.dtype.type(REST_FLOOR)
    rare = 0
    for r in range(rows):
        ln[r] = (m[r] + vlog(s[r])) + (m[r] - m[r])
        rare += select((s[r] < floor) & np.isfinite(m[r]), 1, 0)
    if rare > 0:
        for r in range(rows):
            if s[r] < floor and np.isfinite(m[r]):
                ln[r] = _rest_of_row(x[(r0 + r) * k : (r0 + r + 1) * k], index[(r0 + r) * n : (r0 + r + 1) * n])
    one = x.dtype.type(1)
    for q in range(n - 1, -1, -1):
        a = L[(q + 1) * rows : (q + 2) * rows]
        b = c[q * rows : (q + 1) * rows]
        lq = L[q * rows : (q + 1) * rows]
        for r in range(rows):
            hi = maximum(a[r], b[r])
            d = -np.abs(a[r] - b[r])
            t = select(d == d, vexp_shifted(d), zero)
            lq[r] = hi + log1p_nonneg(t, one)
    return bad


@row_kernel
def plackett_luce_log_prob_fwd(r0, r1, x, out, k, n, index, status):
    """``out[r] = sum_q x[i_q] - L_q`` for the ranking ``index[r * n : (r + 1)
    * n]`` of row ``r`` (see the module notes)."""
    wide_vectors()
    rows = r1 - r0
    c = np.empty(n * rows, x.dtype)
    L = np.empty((n + 1) * rows, x.dtype)
    imp = np.empty(rows, np.uint8)
    bad = pl_normalisers(r0, r1, x, k, n, index, c, L, imp)
    ob = out[r0:r1]
    for r in range(rows):
        ob[r] = x.dtype.type(0)
    for q in range(n):
        cq = c[q * rows : (q + 1) * rows]
        lq = L[q * rows : (q + 1) * rows]
        for r in range(rows):
            ob[r] += cq[r] - lq[r]
    ninf = x.dtype.type(-np.inf)
    for r in range(rows):
        v = ob[r]
        ob[r] = select((imp[r] != 0) & (v == v), ninf, v)
    if bad > 0 and status.size > 0:
        status[0] = 1


@row_kernel
def plackett_luce_log_prob_bwd(r0, r1, g, x, out, k, n, index, status):
    """``out[r] = g[r] * d log p(ranking of row r) / dx[r]`` (see the module
    notes); 0 for a ranking of probability 0."""
    wide_vectors()
    rows = r1 - r0
    zero = x.dtype.type(0)
    if n == 0:  # the empty ranking: log P = 0 for any logits
        for i in range(r0 * k, r1 * k):
            out[i] = zero
        return
    c = np.empty(n * rows, x.dtype)
    L = np.empty((n + 1) * rows, x.dtype)
    imp = np.empty(rows, np.uint8)
    bad = pl_normalisers(r0, r1, x, k, n, index, c, L, imp)
    # A[q * R + r] = A_q; the weight of the category never chosen is A_{n-1}.
    A = np.empty(n * rows, x.dtype)
    for r in range(rows):
        A[r] = x.dtype.type(1)
    for q in range(1, n):
        for r in range(rows):
            A[q * rows + r] = x.dtype.type(1) + A[(q - 1) * rows + r] * vexp(
                L[q * rows + r] - L[(q - 1) * rows + r]
            )
    for r in range(rows):
        gr = select(imp[r] != 0, zero, g[r0 + r])
        lr = L[(n - 1) * rows + r]
        w = -gr * A[(n - 1) * rows + r]
        xr = x[(r0 + r) * k : (r0 + r + 1) * k]
        orow = out[(r0 + r) * k : (r0 + r + 1) * k]
        for j in range(k):
            orow[j] = w * vexp(xr[j] - lr)
        ir = index[(r0 + r) * n : (r0 + r + 1) * n]
        for q in range(n):
            i = ir[q]
            if i < 0 or i >= k:
                for j in range(k):
                    orow[j] = x.dtype.type(np.nan)
                break
            keep = vexp(L[(q + 1) * rows + r] - L[q * rows + r])
            taken = zero
            if q > 0:
                taken = A[(q - 1) * rows + r] * vexp(c[q * rows + r] - L[(q - 1) * rows + r])
            orow[i] = gr * (keep - taken)
    if bad > 0 and status.size > 0:
        status[0] = 1
