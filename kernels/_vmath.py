"""Vectorisable exp and log for the CPU kernels.

Numba lowers ``math.exp``/``math.log`` to scalar libm calls, which LLVM cannot
vectorise (the PyPI build has no SVML): measured 7-10x slower than the
branch-free polynomials below, which compile to straight-line AVX-512 code.

Error bounds, checked by ``tests/test_vmath.py`` against the float64 (or
correctly rounded float64 libm) reference over the whole domain, denormals,
0, +-inf and NaN included:

* ``vexp``: float32 within 2 ulp, float64 within 2 ulp.
* ``vlog``: float32 within 2 ulp, float64 within 2 ulp.
* ``vexp_term``: exp of a non-positive argument as a term of a sum whose
  largest term is 1 (logsumexp, log_softmax): within 2 ulp above -87
  (float32; 1.053 ulp at most over every float32 in ``(-87, 0]``) or -708
  (float64).  At and below those, and for ``-inf`` and NaN, the argument is
  clamped, so the result is ``e**-87`` (``e**-708``), under ``2**-125``
  (``2**-1021``): K such terms move a sum of at least 1 by less than
  ``K 2**-125`` of it, which rounds away for any K below ``2**100``.  Unlike
  ``vexp`` it has no overflow clamp, no two-factor scaling and no NaN
  pass-through: the callers take NaN and infinities from the row maximum.
  13 vector operations per 16 values (read off the assembly).
* ``vexp_shifted``: exp of a value less its row maximum (softmax; in
  Gumbel-Softmax times ``1 / tau``): a non-positive argument, NaN or
  ``-inf``.  Within 2 ulp where the result is normal, subnormal results
  rounded once, 0 at and below -104 (float32) or -746 (float64), where the
  true value rounds to 0, and 0 for ``-inf`` and NaN.  A NaN argument only
  occurs in a row whose maximum is NaN or infinite (``1 / tau`` is finite:
  the public layer rejects a ``tau`` whose reciprocal overflows), and there
  every term is NaN or ``-inf``, so the row sum is 0 and the normalised row
  ``0 * (1 / 0)`` is NaN, as it should be.  No overflow clamp and one factor
  ``2**-64`` instead of two: 14 vector operations per 16 values against
  ``vexp``'s 22.

exp: Cody-Waite reduction ``x = n ln2 + r`` with ``|r| <= ln2 / 2`` and a
polynomial for ``e**r`` (float32: the minimax polynomial of degree 6 for the
relative error, 2.0e-9 before its coefficients are rounded, by Horner's rule;
exhaustively over every float32 in ``[-87, 0]`` within 1.053 ulp; float64:
Taylor series to degree 13, truncation below 2**-58).  ``n`` is read off the
bits of ``x log2(e) + 1.5 * 2**23``, rounded (no float-to-integer
conversion).  ``2**n`` is applied as two factors ``2**(n//2) * 2**(n -
n//2)``, so results that overflow become inf and results in the subnormal
range are rounded once; ``vexp_term`` adds ``n`` to the exponent field.

log: the fdlibm/musl reduction ``x = 2**k (1 + f)`` with ``sqrt(2)/2 <= 1 + f
< sqrt(2)``, then, for float32, ``log(1 + f) = f + f**2 (f P(f) - 1/2)`` with
the Cephes ``logf`` minimax ``P`` of degree 8 and ``k ln2`` added by one fused
multiply-add (no division: ``vdivps`` is the slowest vector instruction on
these cores; exhaustively over ``[0.25, 4)`` the result is within 0.91 ulp,
and so on every 7th float32 from ``2**-126`` to ``2**100``), and for float64
``s = f / (2 + f)``, ``log(1 + f) = f - f**2/2 + s (f**2/2 + R(s**2))`` with
the fdlibm minimax ``R``; subnormal inputs are scaled into the normal range
first.

Every polynomial step is an explicit :func:`~._jit.fma`, the only fused
operations in the kernels.
"""

from __future__ import annotations

import numba
import numpy as np

from ._jit import by_type, f32_as_i32, f64_as_i64, fma, helper, i32_as_f32, i64_as_f64, select

_f32 = np.float32
_F32_INF = _f32(np.inf)
_F32_NAN = _f32(np.nan)
_F32_EXP_HI = _f32(89.0)
_F32_EXP_LO = _f32(-110.0)
_F32_LOG2E = _f32(1.44269504088896341)
_F32_ROUND = _f32(12582912.0)  # 1.5 * 2**23: adding it rounds to an integer
_F32_C1 = _f32(0.693359375)
_F32_C2 = _f32(-2.12194440e-4)
_F32_ROUND_BITS = np.int32(0x4B400000)  # the bits of _F32_ROUND
# e**r = 1 + r (1 + r (E2 + r (E3 + ...))) on |r| <= ln2 / 2: the minimax
# (relative error) polynomial of degree 6, 2.0e-9 before rounding the
# coefficients to float32.
_F32_E2 = _f32(0.4999999403953552)
_F32_E3 = _f32(0.16666430234909058)
_F32_E4 = _f32(0.04166800528764725)
_F32_E5 = _f32(0.008374195545911789)
_F32_E6 = _f32(0.0013843607157468796)
_F32_ONE = _f32(1.0)
_F32_HALF = _f32(0.5)
_F32_MIN_NORMAL = _f32(np.finfo(np.float32).tiny)
_F32_2P25 = _f32(2.0**25)
_F32_LN2 = _f32(0.69314718055994531)
_F32_L0 = _f32(3.3333331174e-1)
_F32_L1 = _f32(-2.4999993993e-1)
_F32_L2 = _f32(2.0000714765e-1)
_F32_L3 = _f32(-1.6668057665e-1)
_F32_L4 = _f32(1.4249322787e-1)
_F32_L5 = _f32(-1.2420140846e-1)
_F32_L6 = _f32(1.1676998740e-1)
_F32_L7 = _f32(-1.1514610310e-1)
_F32_L8 = _f32(7.0376836292e-2)

_F32_TERM_MIN = _f32(-87.0)
_F32_SHIFTED_MIN = _f32(-104.0)
_F32_2P64 = _f32(2.0**64)
_F32_2M64 = _f32(2.0**-64)

_F64_EXP_HI = 710.0
_F64_EXP_LO = -746.0
_F64_LOG2E = 1.4426950408889634
_F64_ROUND = 6755399441055744.0  # 1.5 * 2**52
_F64_ROUND_BITS = np.int64(0x4338000000000000)  # the bits of _F64_ROUND
_F64_TERM_MIN = -708.0
_F64_SHIFTED_MIN = -746.0
_F64_LN2_HI = 6.93147180369123816490e-01
_F64_LN2_LO = 1.90821492927058770002e-10
_F64_MIN_NORMAL = float(np.finfo(np.float64).tiny)
_F64_2P54 = 2.0**54
_F64_LG1 = 6.666666666666735130e-01
_F64_LG2 = 3.999999999940941908e-01
_F64_LG3 = 2.857142874366239149e-01
_F64_LG4 = 2.222219843214978396e-01
_F64_LG5 = 1.818357216161805012e-01
_F64_LG6 = 1.531383769920937332e-01
_F64_LG7 = 1.479819860511658591e-01
_F64_TAYLOR = tuple(1.0 / float(np.prod(np.arange(1, k + 1, dtype=np.float64))) for k in range(14))
(_T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7, _T8, _T9, _T10, _T11, _T12, _T13) = _F64_TAYLOR


@helper
def exp_f32(x):
    xc = select(x < _F32_EXP_HI, x, _F32_EXP_HI)
    xc = select(xc > _F32_EXP_LO, xc, _F32_EXP_LO)
    p, t = _exp_poly_f32(xc, _F32_ONE)
    ni = np.int32(f32_as_i32(t) - _F32_ROUND_BITS)
    n1 = ni >> 1
    s1 = i32_as_f32(np.int32((n1 + 127) << 23))
    s2 = i32_as_f32(np.int32((ni - n1 + 127) << 23))
    y = p * s1 * s2
    return select(x == x, y, x)


@helper
def exp_f64(x):
    xc = select(x < _F64_EXP_HI, x, _F64_EXP_HI)
    xc = select(xc > _F64_EXP_LO, xc, _F64_EXP_LO)
    p, t = _exp_poly_f64(xc, 1.0)
    ni = f64_as_i64(t) - _F64_ROUND_BITS
    n1 = ni >> 1
    s1 = i64_as_f64((n1 + 1023) << 52)
    s2 = i64_as_f64((ni - n1 + 1023) << 52)
    y = p * s1 * s2
    return select(x == x, y, x)


@helper
def _exp_poly_f32(xc, s):
    """``(s e**r, t)`` with ``xc = n ln2 + r``, ``|r| <= ln2 / 2``, and ``t`` the
    float32 ``1.5 * 2**23 + n``, whose bits are ``_F32_ROUND_BITS + n`` (no
    float-to-integer conversion is needed for ``n``).  ``s`` is a constant
    power of two: the coefficients times ``s`` fold at compile time, and every
    step rounds as for ``s = 1``."""
    t = fma(xc, _F32_LOG2E, _F32_ROUND)
    n = t - _F32_ROUND
    r = fma(-n, _F32_C2, fma(-n, _F32_C1, xc))
    p = fma(_F32_E6 * s, r, _F32_E5 * s)
    p = fma(p, r, _F32_E4 * s)
    p = fma(p, r, _F32_E3 * s)
    p = fma(p, r, _F32_E2 * s)
    p = fma(p, r, s)
    return fma(p, r, s), t


@helper
def _exp_poly_f64(xc, s):
    """``(s e**r, t)`` with ``xc = n ln2 + r``, ``|r| <= ln2 / 2``, and ``t`` the
    float64 ``1.5 * 2**52 + n`` (bits ``_F64_ROUND_BITS + n``); ``s`` as for
    :func:`_exp_poly_f32`."""
    t = fma(xc, _F64_LOG2E, _F64_ROUND)
    n = t - _F64_ROUND
    r = fma(-n, _F64_LN2_LO, fma(-n, _F64_LN2_HI, xc))
    p = fma(_T13 * s, r, _T12 * s)
    p = fma(p, r, _T11 * s)
    p = fma(p, r, _T10 * s)
    p = fma(p, r, _T9 * s)
    p = fma(p, r, _T8 * s)
    p = fma(p, r, _T7 * s)
    p = fma(p, r, _T6 * s)
    p = fma(p, r, _T5 * s)
    p = fma(p, r, _T4 * s)
    p = fma(p, r, _T3 * s)
    p = fma(p, r, _T2 * s)
    p = fma(p, r, _T1 * s)
    return fma(p, r, _T0 * s), t


@helper
def _times_2n_f32(p, t):
    """``p * 2**n`` for the ``t`` of :func:`_exp_poly_f32`, by adding ``n`` to
    the exponent field of ``p``: ``bits(t) << 23`` is ``n << 23``, since the
    bits of ``1.5 * 2**23`` end in 23 zeros.  The caller keeps the result
    normal."""
    return i32_as_f32(np.int32(f32_as_i32(p) + np.int32(f32_as_i32(t) << 23)))


@helper
def _times_2n_f64(p, t):
    """Float64 twin of :func:`_times_2n_f32` (52-bit shift)."""
    return i64_as_f64(f64_as_i64(p) + (f64_as_i64(t) << 52))


@helper
def exp_shifted_f32(x):
    # Clamped at -104, where the result rounds to 0.  2**n (n from -150 to 0)
    # goes into the exponent field of 2**64 e**r, which stays normal, and the
    # product with 2**-64 rounds once, into the subnormal range if need be.
    p, t = _exp_poly_f32(select(x > _F32_SHIFTED_MIN, x, _F32_SHIFTED_MIN), _F32_2P64)
    return _times_2n_f32(p, t) * _F32_2M64


@helper
def exp_shifted_f64(x):
    p, t = _exp_poly_f64(select(x > _F64_SHIFTED_MIN, x, _F64_SHIFTED_MIN), 2.0**64)
    return _times_2n_f64(p, t) * 2.0**-64


@helper
def exp_term_f32(x):
    # Clamped at -87, n >= -126 and e**r * 2**n is normal.
    p, t = _exp_poly_f32(select(x > _F32_TERM_MIN, x, _F32_TERM_MIN), _F32_ONE)
    return _times_2n_f32(p, t)


@helper
def exp_term_f64(x):
    p, t = _exp_poly_f64(select(x > _F64_TERM_MIN, x, _F64_TERM_MIN), 1.0)
    return _times_2n_f64(p, t)


@helper
def _log_core_f32(xs, kbias):
    """log of a positive, finite, normal float32 ``xs``, less ``(kbias - 0x7F) ln2``."""
    # Every integer result is truncated to int32 at once (Numba widens int32
    # arithmetic to int64), so LLVM keeps 16 lanes per vector.
    ix = np.int32(f32_as_i32(xs) + (0x3F800000 - 0x3F3504F3))
    k = np.int32((ix >> 23) - kbias)
    m = i32_as_f32(np.int32((ix & 0x007FFFFF) + 0x3F3504F3))
    f = m - _F32_ONE
    z = f * f
    # P by Estrin's scheme (dependency depth 4, against 8 for Horner): the
    # Gumbel transform, two of these logs in series per value, is bound by
    # latency; 0.87 against 1.02 ns per float32 value, one thread.
    z2 = z * z
    p78 = fma(_F32_L8, f, _F32_L7)
    p56 = fma(_F32_L6, f, _F32_L5)
    p34 = fma(_F32_L4, f, _F32_L3)
    p12 = fma(_F32_L2, f, _F32_L1)
    p = fma(fma(fma(p78, z, p56), z2, fma(p34, z, p12)), f, _F32_L0)
    # log(1 + f) = f + z (-1/2 + f p): three operations fewer than adding the
    # -z/2 term and a two-part ln2 separately; one rounded ln2 is enough,
    # since |k| ln2 dominates the result wherever k != 0.
    q = fma(f, p, -_F32_HALF)
    return fma(np.float32(k), _F32_LN2, fma(z, q, f))


@helper
def log_f32(x):
    tiny = x < _F32_MIN_NORMAL
    y = _log_core_f32(select(tiny, x * _F32_2P25, x), select(tiny, np.int32(0x7F + 25), np.int32(0x7F)))
    y = select(x < _F32_INF, y, x)
    return select(x > 0, y, select(x == 0, -_F32_INF, _F32_NAN))


@helper
def log_pos_f32(x):
    """log of a float32 known to be positive, finite and normal (no special cases)."""
    return _log_core_f32(x, np.int32(0x7F))


@helper
def _log_core_f64(xs, kbias):
    """log of a positive, finite, normal float64 ``xs``, less ``(kbias - 0x3FF) ln2``."""
    u = f64_as_i64(xs)
    hx = (u >> 32) + (0x3FF00000 - 0x3FE6A09E)
    k = (hx >> 20) - kbias
    hx = (hx & 0x000FFFFF) + 0x3FE6A09E
    m = i64_as_f64((hx << 32) | (u & 0xFFFFFFFF))
    f = m - 1.0
    hfsq = 0.5 * f * f
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_F64_LG2 + w * (_F64_LG4 + w * _F64_LG6))
    t2 = z * (_F64_LG1 + w * (_F64_LG3 + w * (_F64_LG5 + w * _F64_LG7)))
    dk = np.float64(k)
    return s * (hfsq + t1 + t2) + dk * _F64_LN2_LO - hfsq + f + dk * _F64_LN2_HI


@helper
def log_f64(x):
    tiny = x < _F64_MIN_NORMAL
    y = _log_core_f64(select(tiny, x * _F64_2P54, x), select(tiny, np.int64(0x3FF + 54), np.int64(0x3FF)))
    y = select(x < np.inf, y, x)
    return select(x > 0, y, select(x == 0, -np.inf, np.nan))


@helper
def log_pos_f64(x):
    """log of a float64 known to be positive, finite and normal (no special cases)."""
    return _log_core_f64(x, np.int64(0x3FF))


def vexp(x):
    """Vectorisable ``exp`` for float32 and float64 scalars (kernels only)."""
    raise NotImplementedError("vexp runs inside compiled kernels only")


def vexp_term(x):
    """``exp`` of a non-positive float32/float64 as a term of a sum (kernels only)."""
    raise NotImplementedError("vexp_term runs inside compiled kernels only")


def vexp_shifted(x):
    """``exp`` of a float32/float64 less its row maximum (kernels only)."""
    raise NotImplementedError("vexp_shifted runs inside compiled kernels only")


def vlog(x):
    """Vectorisable ``log`` for float32 and float64 scalars (kernels only)."""
    raise NotImplementedError("vlog runs inside compiled kernels only")


def vlog_pos(x):
    """``vlog`` for arguments known to be positive, finite and normal (kernels only)."""
    raise NotImplementedError("vlog_pos runs inside compiled kernels only")


by_type(vexp, {numba.float32: exp_f32, numba.float64: exp_f64})
by_type(vexp_term, {numba.float32: exp_term_f32, numba.float64: exp_term_f64})
by_type(vexp_shifted, {numba.float32: exp_shifted_f32, numba.float64: exp_shifted_f64})
by_type(vlog, {numba.float32: log_f32, numba.float64: log_f64})
by_type(vlog_pos, {numba.float32: log_pos_f32, numba.float64: log_pos_f64})


@helper
def log1p_nonneg(x, one):
    """``log(1 + x)`` for ``x >= 0`` (``+inf`` included) to a few ulp; ``one``
    is 1 in ``x``'s dtype.  ``log(w) * x / (w - 1)`` with ``w = 1 + x``
    rounded: the quotient undoes the rounding of ``w``; ``x`` itself where
    ``w`` rounds to 1, and ``log(w)`` where ``w - 1`` is exact (there the
    quotient is 1, and ``x = inf`` gives ``inf``)."""
    w = x + one
    lg = vlog(w)
    d = w - one
    return select(d == x, lg, select(w == one, x, lg * (x / d)))


@helper
def vexp_array(x, out):
    """``out[i] = exp(x[i])``; the test and benchmark entry point."""
    for i in range(x.size):
        out[i] = vexp(x[i])


@helper
def vexp_term_array(x, out):
    """``out[i] = exp_term(x[i])``; the test entry point."""
    for i in range(x.size):
        out[i] = vexp_term(x[i])


@helper
def vexp_shifted_array(x, out):
    """``out[i] = exp_shifted(x[i])``; the test entry point."""
    for i in range(x.size):
        out[i] = vexp_shifted(x[i])


@helper
def vlog_array(x, out):
    """``out[i] = log(x[i])``; the test and benchmark entry point."""
    for i in range(x.size):
        out[i] = vlog(x[i])
