"""Numba kernels of the relaxed distributions in log space: the ExpConcrete
sample (``log_gumbel_softmax``) with its backward pass, and the log-densities
of the ExpConcrete, Concrete and binary Concrete distributions (Maddison et
al. 2017) with theirs.  Twin of ``concrete.cu``.

* ``log_gumbel_softmax_fwd``: ``log_softmax((x + G) / tau)`` with the noise,
  the shift and the scaling of ``gumbel_softmax_fwd`` (the same ``w = ((x -
  max x) + G - max z) * (1 / tau)``, draw 0, Gumbel domain), then the
  normaliser of ``log_softmax`` (``softmax.log_normalisers``: the ``log1p``
  of the rest for a peaked row).  Where ``gumbel_softmax`` underflows to 0
  (``w`` below about -104 in float32, as at ``tau = 1e-3``), the log sample
  stays finite: ``w - log(sum exp(w))``.
* ``log_gumbel_softmax_bwd``: the VJP of ``log_softmax(w)``, ``g - exp(z)
  sum(g)``, times ``1 / tau``; ``dL/dtau = -(1 / tau) sum_j (dL/dw_j) z_j``
  (``w`` is ``z`` plus a per-row constant and ``dL/dw`` sums to 0).  A masked
  category (``z = -inf``) takes no part and gets 0.
* ``concrete_log_prob_fwd`` (``space``: ``SPACE_LOG`` for an ExpConcrete
  sample ``z``, ``SPACE_SIMPLEX`` for a Concrete sample ``y = exp(z)``):
  with the ``n`` categories that are not masked and ``u_j = x_j - tau z_j``,
  ``log p(z) = log((n - 1)!) + (n - 1) log tau + sum_j u_j - n logsumexp(u)``,
  less ``sum_j z_j`` for ``y`` (the Jacobian of ``z = log y``).  Masked
  categories leave ``n``.  As in Maddison et al. (and PyTorch), the
  ExpConcrete formula is a density with respect to the symmetric measure
  ``dz_1 ... dz_{n-1} / exp(z_n)`` on the log-simplex, not plain Lebesgue
  measure on ``n - 1`` coordinates (that density is this one times
  ``exp(-z_n)``); ratios of two such densities, as in the relaxed ELBO, are
  the same either way.  A sample outside the support (a category that is
  not masked at ``z = -inf``, ``y = 0``; ``y`` outside ``(0, 1]``; a masked
  category with mass) gives ``-inf``; NaN gives NaN.
* ``concrete_log_prob_bwd``: with ``s = softmax(u)`` and ``v_j = 1 - n s_j``,
  ``dL/dx = g v``, ``dL/dz = -g tau v`` (``dL/dy = (dL/dz - g) / y``) and
  ``dL/dtau = g ((n - 1) / tau - sum_j z_j v_j)``; 0 outside the support.
* ``binary_concrete_log_prob_fwd`` (element-wise): with ``d = log(y) -
  log1p(-y)`` and ``a = x - tau d``, ``log p(y) = log tau + a - 2 softplus(a)
  - log y - log1p(-y)``, the softplus as ``max(a, 0) + log1p(exp(-|a|))``
  (no overflow); ``-inf`` for ``y`` outside ``(0, 1)`` (a sample that
  saturated to 0 or 1).  ``_bwd``: with ``t = 1 - 2 sigmoid(a)`` (computed as
  ``-tanh(a / 2)`` from ``exp(-|a|)``), ``dL/dx = g t``, ``dL/dtau = g (1 /
  tau - t d)``, ``dL/dy = g (2 y - 1 - tau t) / (y (1 - y))``.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import helper, part, row_kernel, select, wide_vectors
from ._rows import from_columns, row_max, row_sum
from ._vmath import log1p_nonneg, vexp, vexp_shifted, vlog
from .gumbel import SHORT_ROW, perturbed_rows, scaled_columns, tau_of
from .softmax import log_normalisers, nan_unless_finite

SPACE_LOG, SPACE_SIMPLEX = 0, 1
"""The ``space`` parameter of ``concrete_log_prob_fwd/_bwd``
(``gumbel_np._ops.SPACE_*``): the sample is ``z = log y`` (ExpConcrete) or
``y`` on the simplex (Concrete).  ``concrete.cu`` holds the same numbers."""


# --------------------------------------------------------------------------
# The ExpConcrete sample


@part
def _scaled_rows(r0, r1, x, w, k, k0, k1, row_ids, tau, noise_mode, noise):
    """Rows of ``SHORT_ROW`` or more: ``w = ((x - max x) + G - max z) * (1 /
    tau)``, row by row (``gumbel_softmax_fwd``'s long-row arithmetic)."""
    wide_vectors()
    mz = np.empty(r1 - r0, x.dtype)
    perturbed_rows(r0, r1, x, w, mz, k, k0, k1, row_ids, noise_mode, noise)
    for r in range(r0, r1):
        wr = w[(r - r0) * k : (r - r0 + 1) * k]
        f = x.dtype.type(1) / tau_of(tau, r)
        m = mz[r - r0]
        for j in range(k):
            wr[j] = (wr[j] - m) * f


@row_kernel
def log_gumbel_softmax_fwd(r0, r1, x, out, k, k0, k1, row_ids, tau, noise_mode, noise):
    """``out = log_softmax(((x - max x) + G) / tau)`` per row (see the module
    notes)."""
    wide_vectors()
    rows = r1 - r0
    w = np.empty(rows * k, x.dtype)
    if k < SHORT_ROW:  # gumbel_softmax_fwd's column-order start
        z, _ = scaled_columns(r0, r1, x, k, k0, k1, row_ids, tau, noise_mode, noise)
        from_columns(z, w, k, rows)
    else:
        _scaled_rows(r0, r1, x, w, k, k0, k1, row_ids, tau, noise_mode, noise)
    mls = np.empty(2 * rows, x.dtype)
    m = mls[:rows]
    ls = mls[rows:]
    log_normalisers(0, rows, w, k, m, ls)
    ob = out[r0 * k : r1 * k]
    for r in range(rows):
        lr = nan_unless_finite(ls[r], m[r])
        wr = w[r * k : (r + 1) * k]
        orow = ob[r * k : (r + 1) * k]
        mr = m[r]
        for j in range(k):
            orow[j] = (wr[j] - mr) - lr


@row_kernel
def log_gumbel_softmax_bwd(r0, r1, g, y, out, k, tau, dtau):
    """VJP of :func:`log_gumbel_softmax_fwd` from its output ``y`` (see the
    module notes)."""
    wide_vectors()
    zero = y.dtype.type(0)
    ninf = y.dtype.type(-np.inf)
    terms = np.empty(k, y.dtype)
    for r in range(r0, r1):
        gr = g[r * k : (r + 1) * k]
        yr = y[r * k : (r + 1) * k]
        orow = out[r * k : (r + 1) * k]
        for j in range(k):
            terms[j] = select(yr[j] == ninf, zero, gr[j])
        total = row_sum(terms)
        f = y.dtype.type(1) / tau_of(tau, r)
        for j in range(k):
            live = yr[j] != ninf
            orow[j] = select(live, gr[j] - vexp(yr[j]) * total, zero)
        if dtau.size > 0:
            for j in range(k):
                terms[j] = select(yr[j] != ninf, orow[j] * yr[j], zero)
            dtau[r] = -(row_sum(terms) * f)
        for j in range(k):
            orow[j] = orow[j] * f


# --------------------------------------------------------------------------
# The (Exp)Concrete log-density


@part
def _concrete_row(zr, xr, u, w, a, t, space):
    """One row's terms, in loops that vectorise: ``u = x - t z`` over the
    categories that are not masked (``-inf`` at masked ones), ``w = z`` and
    ``a = u`` there (0 elsewhere); returns ``(n, outside, mu, su, sz)``: the number of
    categories, the number of sample values outside the support (a category
    that is not masked at ``z = -inf``, ``y = 0`` or ``y > 1``, or a masked
    one with mass), the maximum and the sums of ``u`` and ``w`` over them."""
    wide_vectors()
    k = xr.size
    ninf = xr.dtype.type(-np.inf)
    zero = xr.dtype.type(0)
    one = xr.dtype.type(1)
    n = 0
    outside = 0
    if space == SPACE_SIMPLEX:
        for j in range(k):
            live = xr[j] != ninf
            v = zr[j]
            bad = select(live, (v <= zero) | (v > one), v != zero)
            outside += select(bad & (v == v), 1, 0)
            n += select(live, 1, 0)
            zj = vlog(v)
            uj = xr[j] - t * zj
            u[j] = select(live, uj, ninf)
            a[j] = select(live, uj, zero)
            w[j] = select(live, zj, zero)
    else:
        for j in range(k):
            live = xr[j] != ninf
            v = zr[j]
            bad = select(live, v == ninf, v != ninf)
            outside += select(bad & (v == v), 1, 0)
            n += select(live, 1, 0)
            uj = xr[j] - t * v
            u[j] = select(live, uj, ninf)
            a[j] = select(live, uj, zero)
            w[j] = select(live, v, zero)
    return n, outside, row_max(u), row_sum(a), row_sum(w)


@row_kernel
def concrete_log_prob_fwd(r0, r1, x, logits_p, out, k, tau, space):
    """``out[r]`` = the ExpConcrete (``SPACE_LOG``) or Concrete
    (``SPACE_SIMPLEX``) log-density of the sample ``x[r]`` with logits
    ``logits_p[r]`` and temperature ``tau`` (see the module notes)."""
    wide_vectors()
    uwa = np.empty(3 * k, x.dtype)
    u, w, a = uwa[:k], uwa[k : 2 * k], uwa[2 * k :]
    nan = x.dtype.type(np.nan)
    one = x.dtype.type(1)
    # log((n - 1)!), recomputed only when n changes (a libm call costs as
    # much as a short row).
    last_n = -1
    lg = x.dtype.type(0)
    for r in range(r0, r1):
        zr = x[r * k : (r + 1) * k]
        xr = logits_p[r * k : (r + 1) * k]
        t = tau_of(tau, r)
        n, outside, mu, su, sz = _concrete_row(zr, xr, u, w, a, t, space)
        if n != last_n:
            lg = x.dtype.type(math.lgamma(np.float64(max(n, 1))))
            last_n = n
        for j in range(k):
            u[j] = vexp_shifted(u[j] - mu)
        lse = mu + vlog(row_sum(u))
        fn = x.dtype.type(n)
        lp = lg + (fn - one) * vlog(t) + su - fn * lse
        if space == SPACE_SIMPLEX:
            lp = lp - sz
        # No category left: no distribution (NaN, as log_softmax of a row
        # of -inf); a sample outside the support: -inf.
        lp = select(n == 0, nan, lp)
        out[r] = select((outside > 0) & (n > 0), x.dtype.type(-np.inf), lp)


@row_kernel
def concrete_log_prob_bwd(r0, r1, g, x, logits_p, out, out_p, k, tau, dtau, space):
    """VJP of :func:`concrete_log_prob_fwd` with respect to the sample
    (``out``), the logits (``out_p``) and, when ``dtau`` is not empty, the
    temperature (see the module notes)."""
    wide_vectors()
    uwa = np.empty(3 * k, x.dtype)
    u, w, a = uwa[:k], uwa[k : 2 * k], uwa[2 * k :]
    zero = x.dtype.type(0)
    one = x.dtype.type(1)
    ninf = x.dtype.type(-np.inf)
    for r in range(r0, r1):
        zr = x[r * k : (r + 1) * k]
        xr = logits_p[r * k : (r + 1) * k]
        oz = out[r * k : (r + 1) * k]
        ox = out_p[r * k : (r + 1) * k]
        t = tau_of(tau, r)
        n, outside, mu, su, sz = _concrete_row(zr, xr, u, w, a, t, space)
        for j in range(k):
            u[j] = vexp_shifted(u[j] - mu)
        c = x.dtype.type(n) / row_sum(u)
        # Outside the support the log-density is -inf nearby too: gradient 0
        # (selected, as the terms there are not finite).
        inside = outside == 0
        gr = select(inside, g[r], zero)
        tg = gr * t
        for j in range(k):
            live = (xr[j] != ninf) & inside
            v = one - c * u[j]  # 1 - n softmax(u)_j
            ox[j] = select(live, gr * v, zero)
            oz[j] = select(live, -(tg * v), zero)
            w[j] = select(live, w[j] * v, zero)  # z_j v_j, for dtau
        if space == SPACE_SIMPLEX:
            for j in range(k):
                live = (xr[j] != ninf) & inside
                oz[j] = select(live, (oz[j] - gr) / zr[j], zero)
        if dtau.size > 0:
            dtau[r] = select(inside, gr * ((x.dtype.type(n) - one) / t - row_sum(w)), zero)


# --------------------------------------------------------------------------
# The binary Concrete log-density (element-wise)


@helper
def _binary_density(y, x, t, one, zero, ninf):
    """``log p(y)`` of one element (``-inf`` outside ``(0, 1)``).

    Three logarithms: ``d = log(y / (1 - y))`` and ``log y + log1p(-y) =
    log(y (1 - y))``, each of one rounded quotient or product (a relative
    error of an ulp, as ``1 - y`` is exact for ``y >= 1/2`` and relatively
    exact below), and the ``log1p`` of the softplus; ``a - 2 softplus(a) =
    -|a| - 2 log1p(exp(-|a|))``."""
    u = one - y
    d = vlog(y / u)
    a = x - t * d
    e = vexp(-abs(a))
    l1p = log1p_nonneg(e, one)  # e in [0, 1]
    lp = (vlog(t) - abs(a)) - (l1p + l1p) - vlog(y * u)
    inside = (y > zero) & (y < one)
    return select(inside | (y != y), lp, ninf)


@row_kernel
def binary_concrete_log_prob_fwd(r0, r1, x, logits_p, out, k, taus):
    """``out = log p(y)`` of the binary Concrete sample ``x`` (``y``) with
    logits ``logits_p`` and per-element (or one) temperature ``taus`` (see the
    module notes)."""
    wide_vectors()
    o = r0 * k
    nb = (r1 - r0) * k
    yb = x[o : o + nb]
    xb = logits_p[o : o + nb]
    ob = out[o : o + nb]
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    ninf = x.dtype.type(-np.inf)
    if taus.size == 1:
        t = taus[0]
        for i in range(nb):
            ob[i] = _binary_density(yb[i], xb[i], t, one, zero, ninf)
    else:
        tb = taus[o : o + nb]
        for i in range(nb):
            ob[i] = _binary_density(yb[i], xb[i], tb[i], one, zero, ninf)


@helper
def _binary_gradients(g, y, x, t, one, zero):
    """``(dL/dy, dL/dx, dL/dt)`` of one element (0 outside ``(0, 1)``)."""
    d = vlog(y / (one - y))
    a = x - t * d
    e = vexp(-abs(a))
    th = (one - e) / (one + e)  # tanh(|a| / 2)
    s = select(a > zero, -th, th)  # 1 - 2 sigmoid(a)
    inside = (y > zero) & (y < one)
    gi = select(inside | (y != y), g, zero)
    dy = select(inside | (y != y), gi * ((y + y - one) - t * s) / (y * (one - y)), zero)
    dt = select(inside | (y != y), gi * (one / t - s * d), zero)
    return dy, select(inside | (y != y), gi * s, zero), dt


@row_kernel
def binary_concrete_log_prob_bwd(r0, r1, g, x, logits_p, out, out_p, k, taus, dtaus):
    """VJP of :func:`binary_concrete_log_prob_fwd` with respect to the sample
    (``out``), the logits (``out_p``) and, when ``dtaus`` is not empty, the
    temperature (see the module notes)."""
    wide_vectors()
    o = r0 * k
    nb = (r1 - r0) * k
    gb = g[o : o + nb]
    yb = x[o : o + nb]
    xb = logits_p[o : o + nb]
    oy = out[o : o + nb]
    ox = out_p[o : o + nb]
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    want_dt = dtaus.size > 0
    db = dtaus[o : o + nb] if want_dt else dtaus
    if taus.size == 1:
        t = taus[0]
        for i in range(nb):
            dy, dx, dt = _binary_gradients(gb[i], yb[i], xb[i], t, one, zero)
            oy[i] = dy
            ox[i] = dx
            if want_dt:
                db[i] = dt
    else:
        tb = taus[o : o + nb]
        for i in range(nb):
            dy, dx, dt = _binary_gradients(gb[i], yb[i], xb[i], tb[i], one, zero)
            oy[i] = dy
            ox[i] = dx
            if want_dt:
                db[i] = dt
