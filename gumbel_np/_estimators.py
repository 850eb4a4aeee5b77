"""The score-function estimator and the rest of an ELBO: the categorical
log-probability, entropy and KL divergence with their backward passes,
REINFORCE with baselines, and the temperature schedule."""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._dispatch import namespace
from ._ops import OPS, run
from ._validation import Array, as_array, shared_docs

__all__ = [
    "anneal_tau",
    "categorical_entropy",
    "categorical_entropy_backward",
    "categorical_kl",
    "categorical_kl_backward",
    "categorical_log_prob",
    "categorical_log_prob_backward",
    "reinforce",
]


@shared_docs
def categorical_log_prob(
    logits: ArrayLike, index: ArrayLike, /, *, axis: int = -1, out: Array | None = None
) -> Array:
    """Log-probability of category indices under ``softmax(logits)``.

    Parameters
    ----------
    logits : array_like
        Unnormalised log-probabilities; ``-inf`` masks a category.
    index : array_like of int
        Category indices: the batch shape of ``logits`` (its shape without
        ``axis``), followed by any sample axes, so the output of
        ``categorical(logits, num_samples=S)`` goes in as it is.
    axis : int, optional
        The category axis of ``logits``.  Default ``-1``.
    out : ndarray, optional
        Where to write the result (index's shape, the logits' dtype).

    Returns
    -------
    ndarray
        ``log p(index) = logits[index] - logsumexp(logits)``, of ``index``'s
        shape and the logits' float dtype.

    Raises
    ------
    {common_raises}
    TypeError
        Unsupported array type or dtype; ``index`` not of an integer dtype.
    ValueError
        ``index`` whose shape does not start with the batch shape, or
        with a value outside ``[0, K)`` (the message names the row).
    numpy.exceptions.AxisError
        ``axis`` out of range.

    Notes
    -----
    One pass over each row for its normaliser, then one read per index:
    the result is exactly ``take_along_axis(log_softmax(logits), index)``
    (each element ``(logits[i] - max) - log(sum(exp(logits - max)))``, the
    log-sum with ``log1p`` precision for peaked rows), without writing the
    ``log_softmax`` of the row.  An index that hits a ``-inf`` (masked)
    category gives ``-inf``; a row that holds NaN or ``+inf``, or is all
    ``-inf``, gives NaN.

    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> gnp.categorical_log_prob(np.log([[0.25, 0.75]]), np.array([[1, 0, 1]]))
    array([[-0.28768207, -1.38629436, -0.28768207]])
    """
    return run(OPS["categorical_log_prob"], (logits, index), axis, out)


@shared_docs
def categorical_log_prob_backward(
    grad: ArrayLike, logits: ArrayLike, index: ArrayLike, /, *, axis: int = -1, out: Array | None = None
) -> Array:
    """Vector-Jacobian product of :func:`categorical_log_prob`.

    Parameters
    ----------
    grad : array_like
        ``dL/dlog_prob``, of ``index``'s shape.
    logits, index, axis
        As given to the forward call.
    out : ndarray, optional
        Where to write the result (the logits' shape and dtype).

    Returns
    -------
    ndarray
        ``dL/dlogits = sum_s grad_s * (onehot(index_s) - softmax(logits))``
        per row, the sum over the sample axes; the logits' shape.

    Raises
    ------
    {common_raises}
    TypeError
        Unsupported array type or dtype; ``index`` not of an integer dtype.
    ValueError
        ``index`` of the wrong shape or out of range (as for the forward
        call); ``grad`` not of ``index``'s shape.
    numpy.exceptions.AxisError
        ``axis`` out of range.

    Notes
    -----
    One pass over the row: the softmax scaled by ``-sum_s grad_s``, then
    ``grad_s`` added at each index in sample order.  A ``-inf`` category has
    gradient 0 unless an index hits it.

    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> gnp.categorical_log_prob_backward(np.array([1.0]), np.log([0.25, 0.75]), np.array([1]))
    array([-0.25,  0.25])
    """
    return run(OPS["categorical_log_prob_backward"], (grad, logits, index), axis, out)


@shared_docs
def reinforce(
    logits: ArrayLike,
    index: ArrayLike,
    values: ArrayLike,
    /,
    *,
    baseline: Any = None,
    axis: int = -1,
    out: Array | None = None,
) -> Array:
    """The score-function (REINFORCE) estimate of ``d E[f(b)] / d logits``.

    Parameters
    ----------
    logits : array_like
        The logits of the categorical distribution ``b ~ softmax(logits)``.
    index : array_like of int
        The samples ``b``: the batch shape followed by any sample axes (the
        output of ``categorical(logits, num_samples=S)``).
    values : array_like
        ``f(b)`` for each sample, of ``index``'s shape (converted to the
        logits' dtype).
    baseline : None, number, array_like or ``"loo"``, optional
        The control variate ``c`` subtracted from ``values``: ``None`` (no
        baseline); a number or an array broadcastable to ``values`` (a
        moving average the caller keeps, a critic's output); ``"loo"``, for
        each sample the mean of the other samples of its row (needs at least
        2 samples per row).
    axis : int, optional
        The category axis of ``logits``.  Default ``-1``.
    out : ndarray, optional
        Where to write the result (the logits' shape and dtype).

    Returns
    -------
    ndarray
        ``mean_s (values_s - c_s) * (onehot(index_s) - softmax(logits))`` per
        row, the mean over all sample axes: the gradient estimate itself, of
        the logits' shape (no surrogate loss, no autograd).

    Raises
    ------
    {common_raises}
    TypeError
        Unsupported array type or dtype; ``index`` not of an integer dtype;
        ``baseline`` neither None, real, nor ``"loo"``.
    ValueError
        ``index`` of the wrong shape or out of range; ``values`` not of
        ``index``'s shape; ``baseline`` not broadcastable to it, or
        ``"loo"`` with fewer than 2 samples per row, or no samples at all.
    numpy.exceptions.AxisError
        ``axis`` out of range.

    Notes
    -----
    ``onehot(b) - softmax(logits)`` is the gradient of ``log p(b)``, so the
    estimate is unbiased for any baseline that does not depend on the
    sample it is subtracted from.  The leave-one-out baseline of Kool et
    al. [1]_, ``c_s = mean_{t != s} values_t``, gives ``(values_s -
    mean(values)) / (S - 1)`` in place of ``(values_s - c_s) / S``: the
    weights sum to zero over the row, so the estimate is unbiased, and
    their variance is lower than that of the plain estimate whenever
    ``values`` vary little around their mean compared with their size.
    Fused: one pass over each row, the softmax scaled by minus the sum of
    the weights, then each weight added at its index.  NaN in ``values``
    makes that row NaN.

    References
    ----------
    .. [1] W. Kool, H. van Hoof and M. Welling, "Buy 4 REINFORCE Samples, Get
       a Baseline for Free!", ICLR Workshop on Deep RL Meets Structured
       Prediction, 2019.
    .. [2] R. J. Williams, "Simple statistical gradient-following algorithms
       for connectionist reinforcement learning", Machine Learning 8, 1992.

    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> logits = np.zeros(2)
    >>> gnp.reinforce(logits, np.array([0, 1]), np.array([1.0, 3.0]))
    array([-0.5,  0.5])
    >>> gnp.reinforce(logits, np.array([0, 1]), np.array([1.0, 3.0]), baseline="loo")
    array([-1.,  1.])
    """
    return run(OPS["reinforce"], (logits, index, values), axis, out, baseline=baseline)


@shared_docs
def categorical_entropy(logits: ArrayLike, /, *, axis: int = -1, out: Array | None = None) -> Array:
    """Entropy of the categorical distribution ``softmax(logits)``.

    Parameters
    ----------
    logits : array_like
        Unnormalised log-probabilities; ``-inf`` masks a category.
    axis : int, optional
        The category axis.  Default ``-1``.
    out : ndarray, optional
        Where to write the result (one value per row).

    Returns
    -------
    ndarray
        ``H = -sum_j p_j log p_j`` per row, in nats.

    Raises
    ------
    {common_raises}
    TypeError
        Unsupported array type or dtype.
    numpy.exceptions.AxisError
        ``axis`` out of range.

    Notes
    -----
    Computed as ``log s - sum_j e_j d_j / s`` with ``d = logits - max``, ``e =
    exp(d)`` and ``s = sum_j e_j`` (the log-sum with ``log1p`` precision): a
    masked category is an exact zero of the distribution and adds exactly 0
    (``0 log 0 = 0``; no NaN where ``p * log(p)`` would give ``0 * -inf``).
    A row that holds NaN or ``+inf``, or is all ``-inf``, gives NaN.

    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> float(gnp.categorical_entropy(np.array([0.0, 0.0, -np.inf])))
    0.6931471805599453
    """
    return run(OPS["categorical_entropy"], (logits,), axis, out)


@shared_docs
def categorical_entropy_backward(
    grad: ArrayLike, logits: ArrayLike, /, *, axis: int = -1, out: Array | None = None
) -> Array:
    """Vector-Jacobian product of :func:`categorical_entropy`.

    Parameters
    ----------
    grad : array_like
        ``dL/dH``, one value per row (the forward output's shape, or
        broadcastable to it).
    logits, axis
        As given to the forward call.
    out : ndarray, optional
        Where to write the result (the logits' shape and dtype).

    Returns
    -------
    ndarray
        ``dL/dlogits = -grad * p * (log p + H)``, exactly 0 at masked
        categories.

    Raises
    ------
    {common_raises}
    TypeError
        Unsupported array type or dtype.
    ValueError
        ``grad`` does not fit the forward output's shape.
    numpy.exceptions.AxisError
        ``axis`` out of range.

    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> gnp.categorical_entropy_backward(np.array(1.0), np.array([0.0, np.log(2.0), -np.inf])).round(6)
    array([ 0.154033, -0.154033,  0.      ])
    """
    return run(OPS["categorical_entropy_backward"], (grad, logits), axis, out)


@shared_docs
def categorical_kl(
    logits_q: ArrayLike, logits_p: ArrayLike, /, *, axis: int = -1, out: Array | None = None
) -> Array:
    """KL divergence ``KL(q || p)`` of two categorical distributions given by logits.

    Parameters
    ----------
    logits_q, logits_p : array_like
        The logits of ``q = softmax(logits_q)`` and ``p = softmax(logits_p)``,
        of one shape; ``-inf`` masks a category.
    axis : int, optional
        The category axis.  Default ``-1``.
    out : ndarray, optional
        Where to write the result (one value per row).

    Returns
    -------
    ndarray
        ``sum_j q_j (log q_j - log p_j)`` per row, in nats.

    Raises
    ------
    {common_raises}
    TypeError
        Unsupported array type or dtype.
    ValueError
        ``logits_q`` and ``logits_p`` of different shapes.
    numpy.exceptions.AxisError
        ``axis`` out of range.

    Notes
    -----
    ``log q`` and ``log p`` are the ``log_softmax`` of their logits; a
    category with ``q_j = 0`` (masked in ``logits_q``) adds exactly 0,
    whatever ``p_j`` is (no NaN where ``q * (log q - log p)`` would give
    ``0 * (-inf + inf)``); a category with ``q_j > 0`` and ``p_j = 0`` makes
    the divergence ``+inf``, its true value.  A row of either argument that
    holds NaN or ``+inf``, or is all ``-inf``, gives NaN.

    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> q = np.array([np.log(0.5), np.log(0.5), -np.inf])
    >>> float(gnp.categorical_kl(q, np.log([0.25, 0.25, 0.5])))
    0.6931471805599453
    >>> float(gnp.categorical_kl(q, q))
    0.0
    """
    return run(OPS["categorical_kl"], (logits_q, logits_p), axis, out)


@shared_docs
def categorical_kl_backward(
    grad: ArrayLike, logits_q: ArrayLike, logits_p: ArrayLike, /, *, axis: int = -1
) -> tuple[Array, Array]:
    """Vector-Jacobian product of :func:`categorical_kl`, with respect to both arguments.

    Parameters
    ----------
    grad : array_like
        ``dL/dKL``, one value per row (or broadcastable to the forward
        output's shape).
    logits_q, logits_p, axis
        As given to the forward call.

    Returns
    -------
    (ndarray, ndarray)
        ``dL/dlogits_q = grad * q * (log q - log p - KL)`` (exactly 0 where
        ``q_j = 0``) and ``dL/dlogits_p = grad * (p - q)``, each of the
        logits' shape.  In a row whose divergence is ``+inf`` the first is
        not finite where ``q_j > 0``.

    Raises
    ------
    TypeError
        Unsupported array type or dtype; a masked array as input.
    ValueError
        ``grad`` does not fit the forward output's shape; the logits of
        different shapes.
    numpy.exceptions.AxisError
        ``axis`` out of range.

    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> dq, dp = gnp.categorical_kl_backward(np.array(1.0), np.zeros(2), np.log([0.25, 0.75]))
    >>> dq
    array([ 0.27465307, -0.27465307])
    >>> dp
    array([-0.25,  0.25])
    """
    return run(OPS["categorical_kl_backward"], (grad, logits_q, logits_p), axis, None)


def _positive(value: Any, name: str) -> float:
    """A finite float > 0 from a real scalar; the anneal_tau vocabulary."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"anneal_tau: {name} must be a real number, not {value!r}")
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"anneal_tau: {name} must be finite and > 0, got {value!r}")
    return v


def anneal_tau(
    step: Any,
    /,
    *,
    tau0: float = 1.0,
    tau_min: float = 0.5,
    rate: float = 3e-5,
    every: int = 1000,
) -> Any:
    """The temperature schedule of Jang et al. (2017), as a pure function of the step.

    Parameters
    ----------
    step : int or array_like of int
        The training step(s), ``>= 0`` (a NumPy or CuPy integer array works
        elementwise).
    tau0 : float, optional
        The temperature at step 0.  Default 1.
    tau_min : float, optional
        The floor, ``0 < tau_min <= tau0``.  Default 0.5.
    rate : float, optional
        The decay rate per step, finite and ``>= 0``.  Default ``3e-5``.
    every : int, optional
        The temperature changes every ``every`` steps (``>= 1``).  Default 1000.

    Returns
    -------
    float or ndarray
        ``max(tau_min, tau0 * exp(-rate * every * (step // every)))``: a
        float for an integer step, a float64 array of ``step``'s shape (and
        array type) for an array.

    Raises
    ------
    TypeError
        ``step`` not an integer or integer array (a bool or a float is
        refused: ``step // every`` of a float is not a step count); an
        option of the wrong type.
    ValueError
        A negative step; ``tau0`` or ``tau_min`` not finite and ``> 0``, or
        ``tau_min > tau0``; ``rate`` not finite and ``>= 0``; ``every < 1``.

    Notes
    -----
    Stateless, so the temperature of a step does not depend on how often
    the function was called before (a schedule kept as state in the training
    loop compounds when it is updated twice, or never anneals when it is
    re-created): resuming from a checkpoint at step ``n`` gives step ``n``'s
    temperature.  Jang et al. [1]_ used ``rate`` in ``{1e-5, 1e-4}``, updates
    every 500 or 1000 steps and ``tau_min = 0.5``.

    References
    ----------
    .. [1] E. Jang, S. Gu and B. Poole, "Categorical Reparameterization with
       Gumbel-Softmax", ICLR 2017.

    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> gnp.anneal_tau(0)
    1.0
    >>> round(gnp.anneal_tau(10_500), 6)
    0.740818
    >>> gnp.anneal_tau(np.array([0, 999, 1000, 10**9]))
    array([1.        , 1.        , 0.97044553, 0.5       ])
    """
    func = "anneal_tau"
    tau0 = _positive(tau0, "tau0")
    tau_min = _positive(tau_min, "tau_min")
    if tau_min > tau0:
        raise ValueError(f"anneal_tau: tau_min must be <= tau0, got tau_min={tau_min!r} > tau0={tau0!r}")
    if isinstance(rate, (bool, np.bool_)) or not isinstance(rate, (int, float, np.integer, np.floating)):
        raise TypeError(f"anneal_tau: rate must be a real number, not {rate!r}")
    rate = float(rate)
    if not (math.isfinite(rate) and rate >= 0):
        raise ValueError(f"anneal_tau: rate must be finite and >= 0, got {rate!r}")
    if isinstance(every, (bool, np.bool_)):
        raise TypeError(f"anneal_tau: every must be an integer, not {every!r}")
    try:
        every = operator.index(every)
    except TypeError:
        raise TypeError(f"anneal_tau: every must be an integer, not {every!r}") from None
    if every < 1:
        raise ValueError(f"anneal_tau: every must be >= 1, got {every}")
    if isinstance(step, (bool, np.bool_)):
        raise TypeError(f"anneal_tau: step must be an integer or an integer array, not {step!r}")
    if isinstance(step, (int, np.integer)):
        n = int(step)
        if n < 0:
            raise ValueError(f"anneal_tau: step must be >= 0, got {n}")
        # Past 2**60 updates every temperature is the floor; the cap keeps
        # the float product finite for a Python int of any size.
        k = min(n // every, 1 << 60)
        return max(tau_min, tau0 * math.exp(-rate * every * k))
    xp, _ = namespace(func, step)
    s = as_array(xp, step, func, "step")
    if s.dtype.kind not in "iu":
        raise TypeError(
            "anneal_tau: step must be an integer or an integer array, not "
            + (repr(step) if s.ndim == 0 else f"an array of dtype {s.dtype}")
        )
    if s.size and s.dtype.kind == "i" and int(s.min()) < 0:
        bad = int(s.reshape(-1)[int(xp.argmax(s.reshape(-1) < 0))])
        raise ValueError(f"anneal_tau: step must be >= 0, got {bad} in step")
    k = (s // every).astype(np.float64)
    return xp.maximum(tau_min, tau0 * xp.exp(-rate * every * k))
