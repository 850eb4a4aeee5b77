"""The binary (two-class) family: logistic noise, Bernoulli draws, the binary
Concrete (Gumbel-sigmoid) relaxation and the hard-concrete gate."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from ._ops import DEFAULT_LIMITS, OPS, run
from ._random import RNGLike
from ._validation import Array, shared_docs

__all__ = [
    "bernoulli",
    "gumbel_sigmoid",
    "gumbel_sigmoid_backward",
    "hard_concrete",
    "hard_concrete_backward",
    "hard_concrete_l0",
    "hard_concrete_l0_backward",
    "logistic",
]

_TAU_HC = 2.0 / 3.0


@shared_docs
def logistic(
    shape: int | tuple[int, ...],
    /,
    *,
    rng: RNGLike = None,
    dtype: DTypeLike = np.float32,
    axis: int = -1,
    row_ids: ArrayLike | None = None,
    like: Array | None = None,
    chunks: int | str | tuple | None = None,
    out: Array | None = None,
) -> Array:
    """Standard logistic noise ``log(u) - log1p(-u)`` from the counter-based stream.

    Parameters
    ----------
    shape : int or tuple of ints
        Output shape.
    rng : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Source of the key, as for :func:`gumbel`.
    dtype : {float32, float64, float16}, optional
        Output dtype; float16 noise is drawn in float32 and rounded.
    axis : int, optional
        The axis that indexes the stream within a row: element ``j`` along
        ``axis`` of a row is the noise that :func:`bernoulli`,
        :func:`gumbel_sigmoid` and :func:`hard_concrete` add to element
        ``j`` of the last axis of that row for the same ``rng`` and
        ``row_ids``.
    row_ids : array_like of int, optional
        Stream id of each row, of the batch shape (``shape`` without
        ``axis``).  Default: the row's flat position in the batch.
    like : ndarray or dask.array.Array, optional
        A CuPy array puts the noise on its device.  A Dask array gives a
        Dask array with chunks of its type (NumPy or CuPy), and its chunks
        when it has ``shape``.
    chunks : int, tuple, "auto" or dict, optional
        Make a lazy Dask array with these chunks, as :func:`gumbel` does.
    out : ndarray, optional
        Where to write the noise (see "Output arrays" in the README).

    Returns
    -------
    ndarray
        Noise of the given shape and dtype.

    Raises
    ------
    {common_raises}
    TypeError
        Bad ``rng``, ``dtype`` or ``like``; non-integer ``row_ids``.
    ValueError
        Negative shape entries, ``row_ids`` not of the batch shape.
    numpy.exceptions.AxisError
        ``axis`` out of range for ``shape``.

    Notes
    -----
    The uniforms are those of :func:`gumbel` (open interval, 24 or 53 bits)
    in the logistic stream domain: under one key the logistic and the Gumbel
    noise are independent.  ``1 - u`` is exact, so the noise is evaluated
    as ``log(u / (1 - u))``, the quotient rounded once (an absolute error
    below ``2**-24`` in float32 before the logarithm's own, within 2 ulp).
    The noise is antisymmetric in ``u`` and its
    representable range is float32 ``[-16.6355, 16.6355]`` (``u`` from
    ``2**-24`` to ``1 - 2**-24``) and float64 ``[-36.7368, 36.7368]``
    (``2**-53``): a logistic variable exceeds 16.6355 with probability
    ``6.0e-8`` and 36.7368 with ``1.1e-16``.

    Examples
    --------
    >>> import gumbel_np as gnp
    >>> gnp.logistic((2, 3), rng=0).shape
    (2, 3)
    """
    return run(OPS["logistic"], (shape,), axis, out, dtype=dtype, rng=rng, row_ids=row_ids, like=like, chunks=chunks)


@shared_docs
def bernoulli(
    logits: ArrayLike,
    /,
    *,
    rng: RNGLike = None,
    num_samples: int | None = None,
    axis: int = -1,
    row_ids: ArrayLike | None = None,
    out: Array | None = None,
) -> Array:
    """Exact Bernoulli(sigmoid(logits)) draws: ``logits + logistic(...) > 0``.

    Parameters
    ----------
    logits : array_like
        Log-odds, any shape; ``+inf`` is always True, ``-inf`` always False.
    rng : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Source of the key, as for :func:`gumbel`.
    num_samples : int, optional
        Draws per element, in a trailing axis (draw ``d`` is draw index
        ``d`` of the stream); default: one draw, no sample axis.
    axis : int, optional
        The axis that indexes the stream within a row (as the category axis
        does in :func:`gumbel_softmax`); default the last.
    row_ids : array_like of int, optional
        Stream id of each row, of the shape of ``logits`` without ``axis``.
    out : ndarray, optional
        A bool array of the result's shape (see "Output arrays" in the
        README).

    Returns
    -------
    ndarray of bool
        ``logits.shape`` (+ ``(num_samples,)``).

    Raises
    ------
    {common_raises}
    TypeError
        Complex, object or other non-real logits; bad ``rng``.
    ValueError
        A NaN logit (the message names its index); ``num_samples`` < 1 or
        above ``2**28``; ``row_ids`` not of the batch shape.
    numpy.exceptions.AxisError
        ``axis`` out of range.

    Notes
    -----
    The draw is ``logits + L > 0`` with ``L`` the :func:`logistic` noise of
    the same key, row id, element and draw, computed in the logits' dtype
    (float32 noise for float32 and float16 logits): the identity with
    ``logits + logistic(logits.shape, rng=rng, dtype=logits.dtype) > 0`` is
    exact, bit for bit, as the sum is the same rounded sum and its sign is
    the sign of the exact sum.  ``P(True) = sigmoid(logits)`` up to the
    resolution of the uniforms: within ``2**-23`` (float32) or ``2**-52``
    (float64); a float32 logit beyond +-16.6355 is always True (False).

    Examples
    --------
    >>> import gumbel_np as gnp
    >>> gnp.bernoulli([-50.0, 0.0, 50.0], rng=0).tolist()[::2]
    [False, True]
    """
    return run(OPS["bernoulli"], (logits,), axis, out, num_samples=num_samples, rng=rng, row_ids=row_ids)


@shared_docs
def gumbel_sigmoid(
    logits: ArrayLike,
    /,
    *,
    tau: Any = 1.0,
    hard: bool = False,
    rng: RNGLike = None,
    noise: ArrayLike | None = None,
    axis: int = -1,
    row_ids: ArrayLike | None = None,
    return_soft: bool = False,
    out: Array | None = None,
) -> Array | tuple[Array, Array]:
    """The binary Concrete (relaxed Bernoulli, Gumbel-sigmoid) sample
    ``sigmoid((logits + L) / tau)``.

    Parameters
    ----------
    logits : array_like
        Log-odds, any shape.
    tau : float or array_like, optional
        Temperature: finite and > 0, a scalar or an array broadcastable to
        the shape of ``logits`` (one per element).
    hard : bool, optional
        Return the exact 0/1 of the soft sample's side, ``y > 1/2`` (a tie,
        ``y == 1/2``, gives 0; NaN stays NaN): the straight-through
        estimator's forward, whose backward is that of the soft sample
        (:func:`gumbel_sigmoid_backward` of ``y_soft``).
    rng : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Source of the key, as for :func:`gumbel`.
    noise : array_like or 0, optional
        Logistic noise of the shape of ``logits`` to use instead of drawing
        it; ``0`` gives the noise-free ``sigmoid(logits / tau)``.
    axis : int, optional
        The axis that indexes the stream within a row (as the category axis
        does in :func:`gumbel_softmax`); default the last.
    row_ids : array_like of int, optional
        Stream id of each row, of the shape of ``logits`` without ``axis``.
    return_soft : bool, optional
        Also return the soft sample: ``(y, y_soft)``.
    out : ndarray, optional
        Where to write ``y`` (see "Output arrays" in the README).

    Returns
    -------
    ndarray, or (ndarray, ndarray) with ``return_soft``
        Of the shape and dtype of ``logits``.

    Raises
    ------
    {common_raises}
    TypeError
        Non-real logits, noise or tau; bad ``rng``.
    ValueError
        ``tau`` not finite and > 0 or not broadcastable; both ``rng`` and
        ``noise``; ``noise`` of another shape or a nonzero scalar.

    Notes
    -----
    ``L`` is the :func:`logistic` noise of the same key and row ids, so
    ``gumbel_sigmoid(l, tau=t, rng=s)`` equals ``sigmoid((l + logistic(l.shape,
    rng=s, dtype=l.dtype)) / t)`` to rounding.  In law it is the first
    coordinate of the two-class ``gumbel_softmax([l, 0], tau=t)`` (the
    difference of two Gumbel variables is logistic).  The sigmoid is
    evaluated from ``exp(-|s|)``, so it saturates to exactly 0 or 1
    without overflow.

    Examples
    --------
    >>> import gumbel_np as gnp
    >>> y = gnp.gumbel_sigmoid([0.0, 2.0], tau=0.5, rng=0)
    >>> bool(((0 <= y) & (y <= 1)).all())
    True
    """
    return run(
        OPS["gumbel_sigmoid"], (logits,), axis, out, tau=tau, hard=hard, rng=rng, noise=noise,
        row_ids=row_ids, return_soft=return_soft,
    )


@shared_docs
def gumbel_sigmoid_backward(
    grad: ArrayLike,
    y_soft: ArrayLike,
    /,
    *,
    tau: Any = 1.0,
    tau_grad: bool = False,
    out: Array | None = None,
) -> Array | tuple[Array, Array]:
    """VJP of :func:`gumbel_sigmoid` with respect to the logits (and ``tau``).

    Parameters
    ----------
    grad : array_like
        dL/dy, of the shape of ``y_soft``.
    y_soft : array_like
        The soft sample (``return_soft=True`` gives it with ``hard=True``).
    tau : float or array_like, optional
        The forward temperature.
    tau_grad : bool, optional
        Also return dL/dtau, of ``tau``'s shape.

    Returns
    -------
    ndarray, or (ndarray, ndarray) with ``tau_grad``
        ``grad * y (1 - y) / tau``; with ``tau_grad``, also ``-sum grad * y
        (1 - y) s / tau`` over the elements that share a temperature, where
        ``s = log(y) - log1p(-y)`` is the scaled logit ``(logits + L) /
        tau`` recovered from ``y``.

    Raises
    ------
    {common_raises}
    ValueError
        ``grad`` and ``y_soft`` of different shapes; a bad ``tau``.

    Notes
    -----
    A sample saturated to exactly 0 or 1 has ``y (1 - y) = 0``, so its
    gradients, the temperature's included, are exactly 0 (not ``0 * inf``).
    ``1 - y`` loses the low bits of ``y`` near 1 (float32 ``y`` holds 24
    bits): the gradient of ``y = 1 - 1e-5`` is good to about 1e-3 relative,
    as any backward pass from the forward output is.

    Examples
    --------
    >>> import numpy as np, gumbel_np as gnp
    >>> y = np.array([0.5, 1.0])
    >>> gnp.gumbel_sigmoid_backward(np.ones(2), y, tau=0.5).tolist()
    [0.5, 0.0]
    """
    return run(OPS["gumbel_sigmoid_backward"], (grad, y_soft), -1, out, tau=tau, tau_grad=tau_grad)


@shared_docs
def hard_concrete(
    logits: ArrayLike,
    /,
    *,
    tau: Any = _TAU_HC,
    limits: tuple[float, float] = DEFAULT_LIMITS,
    rng: RNGLike = None,
    noise: ArrayLike | None = None,
    axis: int = -1,
    row_ids: ArrayLike | None = None,
    return_soft: bool = False,
    out: Array | None = None,
) -> Array | tuple[Array, Array]:
    """The hard-concrete gate of Louizos, Welling and Kingma (2018):
    ``clip(sigmoid((logits + L) / tau) (hi - lo) + lo, 0, 1)``.

    Parameters
    ----------
    logits : array_like
        The gates' ``log alpha``, any shape.
    tau : float or array_like, optional
        Temperature (``beta`` in the paper), default 2/3; a scalar or an
        array broadcastable to the shape of ``logits``.
    limits : (float, float), optional
        The stretch interval ``(lo, hi)`` (the paper's ``(gamma, zeta)``),
        default ``(-0.1, 1.1)``; ``lo < 0`` and ``hi > 1``.
    rng : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Source of the key, as for :func:`gumbel`.
    noise : array_like or 0, optional
        Logistic noise of the shape of ``logits``; ``0`` gives the
        deterministic test-time gate ``clip(sigmoid(logits / tau) (hi - lo)
        + lo, 0, 1)``.
    axis : int, optional
        The axis that indexes the stream within a row (as the category axis
        does in :func:`gumbel_softmax`); default the last.
    row_ids : array_like of int, optional
        Stream id of each row, of the shape of ``logits`` without ``axis``.
    return_soft : bool, optional
        Also return the binary Concrete sample ``y = sigmoid((logits + L) /
        tau)`` before the stretch, which :func:`hard_concrete_backward` takes.
    out : ndarray, optional
        Where to write the gate (see "Output arrays" in the README).

    Returns
    -------
    ndarray, or (ndarray, ndarray) with ``return_soft``
        The gate, with exact zeros and ones, of the shape and dtype of
        ``logits``.

    Raises
    ------
    {common_raises}
    TypeError
        Non-real logits, noise or tau; ``limits`` not a pair of numbers.
    ValueError
        A bad ``tau``; ``limits`` not finite with ``lo < 0 < 1 < hi``;
        both ``rng`` and ``noise``; ``noise`` of another shape.

    Notes
    -----
    ``L`` is the :func:`logistic` noise of the same key and row ids; the
    gate is :func:`gumbel_sigmoid`'s soft sample, stretched and clipped.
    The test-time gate differs between implementations; this library's
    ``noise=0`` is the noise-free gate ``clip(sigmoid(logits / tau) (hi -
    lo) + lo, 0, 1)``, which is also the median of the gate's law.  The
    others in use: the paper's ``clip(sigmoid(logits) (hi - lo) + lo, 0,
    1)`` (the same at ``tau=1``: ``hard_concrete(l, tau=1, noise=0)``), the
    expectation of the random gate (estimate it by averaging samples), and
    a binary mask from ``hard_concrete_l0(l) > 1/2``, which at the same
    ``tau`` and ``limits`` is exactly where the ``noise=0`` gate is above 0.

    Examples
    --------
    >>> import gumbel_np as gnp
    >>> gnp.hard_concrete([-10.0, 0.0, 10.0], noise=0).round(6).tolist()
    [0.0, 0.5, 1.0]
    """
    return run(
        OPS["hard_concrete"], (logits,), axis, out, tau=tau, limits=limits, rng=rng, noise=noise,
        row_ids=row_ids, return_soft=return_soft,
    )


@shared_docs
def hard_concrete_backward(
    grad: ArrayLike,
    y_soft: ArrayLike,
    /,
    *,
    tau: Any = _TAU_HC,
    limits: tuple[float, float] = DEFAULT_LIMITS,
    tau_grad: bool = False,
    out: Array | None = None,
) -> Array | tuple[Array, Array]:
    """VJP of :func:`hard_concrete` with respect to the logits (and ``tau``).

    Parameters
    ----------
    grad : array_like
        dL/dgate, of the shape of ``y_soft``.
    y_soft : array_like
        The soft sample ``hard_concrete(..., return_soft=True)[1]``.
    tau, limits : optional
        Those of the forward call.
    tau_grad : bool, optional
        Also return dL/dtau, of ``tau``'s shape.

    Returns
    -------
    ndarray, or (ndarray, ndarray) with ``tau_grad``
        ``grad (hi - lo) y (1 - y) / tau`` where the stretched sample ``y
        (hi - lo) + lo`` lies strictly inside ``(0, 1)``, and exactly 0
        where the gate was clipped to 0 or 1 (the same comparison as the
        forward's, so the two agree element by element).

    Raises
    ------
    {common_raises}
    ValueError
        ``grad`` and ``y_soft`` of different shapes; a bad ``tau`` or
        ``limits``.

    Examples
    --------
    >>> import numpy as np, gumbel_np as gnp
    >>> gnp.hard_concrete_backward(np.ones(2), np.array([0.5, 0.99]), tau=0.5).round(6).tolist()
    [0.6, 0.0]
    """
    return run(
        OPS["hard_concrete_backward"], (grad, y_soft), -1, out, tau=tau, limits=limits, tau_grad=tau_grad
    )


@shared_docs
def hard_concrete_l0(
    logits: ArrayLike,
    /,
    *,
    tau: Any = _TAU_HC,
    limits: tuple[float, float] = DEFAULT_LIMITS,
    out: Array | None = None,
) -> Array:
    """The probability that the hard-concrete gate is not 0:
    ``sigmoid(logits - tau log(-lo / hi))``, the expected L0 norm of
    Louizos et al. (2018), per element.

    Parameters
    ----------
    logits : array_like
        The gates' ``log alpha``.
    tau, limits : optional
        Those of :func:`hard_concrete`.
    out : ndarray, optional
        Where to write the result (see "Output arrays" in the README).

    Returns
    -------
    ndarray
        Of the shape and dtype of ``logits``; sum it for the penalty.

    Raises
    ------
    {common_raises}
    ValueError
        A bad ``tau`` or ``limits``.

    Notes
    -----
    The gate is nonzero when ``y (hi - lo) + lo > 0``, i.e. ``y > -lo / (hi
    - lo)``, and ``logit(-lo / (hi - lo)) = log(-lo / hi)``.

    Examples
    --------
    >>> import gumbel_np as gnp
    >>> round(float(gnp.hard_concrete_l0(0.0)), 6)
    0.831822
    """
    return run(OPS["hard_concrete_l0"], (logits,), -1, out, tau=tau, limits=limits)


@shared_docs
def hard_concrete_l0_backward(
    grad: ArrayLike,
    logits: ArrayLike,
    /,
    *,
    tau: Any = _TAU_HC,
    limits: tuple[float, float] = DEFAULT_LIMITS,
    tau_grad: bool = False,
    out: Array | None = None,
) -> Array | tuple[Array, Array]:
    """VJP of :func:`hard_concrete_l0`.

    Parameters
    ----------
    grad : array_like
        dL/dp, of the shape of ``logits``.
    logits : array_like
        The forward input.
    tau, limits : optional
        Those of the forward call.
    tau_grad : bool, optional
        Also return dL/dtau, of ``tau``'s shape.

    Returns
    -------
    ndarray, or (ndarray, ndarray) with ``tau_grad``
        ``grad p (1 - p)``, evaluated as ``grad e / (1 + e)**2`` with ``e =
        exp(-|a|)``, ``a = logits - tau log(-lo / hi)`` (no cancellation);
        with ``tau_grad``, also ``-log(-lo / hi) sum grad p (1 - p)``.

    Raises
    ------
    {common_raises}
    ValueError
        ``grad`` and ``logits`` of different shapes; a bad ``tau`` or ``limits``.

    Examples
    --------
    >>> import numpy as np, gumbel_np as gnp
    >>> round(float(gnp.hard_concrete_l0_backward(1.0, 0.0)), 6)
    0.139894
    """
    return run(
        OPS["hard_concrete_l0_backward"], (grad, logits), -1, out, tau=tau, limits=limits, tau_grad=tau_grad
    )
