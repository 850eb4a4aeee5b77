"""Public functions of the estimators beyond straight-through: conditional
Gumbel samples, the Gumbel-Rao gradient and ReinMax."""

from __future__ import annotations

from numpy.typing import ArrayLike

from ._ops import OPS, run
from ._random import RNGLike
from ._validation import Array, shared_docs


@shared_docs
def conditional_gumbel(
    logits: ArrayLike,
    index: ArrayLike,
    /,
    *,
    axis: int = -1,
    rng: RNGLike = None,
    num_samples: int | None = None,
    row_ids: ArrayLike | None = None,
    out: Array | None = None,
) -> Array:
    """Perturbed logits ``z = logits + G`` drawn given that ``argmax(z) == index``.

    Parameters
    ----------
    logits : array_like
        Unnormalised log-probabilities along ``axis``; ``-inf`` masks a
        category.
    index : array_like of int
        The category each row is conditioned on, of the batch shape
        (``logits.shape`` without ``axis``): typically the draw of
        ``categorical(logits)``.
    axis : int, optional
        The category axis.  Default ``-1``.
    rng : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Source of the noise key, as in :func:`gumbel`.
    num_samples : int, optional
        Independent conditional samples per row (draw indices ``0 ..
        num_samples - 1``).  None (default) draws one and adds no axis.
    row_ids : array_like of int, optional
        Stream id of each row (batch shape); see :func:`gumbel`.
    out : ndarray, optional
        Where to write the result; see "Output arrays" in the README.

    Returns
    -------
    ndarray
        ``z``, of the logits' shape and float dtype (integers and bools give
        float64), with a trailing axis of ``num_samples`` when given (as
        :func:`bernoulli`'s).  ``argmax(z, axis) == index`` for every sample,
        float16 included.  Draw 0 of ``num_samples=S`` is the sample of
        ``num_samples=None`` to rounding (an ulp: the two divide at
        different places).

    Raises
    ------
    {common_raises}
    TypeError
        Unsupported array type or dtype, a non-integer ``index``, bad ``rng``
        or ``num_samples``.
    ValueError
        ``index`` not of the batch shape, or outside ``[0, K)``, or on a
        category whose logit is ``-inf`` (probability 0: nothing to condition
        on; the message names the row and the value); an empty category
        axis, ``row_ids`` of the wrong shape.
    numpy.exceptions.AxisError
        ``axis`` out of range.

    Notes
    -----
    The top-down construction (Maddison et al. 2014; REBAR and Gumbel-Rao
    use it): the winner ``z_i = lse - log E_i`` is a Gumbel of location
    ``lse = logsumexp(logits)``, and every other ``z_j`` is a Gumbel of
    location ``logits_j`` truncated below it, ``exp(-z_j) = exp(-z_i) + E_j
    exp(-logits_j)``, with ``E`` standard exponentials.  This is the exact
    conditional law: averaged over ``index ~ softmax(logits)`` it is the law
    of ``logits + gumbel(...)``.  It is evaluated in log space (``z_j = z_i
    - log(1 + t_j)`` with ``t_j = E_j exp(z_i - logits_j)`` formed from the
    row's ``exp(logits - max)``, or the softplus form where a row spreads
    too wide for it), never as ``exp(logits)``: logits of 1e4 and ``-inf``
    masks are exact (a masked category gets ``-inf``).  Rounding can never
    make another category tie with the winner: such a value is set to the
    float just below it, after the rounding to float16 too.

    The uniforms come from their own stream domain (domain 2 of
    ``STREAM_VERSION``): under one key they are independent of the noise of
    :func:`gumbel` and :func:`categorical`, and, as for every draw, a pure
    function of (key, row id, category, draw), so ``row_ids`` and chunking
    change nothing.  :func:`gumbel_rao_backward` regenerates exactly these
    samples from the key.  A row without a distribution (NaN, ``+inf``)
    gives NaN.

    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> logits = np.log([[0.7, 0.2, 0.1]])
    >>> z = gnp.conditional_gumbel(logits, [2], num_samples=1000, rng=0)
    >>> z.shape, bool((z.argmax(axis=1) == 2).all())
    ((1, 3, 1000), True)

    References
    ----------
    Maddison, Tarlow and Minka, "A* Sampling", NIPS 2014; Tucker et al.,
    "REBAR", NIPS 2017.
    """
    return run(OPS["conditional_gumbel"], (logits, index), axis, out, rng=rng, num_samples=num_samples,
               row_ids=row_ids)


@shared_docs
def gumbel_rao_backward(
    grad: ArrayLike,
    logits: ArrayLike,
    index: ArrayLike,
    /,
    *,
    axis: int = -1,
    tau: ArrayLike = 1.0,
    num_samples: int = 10,
    rng: RNGLike = None,
    row_ids: ArrayLike | None = None,
    out: Array | None = None,
) -> Array:
    """The Gumbel-Rao gradient of a hard categorical sample with respect to its logits.

    Parameters
    ----------
    grad : array_like
        The gradient of the loss with respect to the one-hot sample (the
        logits' shape).
    logits : array_like
        The logits the sample was drawn from (``-inf`` masks a category).
    index : array_like of int
        The sample, of the batch shape: ``categorical(logits)``.
    axis : int, optional
        The category axis.  Default ``-1``.
    tau : float or array_like, optional
        Temperature of the relaxation, > 0: one value, or one per row (the
        batch shape, or broadcastable to it).  Default 1.
    num_samples : int, optional
        Conditional samples averaged (``K`` of the paper).  Default 10.
    rng : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Source of the key of the conditional samples, as in :func:`gumbel`.
    row_ids : array_like of int, optional
        Stream id of each row (batch shape); see :func:`gumbel`.
    out : ndarray, optional
        Where to write the result; see "Output arrays" in the README.

    Returns
    -------
    ndarray
        The gradient with respect to the logits, of their shape and dtype.

    Raises
    ------
    {common_raises}
    TypeError
        Unsupported array type or dtype, a non-integer ``index``, bad ``rng``
        or ``num_samples`` (None included: there is no default sample).
    ValueError
        Shapes that do not fit (``grad`` not of the logits' shape, ``index``
        not of the batch shape), ``index`` outside ``[0, K)`` or on a ``-inf``
        logit (the message names the row and the value), ``tau`` not finite
        and > 0, ``num_samples`` < 1.
    numpy.exceptions.AxisError
        ``axis`` out of range.

    Notes
    -----
    Paulus, Maddison and Krause (2020): the mean over ``num_samples``
    conditional samples ``z`` (:func:`conditional_gumbel` with the same
    ``rng``, ``row_ids`` and draws ``0 .. num_samples - 1``) of the
    Gumbel-Softmax VJP ``y (grad - <grad, y>) / tau``, ``y = softmax(z /
    tau)``.  The samples are made inside the kernel and never stored: memory
    is that of one gradient, not ``num_samples`` copies of the batch.  With
    ``num_samples=1`` the estimate has the law of straight-through
    Gumbel-Softmax's gradient (``gumbel_softmax_backward`` of the soft sample
    whose argmax gave ``index``); more samples lower its variance, at the
    same expectation.

    The noise ``G = z - logits`` is held constant: the gradient is the soft
    VJP at each sample, as the authors' reference code computes it (it
    samples under ``no_grad``).  The paper's formula can also be read as
    differentiating through the conditional sampler (``z_i`` depends on the
    logits through ``logsumexp``, the other ``z_j`` through the truncation);
    that reading is not what the estimator's analysis assumes, and the
    authors advise against it.

    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> logits = np.log([[0.7, 0.2, 0.1]])
    >>> i = gnp.categorical(logits, rng=0)
    >>> g = gnp.gumbel_rao_backward(np.array([[1.0, 0.0, 0.0]]), logits, i, num_samples=100, rng=1)
    >>> g.shape, abs(float(g.sum())) < 1e-12
    ((1, 3), True)

    References
    ----------
    Paulus, Maddison and Krause, "Rao-Blackwellizing the Straight-Through
    Gumbel-Softmax Gradient Estimator", ICLR 2021.
    """
    return run(OPS["gumbel_rao_backward"], (grad, logits, index), axis, out, tau=tau, num_samples=num_samples,
               rng=rng, row_ids=row_ids)


@shared_docs
def reinmax_backward(
    grad: ArrayLike,
    logits: ArrayLike,
    index: ArrayLike,
    /,
    *,
    axis: int = -1,
    tau: ArrayLike = 1.0,
    out: Array | None = None,
) -> Array:
    """The ReinMax gradient of a hard categorical sample with respect to its logits.

    Parameters
    ----------
    grad : array_like
        The gradient of the loss with respect to the one-hot sample (the
        logits' shape).
    logits : array_like
        The logits the sample was drawn from (``-inf`` masks a category).
    index : array_like of int
        The sample, of the batch shape: ``categorical(logits)``, drawn at
        temperature 1 (``tau`` only enters the gradient).
    axis : int, optional
        The category axis.  Default ``-1``.
    tau : float or array_like, optional
        Temperature, > 0: one value, or one per row.  Default 1.
    out : ndarray, optional
        Where to write the result; see "Output arrays" in the README.

    Returns
    -------
    ndarray
        The gradient with respect to the logits, of their shape and dtype.

    Raises
    ------
    {common_raises}
    TypeError
        Unsupported array type or dtype, a non-integer ``index``.
    ValueError
        Shapes that do not fit, ``index`` outside ``[0, K)`` or on a ``-inf``
        logit (the message names the row and the value), ``tau`` not finite
        and > 0.
    numpy.exceptions.AxisError
        ``axis`` out of range.

    Notes
    -----
    Liu et al. (2023), Algorithm 2: with ``p = softmax(logits)``, ``D`` the
    one-hot of ``index`` and ``pi = (softmax(logits / tau) + D) / 2``, the
    gradient is ``2 pi (grad - <grad, pi>) - p (grad - <grad, p>) / 2``, a
    second-order (Heun) correction of straight-through at the cost of one
    more softmax.  The authors' code subtracts the mean over categories at
    the end; each term above sums to zero already, so that changes only
    rounding, and it is left out (a masked category's gradient stays exactly
    0).

    The authors reject ``tau < 1`` (their code raises): ReinMax's advantage
    over straight-through is shown there for ``tau >= 1``.  Here any ``tau >
    0`` is accepted: the gradient is well defined, and the README's estimator
    table (``examples/estimator_variance.py``) shows its bias and variance
    at temperatures below 1 as well.

    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> logits = np.log([[0.7, 0.2, 0.1]])
    >>> g = gnp.reinmax_backward(np.array([[1.0, 0.0, 0.0]]), logits, [0], tau=1.0)
    >>> np.round(g, 4).tolist()
    [[0.15, -0.1, -0.05]]

    References
    ----------
    Liu, Chen, Zhao, Gao and Chen, "Bridging Discrete and Backpropagation:
    Straight-Through and Beyond", NeurIPS 2023.
    """
    return run(OPS["reinmax_backward"], (grad, logits, index), axis, out, tau=tau)
