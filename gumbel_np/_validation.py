"""Input validation and the (rows, K) view every kernel works on.

One vocabulary of errors (DESIGN section 5); every message starts with the
public function's name and shows the offending value.
"""

from __future__ import annotations

import math
import numbers
import operator
from typing import Any

import numpy as np
from numpy.exceptions import AxisError


_NATIVE = (np.dtype(np.float32), np.dtype(np.float64))


Array = np.ndarray
"""The type of a result in the signatures: a ``numpy.ndarray``, or a
``cupy.ndarray`` for CuPy input (which follows the same protocol)."""

def compute_dtypes(
    dtype: np.dtype, func: str, name: str = "x", half_storage: bool = False
) -> tuple[np.dtype, np.dtype]:
    """``(dtype handed to the backend, result dtype)`` for an input dtype (DESIGN section 5).

    float32/float64 run natively; float16 computes in float32 and returns
    float16 (a backend with ``half_storage`` takes float16 arrays as they are,
    loading and storing half and computing in float32; the others get float32
    copies); integers and bools promote to float64 as NumPy does.
    """
    dtype = native_order(np.dtype(dtype))
    if dtype in _NATIVE:
        return dtype, dtype
    if dtype == np.float16:
        return (dtype if half_storage else np.dtype(np.float32)), dtype
    if dtype.kind in "biu":
        return np.dtype(np.float64), np.dtype(np.float64)
    raise TypeError(
        f"{func}: {name} has unsupported dtype {dtype}; "
        "expected float16, float32, float64, an integer or bool"
    )


def native_order(dtype: np.dtype) -> np.dtype:
    """``dtype`` in the machine's byte order (big-endian input is accepted,
    as NumPy and SciPy accept it, and converted once)."""
    return dtype.newbyteorder("=") if dtype.byteorder not in "=|" else dtype


def as_array(xp: Any, x: Any, func: str, name: str) -> Any:
    """``xp.asarray(x)``, refusing what it would silently misread.

    A ``numpy.ma.MaskedArray`` is refused (``asarray`` drops its mask, and
    this library's masking is ``-inf``: pass ``x.filled(-np.inf)``), as are
    inputs that are not arrays at all.
    """
    if isinstance(x, np.ma.MaskedArray):
        raise TypeError(
            f"{func}: {name} is a numpy.ma.MaskedArray, whose mask would be ignored; "
            f"pass {name}.filled(...) (for logits, -inf masks a category)"
        )
    try:
        return xp.asarray(x)
    except (TypeError, ValueError, OverflowError) as exc:
        raise TypeError(f"{func}: {name} is not an array: {exc}") from None


def check_flag(value: Any, func: str, name: str) -> bool:
    """A boolean option (``hard``, ``keepdims``, ...): a Python or NumPy bool
    only, so that ``'no'``, ``2``, ``None`` or an array are not read by their
    truthiness."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{func}: {name} must be True or False, not {value!r}")


def float_array(
    xp: Any, x: Any, func: str, name: str = "x", half_storage: bool = False
) -> tuple[Any, np.dtype]:
    """``x`` as an array of the dtype the backend takes, and the dtype of the result."""
    a = as_array(xp, x, func, name)
    compute, result = compute_dtypes(a.dtype, func, name, half_storage)
    if a.dtype != compute:
        a = a.astype(compute)
    return a, result


def integer(value: Any, func: str, rule: str) -> int:
    """``value`` as a Python int (anything ``operator.index`` takes, but not a
    bool); a TypeError saying ``rule`` otherwise."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{func}: {rule}, not {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{func}: {rule}, not {value!r}") from None


def normalize_axis(axis: Any, ndim: int, func: str) -> int:
    """``axis`` in ``[0, ndim)``; a 0-d array counts as one of one category,
    so ``axis`` 0 and -1 both name that category axis."""
    ax = integer(axis, func, "axis must be an integer")
    n = max(ndim, 1)
    if not -n <= ax < n:
        raise AxisError(ax, ndim, func)
    return ax % n


class Rows:
    """How an array maps onto the kernels' 2-D C-contiguous ``(rows, K)`` layout.

    ``batch``: the shape without the category axis; ``k``: the category
    axis's length; ``axis``: its (normalised) position; ``scalar``: a 0-d
    input, taken as one row of one category (as SciPy and PyTorch do);
    ``rows``: the number of rows.  (A plain class: it is made at every call.)
    """

    __slots__ = ("batch", "k", "axis", "scalar", "rows")

    def __init__(self, batch: tuple[int, ...], k: int, axis: int, scalar: bool = False) -> None:
        self.batch, self.k, self.axis, self.scalar = batch, k, axis, scalar
        self.rows = math.prod(batch)

    def __repr__(self) -> str:
        return f"Rows(batch={self.batch}, k={self.k}, axis={self.axis}, scalar={self.scalar})"

    def shape2d(self) -> tuple[int, int]:
        return (self.rows, self.k)

    def restore(self, xp: Any, a2d: Any) -> Any:
        """A ``(rows, K)`` result back in the input's axis order (a view)."""
        if self.scalar:
            return a2d.reshape(())
        return last_axis_to(xp, a2d.reshape(self.batch + (self.k,)), self.axis)

    def batch_shape(self, keepdims: bool = False) -> tuple[int, ...]:
        """The shape of a per-row result (with the category axis kept as
        length 1 when ``keepdims``; a 0-d input's is 0-d either way)."""
        if keepdims and not self.scalar:
            return self.batch[: self.axis] + (1,) + self.batch[self.axis :]
        return self.batch

    def restore_batch(self, a1d: Any, keepdims: bool = False) -> Any:
        """A per-row ``(rows,)`` result in the batch shape."""
        return a1d.reshape(self.batch_shape(keepdims))


def layout(shape: tuple[int, ...], axis: Any, func: str) -> Rows:
    ax = normalize_axis(axis, len(shape), func)
    if len(shape) == 0:
        return Rows(batch=(), k=1, axis=0, scalar=True)
    batch = tuple(shape[:ax]) + tuple(shape[ax + 1 :])
    return Rows(batch=batch, k=int(shape[ax]), axis=ax)


def to_rows(xp: Any, a: Any, lay: Rows) -> Any:
    """``a`` as a C-contiguous ``(rows, K)`` array; no copy when already so."""
    if lay.scalar:
        return a.reshape(lay.shape2d())
    return xp.ascontiguousarray(axis_to_last(xp, a, lay.axis)).reshape(lay.shape2d())


def axis_to_last(xp: Any, a: Any, axis: int) -> Any:
    """``moveaxis(a, axis, -1)`` for a normalised ``axis``; ``a`` itself when
    it is the last axis already (``moveaxis`` costs microseconds, a
    noticeable part of a small call).  A 0-d ``a`` is returned as it is."""
    return a if axis >= a.ndim - 1 else xp.moveaxis(a, axis, -1)


def last_axis_to(xp: Any, a: Any, axis: int) -> Any:
    """``moveaxis(a, -1, axis)`` for a normalised ``axis`` (the inverse of
    :func:`axis_to_last`)."""
    return a if axis >= a.ndim - 1 else xp.moveaxis(a, -1, axis)


def check_shape(shape: Any, func: str) -> tuple[int, ...]:
    """A shape argument: an int or a sequence of non-negative ints (``()`` is
    a 0-d shape)."""
    bad = TypeError(f"{func}: shape must be an int or a sequence of ints, not {shape!r}")
    if isinstance(shape, (bool, np.bool_)):
        raise bad
    try:
        dims = (operator.index(shape),)
    except TypeError:
        try:
            items = tuple(shape)
        except TypeError:
            raise bad from None
        if any(isinstance(d, (bool, np.bool_)) for d in items):
            raise bad from None
        try:
            dims = tuple(operator.index(d) for d in items)
        except TypeError:
            raise bad from None
    if any(d < 0 for d in dims):
        raise ValueError(f"{func}: shape must not have negative entries, got {dims}")
    return dims


def check_row_ids(xp: Any, row_ids: Any, lay: Rows, func: str) -> Any:
    """``row_ids`` as a contiguous int64 ``(rows,)`` array (or None).

    Row ids are stream ids in ``[0, 2**63)``: a negative id would alias the
    id ``2**64 + id`` of the counter, so it is refused rather than wrapped.
    """
    if row_ids is None:
        return None
    ids = as_array(xp, row_ids, func, "row_ids")
    if ids.dtype.kind not in "iu":
        if ids.dtype.kind in "fO" and not hasattr(row_ids, "dtype"):
            # A list of Python ints that no int64 holds becomes object or
            # float64 in asarray: name the value rather than the dtype.
            values = np.asarray(row_ids, dtype=object).reshape(-1)
            if values.size and all(
                isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) for v in values
            ):
                first = next(int(v) for v in values if not 0 <= int(v) < 2**63)
                raise ValueError(f"{func}: row_ids must lie in [0, 2**63), got {first}")
        raise TypeError(f"{func}: row_ids must be an integer array, got dtype {ids.dtype}")
    if ids.shape != lay.batch:
        raise ValueError(
            f"{func}: row_ids must have the batch shape {lay.batch}, got shape {ids.shape}"
        )
    check_row_id_values(xp, ids, func)
    return xp.ascontiguousarray(ids.astype(np.int64, copy=False)).reshape(lay.rows)


def check_row_id_values(xp: Any, ids: Any, func: str) -> None:
    """ValueError naming the first of the integer ``ids`` outside ``[0,
    2**63)``."""
    if ids.size:
        if ids.dtype.kind == "i" and bool((ids < 0).any()):
            first = int(ids.reshape(-1)[int(xp.argmax((ids < 0).reshape(-1)))])
            raise ValueError(f"{func}: row_ids must lie in [0, 2**63), got {first}")
        if ids.dtype.kind == "u" and ids.dtype.itemsize == 8 and bool((ids >= np.uint64(2**63)).any()):
            first = int(ids.reshape(-1)[int(xp.argmax((ids >= np.uint64(2**63)).reshape(-1)))])
            raise ValueError(f"{func}: row_ids must lie in [0, 2**63), got {first}")


MAX_DRAWS = 1 << 28
"""Draw indices lie below this: the counter's draw word holds the draw index
in its low 28 bits and the stream domain in the top 4 (``kernels/philox.py``)."""


def check_num_samples(num_samples: Any, func: str) -> int | None:
    """``num_samples``: None (one draw, no sample axis) or an int in
    ``[1, 2**28]``."""
    if num_samples is None:
        return None
    s = integer(num_samples, func, "num_samples must be an int")
    if s < 1:
        raise ValueError(f"{func}: num_samples must be >= 1, got {s}")
    if s > MAX_DRAWS:
        raise ValueError(
            f"{func}: num_samples must be at most 2**28 = {MAX_DRAWS} (the draw indices of the stream), got {s}"
        )
    return s


def check_noise_dtype(noise_dtype: Any, data: np.dtype, func: str) -> np.dtype:
    """The ``noise_dtype`` option (not None): float64, or the dtype the
    logits draw anyway (float32 for float32 and float16 logits)."""
    own = np.dtype(np.float64) if np.dtype(data) == np.float64 else np.dtype(np.float32)
    try:
        want = np.dtype(noise_dtype)
    except TypeError:
        want = None
    if want is None or want not in (own, np.dtype(np.float64)):
        also = "" if own == np.float64 else f" (or {own}, the default for {np.dtype(data)} logits)"
        raise TypeError(f"{func}: noise_dtype must be None or float64{also}, not {noise_dtype!r}")
    return want


def check_limits(limits: Any, func: str) -> tuple[float, float]:
    """The hard concrete's stretch interval ``(lo, hi)``: two finite real
    numbers with ``lo < 0`` and ``hi > 1`` (so that the gate has exact zeros
    and ones, and ``log(-lo / hi)`` is finite)."""
    bad = TypeError(f"{func}: limits must be a pair of real numbers (lo, hi), not {limits!r}")
    if isinstance(limits, (str, bytes)):
        raise bad
    try:
        lo, hi = limits
    except (TypeError, ValueError):
        raise bad from None
    if any(isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) for v in (lo, hi)):
        raise bad
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < 0.0 and hi > 1.0):
        raise ValueError(
            f"{func}: limits must be finite with lo < 0 and hi > 1 (the gate's exact zeros and ones), "
            f"got {tuple(limits)!r}"
        )
    return lo, hi


def noise_dtype(dtype: Any, func: str) -> np.dtype:
    """The ``dtype`` option of the noise: float16, float32 or float64."""
    try:
        want = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{func}: dtype must be float16, float32 or float64, not {dtype!r}") from None
    if want.kind != "f" or want.itemsize > 8:
        raise TypeError(f"{func}: dtype must be float16, float32 or float64, not {want}")
    return want


def same_shape(func: str, **arrays: Any) -> None:
    """ValueError unless all the named arrays have one shape."""
    shapes = {name: a.shape for name, a in arrays.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{n} {s}" for n, s in shapes.items())
        raise ValueError(f"{func}: shapes must match, got {listed}")


def scalar_tau(tau: Any, dtype: np.dtype) -> Any:
    """A Python ``float`` (or exact ``int``) ``tau`` between the smallest
    normal and the largest finite value of ``dtype`` (float32 for float16
    data), as its ``(1,)`` NumPy array of that dtype; None for anything else
    (which :func:`check_tau` then checks as an array).  Such a value is
    finite and > 0 in ``dtype`` with a finite ``1 / tau``, as
    :func:`check_tau` requires; this is the common case without the array
    checks (a small call spends most of its time in Python)."""
    if not (type(tau) is float or (type(tau) is int and abs(tau) < 2**53)):
        return None
    dtype = _COMPUTE_OF_HALF.get(dtype, dtype)
    lo, hi = _NORMAL_RANGE[dtype]
    v = float(tau)
    return np.array([v], dtype) if lo <= v <= hi else None


_COMPUTE_OF_HALF = {np.dtype(np.float16): np.dtype(np.float32)}
_NORMAL_RANGE = {
    np.dtype(t): (float(np.finfo(t).tiny), float(np.finfo(t).max)) for t in (np.float32, np.float64)
}


def check_tau(
    xp: Any, tau: Any, lay: Rows, dtype: np.dtype, func: str, what: str = "the batch shape"
) -> tuple[Any, tuple[int, ...]]:
    """``tau`` as a ``(rows,)`` (or ``(1,)`` for a scalar) array of ``dtype``
    (float32 for float16 data), and ``tau``'s shape in the batch's rank
    (what a temperature gradient is summed to).

    ``tau`` broadcasts to the batch shape, or has the logits' rank with
    length 1 along the category axis (``tau[:, None]`` against ``(rows, K)``
    logits, as PyTorch code writes it).

    Every value must be finite and > 0 once in ``dtype``, with a finite
    ``1 / tau`` (the kernels scale by it): -0.0, NaN, inf, values that
    underflow to 0 and subnormal values whose reciprocal overflows (below
    about 2.9e-39 in float32) are rejected.
    """
    if np.dtype(dtype) == np.float16:
        dtype = np.dtype(np.float32)  # half data computes in float32
    t = scalar_tau(tau, dtype)
    if t is not None:
        # On the GPU a fill, not a copy: no wait for the device.
        return (t if xp is np else xp.full(1, float(t[0]), t.dtype)), ()
    t = as_array(xp, tau, func, "tau")
    if t.dtype.kind not in "iuf":
        raise TypeError(f"{func}: tau must be a real number or array, not {tau!r}"
                        if t.ndim == 0 else f"{func}: tau must be a real array, got dtype {t.dtype}")
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        tc = t.astype(dtype)
        bad = ~(xp.isfinite(tc) & (tc > 0) & xp.isfinite(1 / tc))
    if bool(bad.any()):
        first = t.reshape(-1)[int(xp.argmax(bad.reshape(-1)))]
        raise ValueError(
            f"{func}: tau must be finite and > 0 with a finite 1 / tau (in {np.dtype(dtype)}), got {float(first)!r}"
        )
    if t.ndim == 0:
        return tc.reshape(1), ()
    if not lay.scalar and t.ndim == len(lay.batch) + 1 and t.shape[lay.axis] == 1:
        tc = tc.reshape(t.shape[: lay.axis] + t.shape[lay.axis + 1 :])
    try:
        full = xp.broadcast_to(tc, lay.batch)
    except ValueError:
        raise ValueError(
            f"{func}: tau of shape {t.shape} does not broadcast to {what} {lay.batch}"
            + ("" if lay.scalar else f" (nor has the logits' rank with length 1 along axis {lay.axis})")
        ) from None
    return xp.ascontiguousarray(full).reshape(lay.rows), tc.shape


def sum_to_shape(xp: Any, a: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``a`` over the axes that broadcasting ``shape`` to ``a.shape`` added."""
    lead = a.ndim - len(shape)
    if lead:
        a = a.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and a.shape[i] != 1)
    if axes:
        a = a.sum(axis=axes, keepdims=True)
    return a.reshape(shape)


def half_storage(backend: Any) -> bool:
    """Whether ``backend`` takes float16 arrays as they are."""
    return bool(getattr(backend, "HALF_STORAGE", False))


def compute_float(dtype: np.dtype) -> np.dtype:
    """The arithmetic dtype of data stored as ``dtype`` (float32 for float16)."""
    return np.dtype(np.float32) if np.dtype(dtype) == np.float16 else np.dtype(dtype)


def output(
    xp: Any,
    out: Any,
    func: str,
    shape: tuple[int, ...],
    result: np.dtype,
    compute: np.dtype,
    shape2d: tuple[int, ...],
    axis: int | None = None,
    inputs: tuple[Any, ...] = (),
) -> Any:
    """The array a kernel writes a result into, for an ``out=`` argument.

    The result has ``shape`` and dtype ``result`` for the caller, and is
    computed in ``compute`` as a C-contiguous ``shape2d`` array (with
    ``axis`` moved last, when given).  Without ``out`` that is a new array.
    With ``out`` (checked: same array type, shape and dtype, writeable) it is
    ``out``'s own memory where that is already such an array and overlaps no
    input, else a temporary that :func:`deliver` copies into ``out``.
    """
    if out is None:
        return empty(xp, shape2d, compute, func)
    if type(out) is not xp.ndarray:
        # Subclasses are refused: a matrix reshapes to 2-D behind the
        # kernel's back and a masked array has a mask the kernels cannot
        # honour; a plain base-class view (out.view(np.ndarray)) is the way.
        what = "a subclass of it: got " if isinstance(out, xp.ndarray) else ""
        raise TypeError(
            f"{func}: out must be a plain {xp.__name__}.ndarray, not {what}"
            f"{type(out).__module__}.{type(out).__name__}"
        )
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"{func}: out must have the result shape {tuple(shape)}, got shape {tuple(out.shape)}")
    if np.dtype(out.dtype) != np.dtype(result):
        raise TypeError(f"{func}: out must have the result dtype {np.dtype(result)}, got dtype {out.dtype}")
    if not getattr(out.flags, "writeable", True):  # CuPy arrays are always writeable
        raise ValueError(f"{func}: out is read-only")
    if np.dtype(out.dtype) == np.dtype(compute) and not any(
        xp.may_share_memory(out, a) for a in inputs if a is not None
    ):
        view = axis_to_last(xp, out, axis) if axis is not None else out
        if view.flags.c_contiguous:
            return view.reshape(shape2d)
    return empty(xp, shape2d, compute, func)


_MAX_BYTES = np.iinfo(np.intp).max
"""The largest array this platform can address, in bytes."""


def empty(xp: Any, shape: tuple[int, ...], dtype: np.dtype, func: str) -> Any:
    """``xp.empty(shape, dtype)``, with an error that names ``func`` and the
    size when the array cannot exist (ValueError: larger than the address
    space) or cannot be had (MemoryError)."""
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    if nbytes > _MAX_BYTES:
        raise ValueError(
            f"{func}: a result of shape {tuple(shape)} and dtype {np.dtype(dtype)} would need "
            f"{nbytes} bytes, more than this platform can address"
        )
    try:
        return xp.empty(shape, dtype)
    except MemoryError:
        raise MemoryError(
            f"{func}: cannot allocate a result of shape {tuple(shape)} and dtype {np.dtype(dtype)} "
            f"({nbytes / 2**30:.1f} GiB)"
        ) from None


def deliver(xp: Any, res: Any, out: Any) -> Any:
    """The returned array: ``res``, or ``out`` holding it (copied there when
    the kernel wrote into a temporary)."""
    if out is None:
        return res
    if not xp.may_share_memory(res, out):
        xp.copyto(out, res)
    return out


COMMON_RAISES = """TypeError, ValueError
        ``out`` not a plain array of the input's array type (subclasses
        such as ``numpy.matrix`` are refused) or of the wrong dtype
        (TypeError), of the wrong shape or read-only (ValueError).
    TypeError
        A masked array as input; a ``True``/``False`` option (where the
        function has one) given anything but a bool.
    MemoryError, ValueError
        A result that cannot be allocated, or that exceeds the address space."""
"""The ``Raises`` entries every public function shares (the validation here
raises them for all alike)."""


NOISE_DTYPE_DOC = """noise_dtype : None or float64, optional
        The dtype of the drawn noise; None (default): the logits' (float32
        for float32 and float16 logits).  ``float64`` draws the float64
        stream for float32 and float16 logits (53-bit uniforms, noise up to
        36.74 instead of 16.64, so events of probability down to about
        1e-16 rather than 6e-8 are sampled at their rate; see "Randomness
        contract" in the README): the call then computes in float64, at
        about twice the time, and returns the logits' dtype."""
"""The ``noise_dtype`` parameter of the samplers that take it."""


def shared_docs(func: Any) -> Any:
    """Put :data:`COMMON_RAISES` where ``func``'s docstring says
    ``{common_raises}``, and :data:`NOISE_DTYPE_DOC` at
    ``{noise_dtype_doc}``."""
    if func.__doc__ is not None:
        func.__doc__ = func.__doc__.replace("{common_raises}", COMMON_RAISES).replace(
            "{noise_dtype_doc}", NOISE_DTYPE_DOC
        )
    return func
