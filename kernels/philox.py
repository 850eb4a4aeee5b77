"""Philox4x32-10 counter-based generator and the open-interval uniform maps.

Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as 1, 2, 3",
SC'11.  Twin of ``philox.cuh``; both are checked against the Random123
known-answer vectors.

Every word is held in a ``uint64`` whose high half is zero, so that the
32x32->64-bit products compile to one vectorisable ``vpmuludq`` each and no
operand is ever promoted to float64 (Numba promotes ``uint64 op int64``).

Stream mapping, version 1 (``gumbel_np.STREAM_VERSION``):

* key ``(k0, k1)``: two 32-bit words derived from ``rng``;
* element ``j`` of the row with id ``rid`` (int64, taken as two's complement)
  at draw index ``d``: counter ``(j // W, d, rid & 0xffffffff, rid >> 32)``,
  where ``W`` = 4 for float32 and 2 for float64;
* float32 uses word ``j % 4`` of the block: ``u = (1 | (w >> 8)) * 2**-24``;
* float64 uses words ``(2i, 2i + 1)`` for ``i = j % 2``:
  ``x = (w[2i] << 32) | w[2i + 1]``, ``u = (1 | (x >> 11)) * 2**-53``.

Uniforms therefore lie in ``[2**-24, 1 - 2**-24]`` (float32) and
``[2**-53, 1 - 2**-53]`` (float64) and never equal 0 or 1.
"""

from __future__ import annotations

import numpy as np

from ._jit import helper

PHILOX_M0 = np.uint64(0xD2511F53)
PHILOX_M1 = np.uint64(0xCD9E8D57)
PHILOX_W0 = np.uint64(0x9E3779B9)
PHILOX_W1 = np.uint64(0xBB67AE85)
_LO32 = np.uint64(0xFFFFFFFF)
_U32 = np.uint64(32)
_U8 = np.uint64(8)
_U11 = np.uint64(11)
_U1 = np.uint64(1)
_F32_2M24 = np.float32(2.0**-24)
_F64_2M53 = 2.0**-53


@helper
def philox_rounds(c0, c1, c2, c3, k0, k1, rounds):
    """Philox4x32 with ``rounds`` rounds of counter ``(c0..c3)`` under key ``(k0, k1)``.

    All arguments and results are ``uint64`` holding 32-bit words.
    """
    # Masking the words tells LLVM their high halves are zero, so the first
    # rounds' products compile to ``vpmuludq`` (one micro-op) rather than the
    # full 64-bit ``vpmullq`` (three); later rounds already know it.
    c0, c1, c2, c3 = c0 & _LO32, c1 & _LO32, c2 & _LO32, c3 & _LO32
    k0, k1 = k0 & _LO32, k1 & _LO32
    for _ in range(rounds):
        p0 = PHILOX_M0 * c0
        p1 = PHILOX_M1 * c2
        c0, c1, c2, c3 = (p1 >> _U32) ^ c1 ^ k0, p1 & _LO32, (p0 >> _U32) ^ c3 ^ k1, p0 & _LO32
        k0 = (k0 + PHILOX_W0) & _LO32
        k1 = (k1 + PHILOX_W1) & _LO32
    return c0, c1, c2, c3


@helper
def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10: the generator of every stream."""
    return philox_rounds(c0, c1, c2, c3, k0, k1, 10)


@helper
def uniform_f32(w):
    """Open-interval float32 uniform from one 32-bit word."""
    return np.float32(np.int32((w >> _U8) | _U1)) * _F32_2M24


@helper
def uniform_f64(hi, lo):
    """Open-interval float64 uniform from two 32-bit words (``hi`` first)."""
    x = (hi << _U32) | lo
    return np.float64(np.int64((x >> _U11) | _U1)) * _F64_2M53


@helper
def philox_block_array(ctr, key, rounds, out):
    """``out[i] = philox(ctr[i], key)``: the known-answer test entry point."""
    for i in range(ctr.shape[0]):
        out[i, 0], out[i, 1], out[i, 2], out[i, 3] = philox_rounds(
            ctr[i, 0], ctr[i, 1], ctr[i, 2], ctr[i, 3], key[0], key[1], rounds
        )


@helper
def uniform_f32_array(words, out):
    for i in range(words.size):
        out[i] = uniform_f32(words[i])


@helper
def uniform_f64_array(hi, lo, out):
    for i in range(hi.size):
        out[i] = uniform_f64(hi[i], lo[i])
