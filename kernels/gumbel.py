"""Numba kernels of the Gumbel family: noise, Gumbel-Softmax, Gumbel-Max.

Twin of ``gumbel.cu``.  Noise comes from the Philox stream of ``philox.py`` (element
``j`` of row id ``rid`` at draw ``d``), so a value never depends on the block,
chunk or thread that computes it.  Each row is done in two loops: the Philox
words of the row go to a small scratch buffer that stays in L1, then one flat
loop turns them into noise and consumes it.  Both loops vectorise; the fused
single loop, with its four interleaved outputs per Philox block, did not and
ran 14x slower (364 ms against 26 ms for 2**24 float32 values, one thread).
"""

from __future__ import annotations

import numba
import numpy as np
from numba.extending import overload

from ._jit import helper, row_kernel, select
from ._vmath import vlog
from .softmax import exp_inplace, row_dot, row_max, row_sum, shift_rows
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
    for b in range(nblocks):
        w0, w1, w2, w3 = philox4x32_10(np.uint64(b), draw, rlo, rhi, k0, k1)
        j = o + 4 * b
        words[j] = np.uint32(w0)
        words[j + 1] = np.uint32(w1)
        words[j + 2] = np.uint32(w2)
        words[j + 3] = np.uint32(w3)


@helper
def philox_words_f64(words, o, n, k0, k1, draw, rid):
    """``words[o + j]`` = the 64 Philox bits of float64 element ``j < n`` of row
    ``rid``; up to 1 word past the row is overwritten."""
    rlo = np.uint64(rid) & _LO32
    rhi = np.uint64(rid) >> _U32
    nblocks = (n + 1) // 2
    for b in range(nblocks):
        w0, w1, w2, w3 = philox4x32_10(np.uint64(b), draw, rlo, rhi, k0, k1)
        words[o + 2 * b] = (w0 << _U32) | w1
        words[o + 2 * b + 1] = (w2 << _U32) | w3


@helper
def gumbel_f32(word):
    """Float32 Gumbel noise from one Philox word."""
    return -vlog(-vlog(uniform_f32(np.uint64(word))))


@helper
def gumbel_f64(word):
    """Float64 Gumbel noise from 64 Philox bits."""
    return -vlog(-vlog(uniform_f64(word >> _U32, word & _LO32)))


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


@overload(word_scratch, jit_options={"error_model": "numpy"}, inline="always")
def _word_scratch_impl(like, n):
    if like.dtype == numba.float32:
        return lambda like, n: np.empty(n + 3, np.uint32)
    if like.dtype == numba.float64:
        return lambda like, n: np.empty(n + 1, np.uint64)
    return None


@overload(philox_words, jit_options={"error_model": "numpy"}, inline="always")
def _philox_words_impl(words, o, n, k0, k1, draw, rid):
    if words.dtype == numba.uint32:
        return philox_words_f32.py_func
    if words.dtype == numba.uint64:
        return philox_words_f64.py_func
    return None


@overload(gumbel_of, jit_options={"error_model": "numpy"}, inline="always")
def _gumbel_of_impl(word):
    if word == numba.uint32:
        return gumbel_f32.py_func
    if word == numba.uint64:
        return gumbel_f64.py_func
    return None


@helper
def row_id(row_ids, r):
    """The stream id of row ``r``: ``row_ids[r]``, or ``r`` when none are given."""
    return row_ids[r] if row_ids.size > 0 else np.int64(r)


@helper
def block_words(words, r0, r1, k, k0, k1, draw, row_ids):
    """Philox words of rows ``r0 <= r < r1`` into ``words[(r - r0) * k + j]``.

    Rows are written in order, so the padding one row's last Philox block
    writes past its end is overwritten by the next row."""
    for r in range(r0, r1):
        philox_words(words, (r - r0) * k, k, k0, k1, draw, row_id(row_ids, r))


@helper
def add_block_noise(z, o, n, words):
    """``z[o + i] += gumbel(words[i])`` for ``i < n``: one flat, vectorised loop."""
    for i in range(n):
        z[o + i] += gumbel_of(words[i])


@helper
def tau_of(tau, r):
    """Row ``r``'s temperature: ``tau`` holds one value per row, or one for all."""
    return tau[min(r, tau.size - 1)]


@row_kernel
def gumbel_fwd(r0, r1, out, k, k0, k1, draw, row_ids):
    """Standard Gumbel noise of rows ``r0 <= r < r1`` into ``out`` (flat, rows x k)."""
    n = (r1 - r0) * k
    words = word_scratch(out, n)
    block_words(words, r0, r1, k, k0, k1, draw, row_ids)
    for i in range(n):
        out[r0 * k + i] = gumbel_of(words[i])


@row_kernel
def gumbel_softmax_fwd(r0, r1, x, out, k, k0, k1, row_ids, tau, noise_mode, noise, out_soft, hard):
    """Gumbel-Softmax of rows ``r0 <= r < r1``.

    ``z = (x - max x) + G``, ``y = softmax(z / tau)`` computed as
    ``exp((z - max z) / tau) / sum``.  ``noise_mode``: 0 draws ``G`` from
    the key (draw index 0), 1 reads it from ``noise``, 2 uses no noise.  With
    ``hard`` the output is the one-hot of the lowest index of ``max y`` (a NaN
    row for a NaN row) and ``y`` goes to ``out_soft`` when that is not empty.
    """
    b0 = r0 * k
    n = (r1 - r0) * k
    maxima = np.empty(r1 - r0, x.dtype)
    shift_rows(x, out, r0, r1, k, maxima)
    if noise_mode == 0:
        words = word_scratch(out, n)
        block_words(words, r0, r1, k, k0, k1, np.uint64(0), row_ids)
        add_block_noise(out, b0, n, words)
    elif noise_mode == 1:
        for i in range(b0, b0 + n):
            out[i] += noise[i]
    for r in range(r0, r1):
        o = r * k
        mz = row_max(out, o, k)
        t = tau_of(tau, r)
        for j in range(o, o + k):
            out[j] = (out[j] - mz) / t
    exp_inplace(out, b0, b0 + n)
    for r in range(r0, r1):
        o = r * k
        c = out.dtype.type(1) / row_sum(out, o, k)
        for j in range(o, o + k):
            out[j] *= c
        if hard:
            if out_soft.size > 0:
                for j in range(o, o + k):
                    out_soft[j] = out[j]
            my = row_max(out, o, k)
            a = first_index_of(out, o, k, my)
            fill = my - my
            for j in range(o, o + k):
                out[j] = fill
            if a < k:
                out[o + a] = fill + 1


@helper
def first_index_of(z, o, k, v):
    """Lowest ``j < k`` with ``z[o + j] == v``, or ``k`` if none (``v`` NaN)."""
    a = k
    for j in range(k):
        a = min(a, select(z[o + j] == v, np.int64(j), np.int64(k)))
    return a


@row_kernel
def gumbel_softmax_bwd(r0, r1, g, y, out, k, tau, dtau):
    """VJP of ``softmax(z / tau)``: ``out = y (g - <g, y>) / tau`` and, when
    ``dtau`` is not empty, ``dtau[r] = -sum_j out_j log(y_j)`` (terms with
    ``y_j == 0`` count 0: ``y log y -> 0``)."""
    terms = np.empty(k if dtau.size > 0 else 0, y.dtype)
    for r in range(r0, r1):
        o = r * k
        d = row_dot(g, y, o, k)
        t = tau_of(tau, r)
        for j in range(o, o + k):
            out[j] = y[j] * (g[j] - d) / t
        if dtau.size > 0:
            for j in range(k):
                yj = y[o + j]
                terms[j] = select(yj == 0, yj - yj, out[o + j] * vlog(yj))
            dtau[r] = -row_sum(terms, 0, k)


@row_kernel
def categorical_fwd(r0, r1, x, out, k, s, k0, k1, row_ids):
    """Gumbel-Max: ``out[r * s + d]`` = lowest index of ``max_j (x_j - max x)
    + G(j, draw d)`` for ``d < s``; -1 for a row whose maximum is NaN or
    infinite (nothing valid to draw)."""
    b0 = r0 * k
    n = (r1 - r0) * k
    shifted = np.empty(n, x.dtype)
    z = np.empty(n, x.dtype)
    maxima = np.empty(r1 - r0, x.dtype)
    shift_rows(x[b0 : b0 + n], shifted, 0, r1 - r0, k, maxima)
    words = word_scratch(x, n)
    for d in range(s):
        block_words(words, r0, r1, k, k0, k1, np.uint64(d), row_ids)
        z[:] = shifted
        add_block_noise(z, 0, n, words)
        for r in range(r0, r1):
            o = (r - r0) * k
            m = maxima[r - r0]
            valid = np.isfinite(m)
            out[r * s + d] = first_index_of(z, o, k, row_max(z, o, k)) if valid else -1
