"""Public functions of ordered samples without replacement: the
Plackett-Luce log-probability of a ranking and its backward pass
(``categorical(..., replace=False)`` draws the rankings)."""

from __future__ import annotations

from ._ops import OPS, run
from numpy.typing import ArrayLike

from ._validation import Array


def plackett_luce_log_prob(
    logits: ArrayLike, index: ArrayLike, /, *, axis: int = -1, out: Array | None = None
) -> Array:
    """Log-probability of an ordered partial ranking under the Plackett-Luce law.

    Parameters
    ----------
    logits : array_like
        Unnormalised log-probabilities along ``axis``; ``-inf`` masks a
        category.
    index : array_like of int
        The ranking of each row: the batch shape (``logits.shape`` without
        ``axis``) followed by one axis of ``k`` category indices in the order
        drawn (``categorical(logits, num_samples=k, replace=False)``).
    axis : int, optional
        The category axis.  Default ``-1``.
    out : ndarray, optional
        Where to write the result (the batch shape); see "Output arrays" in
        the README.

    Returns
    -------
    ndarray
        ``log P(index)`` per row, of the batch shape, in the logits' dtype.

    Raises
    ------
    TypeError
        Unsupported array type or dtype, a non-integer ``index``.
    ValueError
        ``index`` of the wrong shape, or holding a value outside ``[0, K)``
        (the message names the row and the value).
    numpy.exceptions.AxisError
        ``axis`` out of range.

    Notes
    -----
    ``sum_q logits[i_q] - logsumexp(logits over the categories not in i_0 ..
    i_{q-1})``: the probability of drawing ``i_0``, then ``i_1`` from the
    rest, and so on.  Every normaliser is a sum of positive terms (the
    categories never chosen summed directly, then ``logaddexp`` of the chosen
    ones from the last back), never a total less the mass chosen, so a
    ranking whose first choices hold ``1 - 1e-12`` of the mass keeps full
    precision.  ``-inf`` categories never count.  A ranking that repeats a
    category or chooses a ``-inf`` one has probability 0: the result is
    ``-inf`` (and its gradient 0).  NaN or ``+inf`` logits give NaN.

    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> p = np.array([0.5, 0.3, 0.2])
    >>> round(float(np.exp(gnp.plackett_luce_log_prob(np.log(p), [1, 0]))), 12)  # 0.3 * 0.5 / 0.7
    0.214285714286

    References
    ----------
    Plackett, "The Analysis of Permutations", Applied Statistics 24, 1975;
    Luce, "Individual Choice Behavior", 1959.
    """
    return run(OPS["plackett_luce_log_prob"], (logits, index), axis, out)


def plackett_luce_log_prob_backward(
    grad: ArrayLike, logits: ArrayLike, index: ArrayLike, /, *, axis: int = -1, out: Array | None = None
) -> Array:
    """Vector-Jacobian product of :func:`plackett_luce_log_prob` with respect to the logits.

    Parameters
    ----------
    grad : array_like
        The gradient of the loss with respect to the log-probabilities (the
        batch shape).
    logits : array_like
        The logits of the forward call.
    index : array_like of int
        The rankings of the forward call.
    axis : int, optional
        The category axis.  Default ``-1``.
    out : ndarray, optional
        Where to write the result (the logits' shape).

    Returns
    -------
    ndarray
        ``grad * d log P(index) / d logits``, of the logits' shape.

    Raises
    ------
    TypeError, ValueError, numpy.exceptions.AxisError
        As :func:`plackett_luce_log_prob`; ``grad`` that does not fit the
        batch shape.

    Notes
    -----
    ``sum_q onehot(i_q) - softmax(logits over the categories not in i_0 ..
    i_{q-1})``, per element: ``-A exp(logits_j - L)`` for a category never
    chosen and ``(1 - p_q) - (the later-step terms)`` for ``i_q``, with ``1 -
    p_q`` the ratio of two normalisers (no difference); 0 for a ranking of
    probability 0.

    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> g = gnp.plackett_luce_log_prob_backward(1.0, np.zeros(3), [2, 0])
    >>> g.round(4).tolist(), float(g.sum())
    ([0.1667, -0.8333, 0.6667], 0.0)
    """
    return run(OPS["plackett_luce_log_prob_backward"], (grad, logits, index), axis, out)
