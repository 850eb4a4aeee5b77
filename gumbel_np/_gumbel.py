"""Gumbel noise, Gumbel-Max categorical sampling and the Gumbel-Softmax."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from ._ops import OPS, run
from ._random import RNGLike
from ._validation import Array, shared_docs

__all__ = ["categorical", "gumbel", "gumbel_softmax", "gumbel_softmax_backward"]


@shared_docs
def gumbel(
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
    """Standard Gumbel(0, 1) noise from the counter-based Philox4x32-10 stream.

    Parameters
    ----------
    shape : int or tuple of ints
        Output shape.
    rng : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Source of the key: ``None`` draws fresh entropy, an int or a
        ``SeedSequence`` gives the same noise at every call, a ``Generator``
        gives a new key (and advances) at every call.
    dtype : {float32, float64, float16}, optional
        Output dtype; float16 noise is drawn in float32 and rounded.
    axis : int, optional
        The category axis: noise element ``j`` along ``axis`` of a row equals
        the noise that :func:`gumbel_softmax` and :func:`categorical` add to
        category ``j`` of that row for the same ``rng`` and ``row_ids``.
    row_ids : array_like of int, optional
        Stream id of each row, of the batch shape (``shape`` without
        ``axis``).  Default: the row's flat position in the batch.
    like : ndarray or dask.array.Array, optional
        A CuPy array puts the noise on its device; None or a NumPy array
        gives a NumPy array.  A Dask array gives a Dask array with
        chunks of its type (NumPy or CuPy), and its chunks when it has
        ``shape``.
    chunks : int, tuple, "auto" or dict, optional
        Make a lazy Dask array with these chunks (``dask.array``'s
        ``chunks``), each generated where it is computed; its values equal
        the in-memory call's bit for bit, whatever the chunks.  A row is
        generated whole (its categories are counted from 0) and the
        requested chunks of ``axis`` are cut from it.  ``row_ids`` may be a
        Dask array, rechunked to the batch.

    out : ndarray, optional
        Where to write the noise: an array of ``shape`` and ``dtype`` (NumPy,
        or CuPy for the GPU), returned.  See "Output arrays" in the README.

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
        Negative shape entries, ``row_ids`` not of the batch shape, a negative
        integer seed.
    numpy.exceptions.AxisError
        ``axis`` out of range for ``shape``.

    Notes
    -----
    ``G = -log(-log(U))`` with ``U`` uniform on the open interval: float32
    ``U = (1 | (w >> 8)) 2**-24``, float64 ``U = (1 | (x >> 11)) 2**-53``
    from Philox words ``w`` (64-bit ``x``) keyed by ``rng`` and counted by
    (category block, draw index, row id).  The noise is a pure function of
    (key, row id, category index, draw index, dtype), independent of thread
    count, chunking, memory layout and device.

    Representable range: float32 ``[-2.8115, 16.6355]`` (``U`` from
    ``2**-24`` to ``1 - 2**-24``), float64 ``[-3.6038, 36.7368]`` (``U`` from
    ``2**-53`` to ``1 - 2**-53``).  The upper tail is therefore cut at a
    probability of about ``6e-8`` (float32) and ``1.1e-16`` (float64).

    References
    ----------
    .. [1] J. K. Salmon, M. A. Moraes, R. O. Dror and D. E. Shaw, "Parallel
       random numbers: as easy as 1, 2, 3", SC'11, 2011.

    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> g = gnp.gumbel((2, 3), rng=0)
    >>> g.shape, g.dtype
    ((2, 3), dtype('float32'))
    >>> bool((gnp.gumbel((2, 3), rng=0) == g).all())
    True
    >>> bool((gnp.gumbel((1, 3), rng=0, row_ids=[1]) == g[1:]).all())
    True
    """
    return run(OPS["gumbel"], (shape,), axis, out, dtype=dtype, rng=rng, row_ids=row_ids, like=like, chunks=chunks)


@shared_docs
def gumbel_softmax(
    logits: ArrayLike,
    /,
    *,
    tau: ArrayLike = 1.0,
    hard: bool = False,
    axis: int = -1,
    rng: RNGLike = None,
    noise: ArrayLike | None = None,
    row_ids: ArrayLike | None = None,
    return_soft: bool = False,
    noise_dtype: DTypeLike | None = None,
    out: Array | None = None,
) -> Array | tuple[Array, Array]:
    """Gumbel-Softmax (Concrete) sample, or its straight-through one-hot form.

    Parameters
    ----------
    logits : array_like
        Unnormalised log-probabilities (log-probabilities work as they are);
        ``-inf`` masks a category.
    tau : float or array_like, optional
        Temperature, finite and > 0 with a finite ``1 / tau`` (so above
        about 2.9e-39 in float32): a scalar, or an array broadcastable to
        the batch shape (``logits.shape`` without ``axis``) for one
        temperature per row, or of the logits' rank with length 1 along
        ``axis`` (``tau[:, None]``).  Default 1.
    hard : bool, optional
        Return the exact one-hot of the soft sample's argmax (ties go to the
        lowest index) instead of the soft sample.
    axis : int, optional
        The category axis.  Default ``-1``.
    rng : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Source of the noise key, as in :func:`gumbel`.
    noise : array_like or 0, optional
        Explicit Gumbel noise of ``logits``' shape instead of drawing it;
        ``noise=0`` gives the deterministic, noise-free relaxation
        ``softmax(logits / tau)``.  Not together with ``rng``.
    row_ids : array_like of int, optional
        Stream id of each row (batch shape); see :func:`gumbel`.
    return_soft : bool, optional
        Also return the soft sample (the input of
        :func:`gumbel_softmax_backward`).
    {noise_dtype_doc}

    out : ndarray, optional
        Where to write ``y``: an array of the logits' shape and float dtype
        (and array type), returned.  See "Output arrays" in the README.

    Returns
    -------
    y : ndarray
        The soft sample, or the one-hot when ``hard=True``; ``logits``' shape
        and float dtype.
    y_soft : ndarray
        Only with ``return_soft=True``: the soft sample.

    Raises
    ------
    {common_raises}
    TypeError
        Unsupported array type or dtype, bad ``rng``.
    ValueError
        ``tau`` not finite or not > 0 (0, -0.0, NaN, inf) or with an
        infinite ``1 / tau`` in the compute dtype, ``row_ids`` or
        ``noise`` of the wrong shape, an empty category axis, both ``rng``
        and ``noise``.
    numpy.exceptions.AxisError
        ``axis`` out of range.

    Notes
    -----
    ``y = softmax((logits + G) / tau)`` with ``G`` the noise of
    ``gumbel(logits.shape, rng=rng, dtype=logits.dtype, axis=axis,
    row_ids=row_ids)``, computed as ``exp((z - max z) / tau) / sum`` with
    ``z = (logits - max logits) + G``, so huge logits neither overflow nor
    drown the noise.  A row that holds NaN or ``+inf``, or is all ``-inf``,
    gives a NaN row (soft and hard).

    The straight-through estimator pairs the hard forward with the soft
    backward: pass ``y_soft`` (``return_soft=True``) to
    :func:`gumbel_softmax_backward`.

    References
    ----------
    .. [1] E. Jang, S. Gu and B. Poole, "Categorical Reparameterization with
       Gumbel-Softmax", ICLR 2017.
    .. [2] C. J. Maddison, A. Mnih and Y. W. Teh, "The Concrete Distribution:
       A Continuous Relaxation of Discrete Random Variables", ICLR 2017.

    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> logits = np.log(np.array([[0.2, 0.3, 0.5]]))
    >>> y = gnp.gumbel_softmax(logits, tau=0.5, rng=0)
    >>> y.shape, bool(np.isclose(y.sum(), 1.0))
    ((1, 3), True)
    >>> g = gnp.gumbel(logits.shape, rng=0, dtype=logits.dtype)
    >>> bool(np.allclose(y, gnp.softmax((logits + g) / 0.5)))
    True
    >>> hard, soft = gnp.gumbel_softmax(logits, hard=True, rng=0, return_soft=True)
    >>> hard.tolist() == [[0.0, 0.0, 1.0]] and int(soft.argmax()) == 2
    True
    >>> gnp.gumbel_softmax(np.log([[1.0, 3.0]]), noise=0).round(3)
    array([[0.25, 0.75]])
    """
    return run(
        OPS["gumbel_softmax"], (logits,), axis, out, tau=tau, hard=hard, rng=rng, noise=noise,
        row_ids=row_ids, return_soft=return_soft, noise_dtype=noise_dtype,
    )


@shared_docs
def gumbel_softmax_backward(
    grad: ArrayLike,
    y_soft: ArrayLike,
    /,
    *,
    tau: ArrayLike = 1.0,
    axis: int = -1,
    tau_grad: bool = False,
    out: Array | None = None,
) -> Array | tuple[Array, Array]:
    """Vector-Jacobian product of :func:`gumbel_softmax`, from the soft sample.

    Parameters
    ----------
    grad : array_like
        ``dL/dy``, the shape of ``y_soft``.  For the straight-through
        estimator this is the gradient at the hard (one-hot) output.
    y_soft : array_like
        The soft sample of the forward call (``return_soft=True`` gives it
        with ``hard=True``).
    tau : float or array_like, optional
        The temperature of the forward call.
    axis : int, optional
        The category axis of the forward call.
    tau_grad : bool, optional
        Also return ``dL/dtau``.

    out : ndarray, optional
        Where to write ``grad_logits``: an array of ``y_soft``'s shape and
        float dtype (and array type), returned.  See "Output arrays" in the
        README.

    Returns
    -------
    grad_logits : ndarray
        ``dL/dlogits = y (grad - <grad, y>) / tau``, the shape of ``y_soft``.
    grad_tau : ndarray
        Only with ``tau_grad=True``: ``dL/dtau`` in ``tau``'s shape (a 0-d
        array for a scalar ``tau``).

    Raises
    ------
    {common_raises}
    TypeError
        Unsupported array type or dtype, NumPy and CuPy mixed.
    ValueError
        ``grad`` and ``y_soft`` differ in shape; bad ``tau``.
    numpy.exceptions.AxisError
        ``axis`` out of range.

    Notes
    -----
    With ``z = logits + G`` and ``y = softmax(z / tau)``, the temperature
    gradient is ``dL/dtau = -(1/tau) sum_j dL/dlogits_j z_j``.  As the VJP sums
    to zero over the row, ``z_j`` may be replaced by ``tau log y_j``, so
    ``dL/dtau = -sum_j dL/dlogits_j log y_j``: computed from ``y_soft`` alone,
    and exact where ``y_soft`` underflows to 0 (those terms vanish, as
    ``y log y -> 0``).

    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> y = np.array([0.25, 0.75])
    >>> gnp.gumbel_softmax_backward(np.array([1.0, 0.0]), y, tau=0.5)
    array([ 0.375, -0.375])
    >>> dl, dtau = gnp.gumbel_softmax_backward(np.array([1.0, 0.0]), y, tau=0.5, tau_grad=True)
    >>> dtau.shape
    ()
    """
    return run(OPS["gumbel_softmax_backward"], (grad, y_soft), axis, out, tau=tau, tau_grad=tau_grad)


@shared_docs
def categorical(
    logits: ArrayLike,
    /,
    *,
    axis: int = -1,
    num_samples: int | None = None,
    replace: bool = True,
    rng: RNGLike = None,
    row_ids: ArrayLike | None = None,
    noise_dtype: DTypeLike | None = None,
    out: Array | None = None,
) -> Array:
    """Exact categorical samples by the Gumbel-Max trick (with replacement) or
    the Gumbel-top-k trick (without), one fused pass per draw.

    Parameters
    ----------
    logits : array_like
        Unnormalised log-probabilities along ``axis``: the probability of
        category ``j`` is ``softmax(logits)_j`` (log-probabilities work as
        they are); ``-inf`` masks a category, which is then never drawn.
    axis : int, optional
        The category axis.  Default ``-1``.
    num_samples : int, optional
        Independent draws per row (each with its own draw index in the
        stream), or with ``replace=False`` the number of distinct categories
        drawn per row.  None (default) draws one and adds no axis.
    replace : bool, optional
        True (default): independent draws.  False: an ordered sample without
        replacement (see Notes); at most the number of categories.
    rng : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Source of the noise key, as in :func:`gumbel`.
    row_ids : array_like of int, optional
        Stream id of each row (batch shape); see :func:`gumbel`.
    {noise_dtype_doc}

    out : ndarray of int64, optional
        Where to write the samples: an array of the result's shape (and array
        type), returned.  See "Output arrays" in the README.

    Returns
    -------
    ndarray of int64
        Category indices, of the batch shape (``logits.shape`` without
        ``axis``), with a trailing axis of ``num_samples`` when given.

    Raises
    ------
    {common_raises}
    TypeError
        Unsupported array type or dtype, bad ``rng`` or ``num_samples``.
    ValueError
        A row that holds NaN or ``+inf`` or is all ``-inf`` (the message
        names the first such row), an empty category axis, ``num_samples`` <
        1, ``row_ids`` of the wrong shape; without replacement, ``num_samples``
        above the number of categories, or a row with fewer categories that
        are not ``-inf`` than ``num_samples``.
    numpy.exceptions.AxisError
        ``axis`` out of range.

    Notes
    -----
    ``argmax_j (logits_j - max logits + G_j)`` with ``G`` the noise of
    ``gumbel(logits.shape, rng=rng, dtype=logits.dtype, axis=axis,
    row_ids=row_ids)`` (draw ``d`` uses draw index ``d``; ``dtype=noise_dtype``
    when that is given), ties to the lowest index.  Shifting by the row maximum first keeps huge logits from drowning
    the noise: two logits of 1e8 are drawn 50/50.

    With ``replace=False`` and ``num_samples=k``, the draws of a row are the
    indices of its ``k`` largest ``logits_j - max logits + G_j`` (draw index 0,
    the noise of the single draw), in decreasing order, ties to the lowest
    index: an exact ordered sample without replacement, whose law is the
    Plackett-Luce distribution (:func:`plackett_luce_log_prob`), the first
    draw is the single draw of ``categorical(logits)``, and ``row_ids`` and
    chunking change nothing, as for every draw.  The row is read once and
    the noise never stored: a sorted buffer of the ``k`` best for small ``k``,
    a partition for large ``k``.  A ``-inf`` category is never drawn.

    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> logits = np.array([[np.log(0.1), np.log(0.9)], [0.0, -np.inf]])
    >>> gnp.categorical(logits, rng=0).tolist()[1]  # -inf is never drawn
    0
    >>> draws = gnp.categorical(np.log([0.2, 0.8]), num_samples=100_000, rng=1)
    >>> draws.shape, round(float(draws.mean()), 2)
    ((100000,), 0.8)
    >>> slate = np.array([np.log(0.5), np.log(0.3), np.log(0.2), -np.inf])
    >>> gnp.categorical(slate, num_samples=3, replace=False, rng=2).tolist()
    [1, 0, 2]

    References
    ----------
    Kool, van Hoof and Welling, "Stochastic Beams and Where to Find Them: The
    Gumbel-Top-k Trick for Sampling Sequences Without Replacement", ICML 2019.
    """
    return run(
        OPS["categorical"], (logits,), axis, out, num_samples=num_samples, replace=replace, rng=rng,
        row_ids=row_ids, noise_dtype=noise_dtype,
    )
