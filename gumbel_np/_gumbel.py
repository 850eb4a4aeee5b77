"""Gumbel noise, Gumbel-Max categorical sampling and the Gumbel-Softmax."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._dispatch import like_namespace
from ._random import RNGLike, philox_key
from ._validation import check_row_ids, check_shape, compute_dtypes, layout

__all__ = ["gumbel"]


def gumbel(
    shape: Any,
    /,
    *,
    rng: RNGLike = None,
    dtype: Any = np.float32,
    axis: int = -1,
    row_ids: Any = None,
    like: Any = None,
) -> Any:
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
    like : ndarray, optional
        A CuPy array puts the noise on its device; None or a NumPy array
        gives a NumPy array.

    Returns
    -------
    ndarray
        Noise of the given shape and dtype.

    Raises
    ------
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
    ``2**-24`` to ``1 - 2**-24``), float64 ``[-3.6037, 36.7368]`` (``U`` from
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
    func = "gumbel"
    dims = check_shape(shape, func)
    xp, backend = like_namespace(func, like)
    try:
        want = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{func}: dtype must be float16, float32 or float64, not {dtype!r}") from None
    if want.kind != "f" or want.itemsize > 8:
        raise TypeError(f"{func}: dtype must be float16, float32 or float64, not {want}")
    compute, _ = compute_dtypes(want, func, "dtype")
    lay = layout(dims, axis, func)
    ids = check_row_ids(xp, row_ids, lay, func)
    key = philox_key(rng, func)
    out = xp.empty(lay.shape2d(), compute)
    backend.gumbel_fwd(out, key, ids)
    return lay.restore(xp, out).astype(want, copy=False)
