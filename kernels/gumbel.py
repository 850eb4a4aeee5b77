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

from ._jit import helper, row_kernel
from ._vmath import vlog
from .philox import philox4x32_10, uniform_f32, uniform_f64

_LO32 = np.uint64(0xFFFFFFFF)
_U32 = np.uint64(32)


@helper
def philox_words_f32(words, n, k0, k1, draw, rid):
    """``words[j]`` = the Philox word of float32 element ``j < n`` of row ``rid``."""
    rlo = np.uint64(rid) & _LO32
    rhi = np.uint64(rid) >> _U32
    nblocks = (n + 3) // 4
    for b in range(nblocks):
        w0, w1, w2, w3 = philox4x32_10(np.uint64(b), draw, rlo, rhi, k0, k1)
        words[4 * b] = np.uint32(w0)
        words[4 * b + 1] = np.uint32(w1)
        words[4 * b + 2] = np.uint32(w2)
        words[4 * b + 3] = np.uint32(w3)


@helper
def philox_words_f64(words, n, k0, k1, draw, rid):
    """``words[j]`` = the 64 Philox bits of float64 element ``j < n`` of row ``rid``."""
    rlo = np.uint64(rid) & _LO32
    rhi = np.uint64(rid) >> _U32
    nblocks = (n + 1) // 2
    for b in range(nblocks):
        w0, w1, w2, w3 = philox4x32_10(np.uint64(b), draw, rlo, rhi, k0, k1)
        words[2 * b] = (w0 << _U32) | w1
        words[2 * b + 1] = (w2 << _U32) | w3


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


def philox_words(words, n, k0, k1, draw, rid):
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
def _philox_words_impl(words, n, k0, k1, draw, rid):
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


@row_kernel
def gumbel_fwd(r0, r1, out, k, k0, k1, draw, row_ids):
    """Standard Gumbel noise of rows ``r0 <= r < r1`` into ``out`` (flat, rows x k)."""
    words = word_scratch(out, k)
    for r in range(r0, r1):
        philox_words(words, k, k0, k1, draw, row_id(row_ids, r))
        o = r * k
        for j in range(k):
            out[o + j] = gumbel_of(words[j])
