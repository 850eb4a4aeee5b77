"""Public functions of the relaxed distributions in log space: the
ExpConcrete sample ``log_gumbel_softmax`` and the log-densities of the
ExpConcrete, Concrete and binary Concrete distributions (Maddison et al.
2017), each with its backward pass."""

from __future__ import annotations

from numpy.typing import ArrayLike

from ._ops import OPS, run
from ._validation import Array, shared_docs

_REFERENCES = """
    References
    ----------
    Maddison, Mnih and Teh, "The Concrete Distribution: A Continuous
    Relaxation of Discrete Random Variables", ICLR 2017 (appendix C: the
    ExpConcrete density and why a relaxed ELBO should be computed in log
    space).
"""


@shared_docs
def log_gumbel_softmax(
    logits: ArrayLike,
    /,
    *,
    tau: ArrayLike = 1.0,
    axis: int = -1,
    rng=None,
    noise: ArrayLike | None = None,
    row_ids: ArrayLike | None = None,
    out: Array | None = None,
) -> Array:
    """The ExpConcrete sample ``log_softmax((logits + G) / tau)``: the log of a Gumbel-Softmax sample, finite where it underflows.

    Parameters
    ----------
    logits : array_like
        Unnormalised log-probabilities along ``axis``; ``-inf`` masks a
        category (its entry is ``-inf``).
    tau : float or array_like, optional
        Temperature, > 0: a scalar or one per row (as in
        :func:`gumbel_softmax`).
    axis : int, optional
        The category axis.  Default ``-1``.
    rng : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Source of the noise key, as in :func:`gumbel`.
    noise : array_like or 0, optional
        The Gumbel noise (the logits' shape) instead of drawing it; ``0`` for
        the noise-free ``log_softmax(logits / tau)``.
    row_ids : array_like of int, optional
        Stream id of each row (batch shape).
    out : ndarray, optional
        Where to write the result (the logits' shape and dtype).

    Returns
    -------
    ndarray
        ``z`` of the logits' shape, with ``logsumexp(z) = 0`` along ``axis``.

    Raises
    ------
    {common_raises}
    TypeError
        Unsupported array type or dtype, bad ``rng`` or ``noise``.
    ValueError
        Bad ``tau``, ``row_ids`` or ``noise``; an empty category axis.
    numpy.exceptions.AxisError
        ``axis`` out of range.

    Notes
    -----
    The same noise (draw 0, for the same key and row ids), shift and scaling
    as :func:`gumbel_softmax`, so ``exp(log_gumbel_softmax(l, ...)) ==
    gumbel_softmax(l, ...)`` to rounding wherever the latter does not
    underflow; here every category that is not masked stays finite down to
    any temperature (``tau = 1e-3`` included), which the densities
    (:func:`exp_concrete_log_prob`) need.  A row that holds NaN or ``+inf``,
    or is all ``-inf``, gives NaN.

    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> z = gnp.log_gumbel_softmax(np.array([0.0, -1.0, -2.0]), tau=0.001, rng=0)
    >>> bool(np.isfinite(z).all()), float(np.exp(z).sum())
    (True, 1.0)
    """
    return run(OPS["log_gumbel_softmax"], (logits,), axis, out, tau=tau, rng=rng, noise=noise, row_ids=row_ids)


@shared_docs
def log_gumbel_softmax_backward(
    grad: ArrayLike,
    y: ArrayLike,
    /,
    *,
    tau: ArrayLike = 1.0,
    axis: int = -1,
    tau_grad: bool = False,
    out: Array | None = None,
) -> Array | tuple[Array, Array]:
    """Vector-Jacobian product of :func:`log_gumbel_softmax`, from its output.

    Parameters
    ----------
    grad : array_like
        ``dL/dz``, the shape of ``y``.
    y : array_like
        The output ``z`` of the forward call.
    tau : float or array_like, optional
        The temperature of the forward call.
    axis : int, optional
        The category axis of the forward call.
    tau_grad : bool, optional
        Also return ``dL/dtau``.
    out : ndarray, optional
        Where to write ``grad_logits``.

    Returns
    -------
    grad_logits : ndarray
        ``(grad - exp(y) sum(grad)) / tau`` (0 at a masked category).
    grad_tau : ndarray
        Only with ``tau_grad=True``: ``dL/dtau = -(1 / tau) sum_j
        (grad_j - exp(y_j) sum(grad)) y_j`` in ``tau``'s shape.

    Raises
    ------
    {common_raises}
    TypeError
        Unsupported array type or dtype.
    ValueError
        ``grad`` and ``y`` differ in shape; bad ``tau``.
    numpy.exceptions.AxisError
        ``axis`` out of range.

    Notes
    -----
    The VJP of ``log_softmax(w)`` at ``w = (logits + G) / tau``; since it
    sums to zero over the row, ``w`` may be replaced by ``y`` in the
    temperature gradient, so the saved output is all it needs.

    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> y = np.log([0.25, 0.75])
    >>> gnp.log_gumbel_softmax_backward(np.array([1.0, 0.0]), y, tau=0.5)
    array([ 1.5, -1.5])
    """
    return run(OPS["log_gumbel_softmax_backward"], (grad, y), axis, out, tau=tau, tau_grad=tau_grad)


def _density_docs(func):
    """Put the densities' shared Raises and References sections where
    ``func``'s docstring says ``{density_raises}`` and ``{references}``
    (before :func:`shared_docs` fills in ``{common_raises}``)."""
    func.__doc__ = func.__doc__.replace("{density_raises}", "\n" + _DENSITY_RAISES.strip("\n") + "\n").replace(
        "{references}", "\n" + _REFERENCES.strip("\n") + "\n"
    )
    return func


_DENSITY_RAISES = """
    Raises
    ------
    {common_raises}
    TypeError
        Unsupported array type or dtype.
    ValueError
        The sample and the logits differ in shape; bad ``tau``.
    numpy.exceptions.AxisError
        ``axis`` out of range.
"""


@shared_docs
@_density_docs
def exp_concrete_log_prob(
    z: ArrayLike, logits: ArrayLike, /, *, tau: ArrayLike = 1.0, axis: int = -1, out: Array | None = None
) -> Array:
    """Log-density of the ExpConcrete distribution (the law of ``log_gumbel_softmax``).

    Parameters
    ----------
    z : array_like
        The sample, a point of the log-simplex (``logsumexp(z) = 0``), the
        shape of ``logits``.
    logits : array_like
        The location (unnormalised log-probabilities; ``-inf`` masks a
        category, which then leaves the distribution).
    tau : float or array_like, optional
        The temperature, a scalar or one per row.
    axis : int, optional
        The category axis.  Default ``-1``.
    out : ndarray, optional
        Where to write the result (the batch shape).

    Returns
    -------
    ndarray
        ``log p(z)`` per row, of the batch shape.
    {density_raises}
    Notes
    -----
    With ``n`` the categories that are not masked and ``u = logits - tau z``
    over them: ``log p(z) = log((n - 1)!) + (n - 1) log tau + sum(u) - n
    logsumexp(u)``, as in Maddison et al. and
    ``torch.distributions.ExpRelaxedCategorical.log_prob``.  This is a
    density with respect to the symmetric measure ``dz_1 ... dz_{n-1} /
    exp(z_n)`` on the log-simplex (any coordinate may be the one left out);
    with respect to Lebesgue measure on ``z_1 .. z_{n-1}`` the density is
    this one times ``exp(-z_n)``.  A ratio of two such densities (prior and
    posterior in the relaxed ELBO) is the same either way.  Finite wherever
    ``z`` is (``log_gumbel_softmax`` samples at ``tau = 1e-3`` included).  A
    masked category must have ``z = -inf`` and one that is not masked a
    finite ``z``: otherwise the sample is outside the support and the result
    is ``-inf``.  The constraint ``logsumexp(z) = 0`` is not checked.  NaN
    gives NaN; a row whose logits are all ``-inf`` gives NaN.
    {references}
    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> z = np.log([0.5, 0.5])
    >>> round(float(gnp.exp_concrete_log_prob(z, np.zeros(2), tau=1.0)), 6)  # log 1/4
    -1.386294
    """
    return run(OPS["exp_concrete_log_prob"], (z, logits), axis, out, tau=tau)


@shared_docs
@_density_docs
def exp_concrete_log_prob_backward(
    grad: ArrayLike, z: ArrayLike, logits: ArrayLike, /, *, tau: ArrayLike = 1.0, axis: int = -1,
    tau_grad: bool = False,
) -> tuple[Array, ...]:
    """Vector-Jacobian product of :func:`exp_concrete_log_prob` with respect to the sample, the logits and the temperature.

    Parameters
    ----------
    grad : array_like
        ``dL/dlog p``, the batch shape.
    z, logits, tau, axis
        As given to the forward call.
    tau_grad : bool, optional
        Also return ``dL/dtau``.

    Returns
    -------
    grad_z, grad_logits : ndarray
        With ``s = softmax(u)`` over the categories not masked and ``v = 1 -
        n s``: ``-grad tau v`` and ``grad v`` (0 at masked categories and
        for samples outside the support), each of the logits' shape.
    grad_tau : ndarray
        Only with ``tau_grad=True``: ``grad ((n - 1) / tau - sum(z v))`` in
        ``tau``'s shape.
    {density_raises}
    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> dz, dl = gnp.exp_concrete_log_prob_backward(1.0, np.log([0.5, 0.5]), np.zeros(2))
    >>> dz.tolist(), dl.tolist()
    ([0.0, 0.0], [0.0, 0.0])
    """
    return run(OPS["exp_concrete_log_prob_backward"], (grad, z, logits), axis, None, tau=tau, tau_grad=tau_grad)


@shared_docs
@_density_docs
def concrete_log_prob(
    y: ArrayLike, logits: ArrayLike, /, *, tau: ArrayLike = 1.0, axis: int = -1, out: Array | None = None
) -> Array:
    """Log-density of the Concrete distribution (the law of ``gumbel_softmax``'s soft sample).

    Parameters
    ----------
    y : array_like
        The sample, a point of the simplex, the shape of ``logits``.
    logits : array_like
        The location; ``-inf`` masks a category, which then leaves the
        distribution.
    tau : float or array_like, optional
        The temperature, a scalar or one per row.
    axis : int, optional
        The category axis.  Default ``-1``.
    out : ndarray, optional
        Where to write the result (the batch shape).

    Returns
    -------
    ndarray
        ``log p(y)`` per row, of the batch shape.
    {density_raises}
    Notes
    -----
    :func:`exp_concrete_log_prob` of ``z = log y`` less ``sum(log y)`` (the
    Jacobian), evaluated in that form, as
    ``torch.distributions.RelaxedOneHotCategorical.log_prob``.  A category
    that is not masked at ``y = 0`` (an underflowed sample, as
    ``gumbel_softmax`` gives at low temperatures), ``y`` above 1, or mass on
    a masked category is outside the open support: ``-inf``, with a zero
    gradient.  At such temperatures sample in log space instead
    (:func:`log_gumbel_softmax` and :func:`exp_concrete_log_prob`), where
    every term stays finite.
    {references}
    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> round(float(gnp.concrete_log_prob(np.array([0.5, 0.5]), np.zeros(2), tau=1.0)), 6)  # log 1/4 + 2 log 2
    0.0
    """
    return run(OPS["concrete_log_prob"], (y, logits), axis, out, tau=tau)


@shared_docs
@_density_docs
def concrete_log_prob_backward(
    grad: ArrayLike, y: ArrayLike, logits: ArrayLike, /, *, tau: ArrayLike = 1.0, axis: int = -1,
    tau_grad: bool = False,
) -> tuple[Array, ...]:
    """Vector-Jacobian product of :func:`concrete_log_prob` with respect to the sample, the logits and the temperature.

    Parameters
    ----------
    grad : array_like
        ``dL/dlog p``, the batch shape.
    y, logits, tau, axis
        As given to the forward call.
    tau_grad : bool, optional
        Also return ``dL/dtau``.

    Returns
    -------
    grad_y, grad_logits : ndarray
        ``(-grad tau v - grad) / y`` and ``grad v`` with ``v`` as in
        :func:`exp_concrete_log_prob_backward` at ``z = log y`` (0 at masked
        categories and outside the support).
    grad_tau : ndarray
        Only with ``tau_grad=True``, in ``tau``'s shape.
    {density_raises}
    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> dy, dl = gnp.concrete_log_prob_backward(1.0, np.array([0.5, 0.5]), np.zeros(2))
    >>> dy.tolist(), dl.tolist()
    ([-2.0, -2.0], [0.0, 0.0])
    """
    return run(OPS["concrete_log_prob_backward"], (grad, y, logits), axis, None, tau=tau, tau_grad=tau_grad)


@shared_docs
@_density_docs
def binary_concrete_log_prob(
    y: ArrayLike, logits: ArrayLike, /, *, tau: ArrayLike = 1.0, out: Array | None = None
) -> Array:
    """Log-density of the binary Concrete (relaxed Bernoulli) distribution, element-wise: the law of ``gumbel_sigmoid``.

    Parameters
    ----------
    y : array_like
        The sample, in ``(0, 1)``.
    logits : array_like
        The logits, of ``y``'s shape.
    tau : float or array_like, optional
        The temperature: a scalar or one per element (broadcast to ``y``'s
        shape).
    out : ndarray, optional
        Where to write the result (``y``'s shape).

    Returns
    -------
    ndarray
        ``log p(y)`` per element.
    {density_raises}
    Notes
    -----
    With ``d = log y - log1p(-y)`` and ``a = logits - tau d``: ``log p(y) =
    log tau + a - 2 softplus(a) - log y - log1p(-y)``, the softplus as
    ``max(a, 0) + log1p(exp(-|a|))``, so no term overflows, as
    ``torch.distributions.RelaxedBernoulli.log_prob``.  A ``y`` of exactly 0
    or 1 (a sample that saturated) is outside the open support: ``-inf``,
    with a zero gradient.
    {references}
    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> float(gnp.binary_concrete_log_prob(np.array(0.5), np.array(0.0), tau=1.0))  # log(1/4) + 2 log 2
    0.0
    """
    return run(OPS["binary_concrete_log_prob"], (y, logits), -1, out, tau=tau)


@shared_docs
@_density_docs
def binary_concrete_log_prob_backward(
    grad: ArrayLike, y: ArrayLike, logits: ArrayLike, /, *, tau: ArrayLike = 1.0, tau_grad: bool = False
) -> tuple[Array, ...]:
    """Vector-Jacobian product of :func:`binary_concrete_log_prob` with respect to the sample, the logits and the temperature.

    Parameters
    ----------
    grad : array_like
        ``dL/dlog p``, ``y``'s shape.
    y, logits, tau
        As given to the forward call.
    tau_grad : bool, optional
        Also return ``dL/dtau``.

    Returns
    -------
    grad_y, grad_logits : ndarray
        With ``t = 1 - 2 sigmoid(a)``: ``grad (2 y - 1 - tau t) / (y (1 -
        y))`` and ``grad t`` (0 outside the open support).
    grad_tau : ndarray
        Only with ``tau_grad=True``: ``grad (1 / tau - t d)`` summed to
        ``tau``'s shape.
    {density_raises}
    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> dy, dl = gnp.binary_concrete_log_prob_backward(1.0, np.array(0.5), np.array(0.0))
    >>> float(dy), float(dl)
    (0.0, 0.0)
    """
    return run(OPS["binary_concrete_log_prob_backward"], (grad, y, logits), -1, None, tau=tau, tau_grad=tau_grad)


