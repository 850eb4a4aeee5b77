"""Numba kernels of the binary (two-class) family: logistic noise, Bernoulli
draws, the binary Concrete (Gumbel-sigmoid) sample and the hard-concrete gate
with their backward passes, and the hard concrete's expected L0 norm.
Twin of ``binary.cu``.

Every function here is element-wise; the last axis indexes the stream as
the category axis does for the Gumbel family, so element ``j`` of the row
with id ``rid`` at draw ``d`` takes the uniform of counter ``(j // W, d +
LOGISTIC_DOMAIN, rid)``: the Philox words of the Gumbel noise's element
under the same key, in the logistic stream domain (``philox.py``).  A block
of rows draws its words with the Gumbel kernels' helpers (row order for long
rows, column order for short ones, :data:`~.gumbel.SHORT_ROW`), turns them
into logistic noise in one flat loop into a small scratch array that stays
in L1, and a second flat loop consumes it.

Logistic noise is ``L = log(u) - log1p(-u)``, evaluated as ``log(u / (1 -
u))``: ``1 - u`` is exact for these uniforms (``u`` is a multiple of
``2**-24``, or ``2**-53``, in ``(0, 1)``), so the quotient is rounded once
(a relative error of at most half an ulp, an absolute one below ``2**-24``
in ``L``) and one logarithm of a positive normal number serves where two
would cost a tenth more (16 M float32 values, 2 threads: 18.8 against 20.8
ms, of which 10.9 are the Philox words).

The scaled logit of the binary Concrete sample is ``(x + L) * (1 / tau)``,
the reciprocal taken once for a scalar temperature and per element for an
array of them (so equal temperatures give equal results either way), as
the Gumbel-Softmax kernels scale.
"""

from __future__ import annotations

import numba
import numpy as np

from ._jit import by_type, helper, part, row_kernel, select, wide_vectors
from ._rows import from_columns
from ._vmath import vexp, vlog, vlog_pos
from .gumbel import SHORT_ROW, block_words, philox_columns, word_scratch
from .philox import uniform_f32, uniform_f64

_LO32 = np.uint64(0xFFFFFFFF)
_U32 = np.uint64(32)

DOMAIN_SHIFT = 28
"""The stream domain is the top 4 bits of the counter's draw word: draw
indices are below ``2**28`` and domain ``D`` adds ``D << 28``."""

LOGISTIC_DOMAIN = np.uint64(1 << DOMAIN_SHIFT)
"""Domain 1, the logistic noise (domain 0 is the Gumbel noise)."""

GATE_SOFT, GATE_HARD, GATE_CLIP = 0, 1, 2
"""The ``gate`` parameter (``gumbel_np._ops.GATE_*``): the soft sample
``y = sigmoid((x + L) / tau)``, its hard side ``y > 1/2`` (straight-through;
ties to 0), or the hard-concrete gate ``clip(y (hi - lo) + lo, 0, 1)``.
``binary.cu`` holds the same numbers."""


@helper
def logistic_f32(word):
    """Float32 logistic noise from one Philox word."""
    u = uniform_f32(np.uint64(word))
    return vlog_pos(u / (np.float32(1) - u))


@helper
def logistic_f64(word):
    """Float64 logistic noise from 64 Philox bits."""
    u = uniform_f64(word >> _U32, word & _LO32)
    return vlog_pos(u / (1.0 - u))


def logistic_of(word):
    """Logistic noise of one element from its Philox word(s) (kernels only)."""
    raise NotImplementedError("logistic_of runs inside compiled kernels only")


by_type(logistic_of, {numba.uint32: logistic_f32, numba.uint64: logistic_f64})


@part
def block_logistic(z, r0, r1, k, k0, k1, draw, row_ids):
    """Logistic noise of rows ``r0 <= r < r1`` at draw index ``draw`` (the
    domain added here) into the flat row-order block ``z``."""
    wide_vectors()
    rows = r1 - r0
    d = np.uint64(draw) + LOGISTIC_DOMAIN
    if k < SHORT_ROW:
        words = word_scratch(z, (k + 3) * rows)
        philox_columns(words, k, r0, r1, k0, k1, d, row_ids)
        cols = np.empty(k * rows, z.dtype)
        for i in range(cols.size):
            cols[i] = logistic_of(words[i])
        from_columns(cols, z, k, rows)
    else:
        words = word_scratch(z, z.size + 3)
        block_words(words, r0, r1, k, k0, k1, d, row_ids)
        for i in range(z.size):
            z[i] = logistic_of(words[i])


@row_kernel
def logistic_fwd(r0, r1, out, k, k0, k1, draw, row_ids):
    """Standard logistic noise of rows ``r0 <= r < r1`` into ``out`` (flat, rows x k)."""
    wide_vectors()
    block_logistic(out[r0 * k : r1 * k], r0, r1, k, k0, k1, draw, row_ids)


@row_kernel
def bernoulli_fwd(r0, r1, x, out, k, s, k0, k1, row_ids, status):
    """``out[(r k + j) s + d] = x[r, j] + L(j, draw d) > 0`` for ``d < s``, as
    bools; a NaN in ``x`` gives False and sets ``status[0] = 1``."""
    wide_vectors()
    n = (r1 - r0) * k
    xb = x[r0 * k : r1 * k]
    ob = out[r0 * k * s : r1 * k * s]
    nans = 0
    for i in range(n):
        nans += select(xb[i] != xb[i], 1, 0)
    if nans > 0 and status.size > 0:
        status[0] = 1  # every block that finds one writes the same value
    z = np.empty(n, x.dtype)
    zero = x.dtype.type(0)
    for d in range(s):
        block_logistic(z, r0, r1, k, k0, k1, np.uint64(d), row_ids)
        if s == 1:
            for i in range(n):
                ob[i] = xb[i] + z[i] > zero
        else:
            for i in range(n):
                ob[i * s + d] = xb[i] + z[i] > zero


@helper
def sigmoid(s, one):
    """``1 / (1 + exp(-s))`` without overflow (``one``: 1 in the dtype of
    ``s``): from ``e = exp(-|s|)`` and ``q = 1 / (1 + e)``, ``q`` for ``s >=
    0`` and ``e q`` below (one division); NaN for NaN."""
    e = vexp(-abs(s))
    q = one / (one + e)
    return select(s >= 0, q, e * q)


@part
def _sigmoid_block(xb, yb, taus, o, noise_mode, z):
    """``yb = sigmoid((xb + z) * (1 / tau))``, ``z`` the block's noise or
    none (``noise_mode`` 2) and ``tau`` one value or ``taus[o:]`` per element."""
    wide_vectors()
    n = xb.size
    one = xb.dtype.type(1)
    if taus.size == 1:
        f = one / taus[0]
        if noise_mode == 2:
            for i in range(n):
                yb[i] = sigmoid(xb[i] * f, one)
        else:
            for i in range(n):
                yb[i] = sigmoid((xb[i] + z[i]) * f, one)
    else:
        tb = taus[o : o + n]
        if noise_mode == 2:
            for i in range(n):
                yb[i] = sigmoid(xb[i] * (one / tb[i]), one)
        else:
            for i in range(n):
                yb[i] = sigmoid((xb[i] + z[i]) * (one / tb[i]), one)


@row_kernel
def binary_concrete_fwd(r0, r1, x, out, k, k0, k1, row_ids, taus, noise_mode, noise, out_soft, gate, lo, hi):
    """The binary Concrete sample of rows ``r0 <= r < r1``: ``y =
    sigmoid((x + L) * (1 / tau))`` with ``L`` drawn from the key (``noise_mode``
    ``NOISE_DRAW``, draw 0), read from ``noise`` (``NOISE_ARRAY``) or 0
    (``NOISE_NONE``), ``tau`` one value or one per element.  ``gate``
    (:data:`GATE_SOFT` ...): ``out = y``, ``out = (y > 1/2)`` (NaN for NaN),
    or ``out = clip(y (hi - lo) + lo, 0, 1)``; in the last two ``y`` goes to
    ``out_soft`` when that is not empty."""
    wide_vectors()
    o = r0 * k
    n = (r1 - r0) * k
    xb = x[o : o + n]
    ob = out[o : o + n]
    if noise_mode == 0:
        z = np.empty(n, x.dtype)
        block_logistic(z, r0, r1, k, k0, k1, np.uint64(0), row_ids)
    elif noise_mode == 1:
        z = noise[o : o + n]
    else:
        z = xb
    if gate == GATE_SOFT:
        _sigmoid_block(xb, ob, taus, o, noise_mode, z)
        return
    yb = out_soft[o : o + n] if out_soft.size > 0 else np.empty(n, x.dtype)
    _sigmoid_block(xb, yb, taus, o, noise_mode, z)
    zero, one = x.dtype.type(0), x.dtype.type(1)
    if gate == GATE_HARD:
        half = x.dtype.type(0.5)
        for i in range(n):
            y = yb[i]
            ob[i] = select(y != y, y, select(y > half, one, zero))
    else:
        w = x.dtype.type(hi - lo)
        b = x.dtype.type(lo)
        for i in range(n):
            v = yb[i] * w + b
            ob[i] = select(v < zero, zero, select(v > one, one, v))


@row_kernel
def binary_concrete_bwd(r0, r1, g, y, out, k, taus, dtaus, gate, lo, hi):
    """VJP of ``y = sigmoid(s)``, ``s = (x + L) / tau``, from ``y``: ``out =
    g y (1 - y) / tau``, times ``(hi - lo)`` inside the gate's open interval
    ``0 < y (hi - lo) + lo < 1`` and 0 outside it when ``gate`` is
    :data:`GATE_CLIP`; when ``dtaus`` is not empty, ``dtaus = -out s`` with
    ``s = log(y) - log(1 - y)`` (0 where ``y (1 - y)`` is 0: a saturated
    sample has no gradient)."""
    wide_vectors()
    o = r0 * k
    n = (r1 - r0) * k
    gb = g[o : o + n]
    yb = y[o : o + n]
    ob = out[o : o + n]
    one, zero = y.dtype.type(1), y.dtype.type(0)
    w = y.dtype.type(hi - lo)
    b = y.dtype.type(lo)
    clip = gate == GATE_CLIP
    wc = select(clip, w, one)
    if taus.size == 1:
        t = taus[0]
        for i in range(n):
            yi = yb[i]
            v = yi * w + b
            inside = (v > zero) & (v < one)
            c = select(clip, select(inside, wc, zero), one)
            ob[i] = gb[i] * c * (yi * (one - yi)) / t
    else:
        tb = taus[o : o + n]
        for i in range(n):
            yi = yb[i]
            v = yi * w + b
            inside = (v > zero) & (v < one)
            c = select(clip, select(inside, wc, zero), one)
            ob[i] = gb[i] * c * (yi * (one - yi)) / tb[i]
    if dtaus.size > 0:
        db = dtaus[o : o + n]
        for i in range(n):
            yi = yb[i]
            d = yi * (one - yi)
            s = vlog(yi) - vlog(one - yi)
            db[i] = select(d == zero, zero, -(ob[i] * s))


@helper
def _l0_shift(lo, hi):
    """``log(-lo / hi)``, the shift of the logits in the hard concrete's
    ``P(gate != 0)``, in float64."""
    return np.log(-lo / hi)


@row_kernel
def hard_concrete_l0_fwd(r0, r1, x, out, k, taus, lo, hi):
    """``out = sigmoid(x - tau log(-lo / hi))``: the probability that the
    hard-concrete gate is not 0."""
    wide_vectors()
    o = r0 * k
    n = (r1 - r0) * k
    xb = x[o : o + n]
    ob = out[o : o + n]
    one = x.dtype.type(1)
    c = x.dtype.type(_l0_shift(lo, hi))
    if taus.size == 1:
        tc = taus[0] * c
        for i in range(n):
            ob[i] = sigmoid(xb[i] - tc, one)
    else:
        tb = taus[o : o + n]
        for i in range(n):
            ob[i] = sigmoid(xb[i] - tb[i] * c, one)


@row_kernel
def hard_concrete_l0_bwd(r0, r1, g, x, out, k, taus, dtaus, lo, hi):
    """VJP of :func:`hard_concrete_l0_fwd`: with ``a = x - tau c``, ``c =
    log(-lo / hi)``, ``out = g p (1 - p)`` computed as ``g e / (1 + e)**2``,
    ``e = exp(-|a|)`` (no cancellation in ``1 - p``), and ``dtaus = -c out``."""
    wide_vectors()
    o = r0 * k
    n = (r1 - r0) * k
    gb = g[o : o + n]
    xb = x[o : o + n]
    ob = out[o : o + n]
    one = x.dtype.type(1)
    c = x.dtype.type(_l0_shift(lo, hi))
    if taus.size == 1:
        tc = taus[0] * c
        for i in range(n):
            e = vexp(-abs(xb[i] - tc))
            ob[i] = gb[i] * (e / ((one + e) * (one + e)))
    else:
        tb = taus[o : o + n]
        for i in range(n):
            e = vexp(-abs(xb[i] - tb[i] * c))
            ob[i] = gb[i] * (e / ((one + e) * (one + e)))
    if dtaus.size > 0:
        db = dtaus[o : o + n]
        for i in range(n):
            db[i] = -(c * ob[i])
