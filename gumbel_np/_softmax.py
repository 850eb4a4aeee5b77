"""logsumexp, softmax, log_softmax and their analytic backward passes."""

from __future__ import annotations

from numpy.typing import ArrayLike

from ._ops import OPS, run
from ._validation import Array, shared_docs

__all__ = [
    "log_softmax",
    "log_softmax_backward",
    "logsumexp",
    "logsumexp_backward",
    "softmax",
    "softmax_backward",
]


@shared_docs
def logsumexp(
    x: ArrayLike, /, *, axis: int = -1, keepdims: bool = False, out: Array | None = None
) -> Array:
    """Log of the sum of exponentials along an axis, computed stably.

    Parameters
    ----------
    x : array_like
        Input (NumPy or CuPy array, or anything ``asarray`` accepts).
    axis : int, optional
        The axis to reduce.  Default ``-1``.
    keepdims : bool, optional
        Keep the reduced axis with length one.
    out : ndarray, optional
        Where to write the result: an array of the result's shape and dtype
        (and array type), returned.  See "Output arrays" in the README.

    Returns
    -------
    ndarray
        ``log(sum(exp(x), axis))``, of ``x``'s float dtype (integers and bools
        give float64).

    Raises
    ------
    {common_raises}
    TypeError
        Unsupported array type or dtype.
    numpy.exceptions.AxisError
        ``axis`` out of range.

    Notes
    -----
    With ``m = max(x)`` along the axis, ``logsumexp(x) = m + log(sum(exp(x -
    m)))``, so nothing overflows.  A row that holds NaN gives NaN, an all
    ``-inf`` (or empty) row gives ``-inf``, a row that holds ``+inf`` gives
    ``+inf``, as in :func:`scipy.special.logsumexp`.

    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> float(gnp.logsumexp(np.array([1000.0, 1000.0])))
    1000.6931471805599
    >>> gnp.logsumexp(np.log([[1.0, 3.0], [2.0, 2.0]]), keepdims=True).shape
    (2, 1)
    """
    return run(OPS["logsumexp"], (x,), axis, out, keepdims=keepdims)


@shared_docs
def softmax(x: ArrayLike, /, *, axis: int = -1, out: Array | None = None) -> Array:
    """Softmax along an axis, computed stably.

    Parameters
    ----------
    x : array_like
        Input logits.
    axis : int, optional
        The axis along which the result sums to one.  Default ``-1``.
    out : ndarray, optional
        Where to write the result: an array of the result's shape and dtype
        (and array type), returned.  See "Output arrays" in the README.

    Returns
    -------
    ndarray
        ``exp(x - logsumexp(x))``, the shape and float dtype of ``x``.

    Raises
    ------
    {common_raises}
    TypeError
        Unsupported array type or dtype.
    numpy.exceptions.AxisError
        ``axis`` out of range.

    Notes
    -----
    ``softmax(x)_j = exp(x_j - m) / sum_i exp(x_i - m)`` with ``m = max(x)``.
    Entries of ``-inf`` get probability 0 (masking).  A NaN row, an all
    ``-inf`` row and a row holding ``+inf`` give NaN, as in
    :func:`scipy.special.softmax`.

    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> gnp.softmax(np.array([0.0, np.log(3.0), -np.inf])).round(6)
    array([0.25, 0.75, 0.  ])
    """
    return run(OPS["softmax"], (x,), axis, out)


@shared_docs
def log_softmax(x: ArrayLike, /, *, axis: int = -1, out: Array | None = None) -> Array:
    """Logarithm of the softmax along an axis, computed stably.

    Parameters
    ----------
    x : array_like
        Input logits.
    axis : int, optional
        The normalised axis.  Default ``-1``.
    out : ndarray, optional
        Where to write the result: an array of the result's shape and dtype
        (and array type), returned.  See "Output arrays" in the README.

    Returns
    -------
    ndarray
        ``x - logsumexp(x)``, the shape and float dtype of ``x``.

    Raises
    ------
    {common_raises}
    TypeError
        Unsupported array type or dtype.
    numpy.exceptions.AxisError
        ``axis`` out of range.

    Notes
    -----
    Computed as ``(x - m) - log(sum(exp(x - m)))`` with ``m = max(x)``: exact
    for entries far below the maximum where ``log(softmax(x))`` would give
    ``-inf``.  NaN and all ``-inf`` rows give NaN.

    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> gnp.log_softmax(np.array([0.0, -1000.0]))
    array([    0., -1000.])
    """
    return run(OPS["log_softmax"], (x,), axis, out)


@shared_docs
def logsumexp_backward(
    grad: ArrayLike, x: ArrayLike, /, *, axis: int = -1, keepdims: bool = False, out: Array | None = None
) -> Array:
    """Vector-Jacobian product of :func:`logsumexp`.

    Parameters
    ----------
    grad : array_like
        ``dL/dlogsumexp``, the shape of ``logsumexp(x, axis=axis,
        keepdims=keepdims)`` (or broadcastable to it).
    x : array_like
        The forward input.
    axis, keepdims
        As given to the forward call.
    out : ndarray, optional
        Where to write the result: an array of the result's shape and dtype
        (and array type), returned.  See "Output arrays" in the README.

    Returns
    -------
    ndarray
        ``dL/dx = grad * softmax(x)``, the shape of ``x``.

    Raises
    ------
    {common_raises}
    TypeError
        Unsupported array type or dtype, NumPy and CuPy mixed.
    ValueError
        ``grad`` does not fit the forward output's shape.
    numpy.exceptions.AxisError
        ``axis`` out of range.

    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> gnp.logsumexp_backward(np.array(2.0), np.log([1.0, 3.0]))
    array([0.5, 1.5])
    """
    return run(OPS["logsumexp_backward"], (grad, x), axis, out, keepdims=keepdims)


@shared_docs
def softmax_backward(
    grad: ArrayLike, y: ArrayLike, /, *, axis: int = -1, out: Array | None = None
) -> Array:
    """Vector-Jacobian product of :func:`softmax`, from the forward output.

    Parameters
    ----------
    grad : array_like
        ``dL/dy``, the shape of ``y``.
    y : array_like
        The forward output ``softmax(x, axis=axis)``.
    axis : int, optional
        As given to the forward call.
    out : ndarray, optional
        Where to write the result: an array of the result's shape and dtype
        (and array type), returned.  See "Output arrays" in the README.

    Returns
    -------
    ndarray
        ``dL/dx = y * (grad - sum(grad * y, axis))``.

    Raises
    ------
    {common_raises}
    TypeError
        Unsupported array type or dtype, NumPy and CuPy mixed.
    ValueError
        ``grad`` and ``y`` differ in shape.
    numpy.exceptions.AxisError
        ``axis`` out of range.

    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> gnp.softmax_backward(np.array([1.0, 0.0]), np.array([0.25, 0.75]))
    array([ 0.1875, -0.1875])
    """
    return run(OPS["softmax_backward"], (grad, y), axis, out)


@shared_docs
def log_softmax_backward(
    grad: ArrayLike, y: ArrayLike, /, *, axis: int = -1, out: Array | None = None
) -> Array:
    """Vector-Jacobian product of :func:`log_softmax`, from the forward output.

    Parameters
    ----------
    grad : array_like
        ``dL/dy``, the shape of ``y``.
    y : array_like
        The forward output ``log_softmax(x, axis=axis)``.
    axis : int, optional
        As given to the forward call.
    out : ndarray, optional
        Where to write the result: an array of the result's shape and dtype
        (and array type), returned.  See "Output arrays" in the README.

    Returns
    -------
    ndarray
        ``dL/dx = grad - exp(y) * sum(grad, axis)``.

    Raises
    ------
    {common_raises}
    TypeError
        Unsupported array type or dtype, NumPy and CuPy mixed.
    ValueError
        ``grad`` and ``y`` differ in shape.
    numpy.exceptions.AxisError
        ``axis`` out of range.

    Examples
    --------
    >>> import numpy as np
    >>> import gumbel_np as gnp
    >>> gnp.log_softmax_backward(np.array([1.0, 1.0]), np.log([0.25, 0.75]))
    array([ 0.5, -0.5])
    """
    return run(OPS["log_softmax_backward"], (grad, y), axis, out)
