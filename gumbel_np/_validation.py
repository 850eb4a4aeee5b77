"""Input validation and the (rows, K) view every kernel works on.

One vocabulary of errors (DESIGN section 5); every message starts with the
public function's name and shows the offending value.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.exceptions import AxisError

from ._dispatch import namespace

_NATIVE = (np.dtype(np.float32), np.dtype(np.float64))


def compute_dtypes(
    dtype: np.dtype, func: str, name: str = "x", half_storage: bool = False
) -> tuple[np.dtype, np.dtype]:
    """``(dtype handed to the backend, result dtype)`` for an input dtype (DESIGN section 5).

    float32/float64 run natively; float16 computes in float32 and returns
    float16 (a backend with ``half_storage`` takes float16 arrays as they are,
    loading and storing half and computing in float32; the others get float32
    copies); integers and bools promote to float64 as NumPy does.
    """
    dtype = np.dtype(dtype)
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


def float_array(
    xp: Any, x: Any, func: str, name: str = "x", half_storage: bool = False
) -> tuple[Any, np.dtype]:
    """``x`` as an array of the dtype the backend takes, and the dtype of the result."""
    try:
        a = xp.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{func}: {name} is not an array: {exc}") from None
    compute, result = compute_dtypes(a.dtype, func, name, half_storage)
    if a.dtype != compute:
        a = a.astype(compute)
    return a, result


def normalize_axis(axis: Any, ndim: int, func: str) -> int:
    try:
        ax = operator.index(axis)
    except TypeError:
        raise TypeError(f"{func}: axis must be an integer, not {axis!r}") from None
    if not -ndim <= ax < ndim:
        raise AxisError(ax, ndim, func)
    return ax % ndim


@dataclass(frozen=True)
class Rows:
    """How an array maps onto the kernels' 2-D C-contiguous ``(rows, K)`` layout."""

    batch: tuple[int, ...]
    k: int
    axis: int

    @property
    def rows(self) -> int:
        return math.prod(self.batch)

    def shape2d(self) -> tuple[int, int]:
        return (self.rows, self.k)

    def restore(self, xp: Any, a2d: Any) -> Any:
        """A ``(rows, K)`` result back in the input's axis order (a view)."""
        return last_axis_to(xp, a2d.reshape(self.batch + (self.k,)), self.axis)

    def restore_batch(self, a1d: Any, keepdims: bool = False) -> Any:
        """A per-row ``(rows,)`` result in the batch shape."""
        out = a1d.reshape(self.batch)
        if keepdims:
            out = out.reshape(self.batch[: self.axis] + (1,) + self.batch[self.axis :])
        return out


def layout(shape: tuple[int, ...], axis: Any, func: str) -> Rows:
    ax = normalize_axis(axis, len(shape), func)
    batch = tuple(shape[:ax]) + tuple(shape[ax + 1 :])
    return Rows(batch=batch, k=int(shape[ax]), axis=ax)


def to_rows(xp: Any, a: Any, lay: Rows) -> Any:
    """``a`` as a C-contiguous ``(rows, K)`` array; no copy when already so."""
    return xp.ascontiguousarray(axis_to_last(xp, a, lay.axis)).reshape(lay.shape2d())


def axis_to_last(xp: Any, a: Any, axis: int) -> Any:
    """``moveaxis(a, axis, -1)`` for a normalised ``axis``; ``a`` itself when
    it is the last axis already (``moveaxis`` costs microseconds, a
    noticeable part of a small call)."""
    return a if axis == a.ndim - 1 else xp.moveaxis(a, axis, -1)


def last_axis_to(xp: Any, a: Any, axis: int) -> Any:
    """``moveaxis(a, -1, axis)`` for a normalised ``axis`` (the inverse of
    :func:`axis_to_last`)."""
    return a if axis == a.ndim - 1 else xp.moveaxis(a, -1, axis)


def check_shape(shape: Any, func: str) -> tuple[int, ...]:
    """A shape argument: an int or a sequence of non-negative ints."""
    try:
        dims = (operator.index(shape),)
    except TypeError:
        try:
            dims = tuple(operator.index(s) for s in shape)
        except TypeError:
            raise TypeError(f"{func}: shape must be an int or a sequence of ints, not {shape!r}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"{func}: shape must not have negative entries, got {dims}")
    return dims


def check_row_ids(xp: Any, row_ids: Any, lay: Rows, func: str) -> Any:
    """``row_ids`` as a contiguous int64 ``(rows,)`` array (or None)."""
    if row_ids is None:
        return None
    ids = xp.asarray(row_ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{func}: row_ids must be an integer array, got dtype {ids.dtype}")
    if ids.shape != lay.batch:
        raise ValueError(
            f"{func}: row_ids must have the batch shape {lay.batch}, got shape {ids.shape}"
        )
    return xp.ascontiguousarray(ids.astype(np.int64, copy=False)).reshape(lay.rows)


def same_shape(func: str, **arrays: Any) -> None:
    """ValueError unless all the named arrays have one shape."""
    shapes = {name: a.shape for name, a in arrays.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{n} {s}" for n, s in shapes.items())
        raise ValueError(f"{func}: shapes must match, got {listed}")


def check_tau(xp: Any, tau: Any, lay: Rows, dtype: np.dtype, func: str) -> tuple[Any, tuple[int, ...]]:
    """``tau`` as a ``(rows,)`` (or ``(1,)`` for a scalar) array of ``dtype``
    (float32 for float16 data), and ``tau``'s own shape.

    Every value must be finite and > 0 once in ``dtype``, with a finite
    ``1 / tau`` (the kernels scale by it): -0.0, NaN, inf, values that
    underflow to 0 and subnormal values whose reciprocal overflows (below
    about 2.9e-39 in float32) are rejected.
    """
    if np.dtype(dtype) == np.float16:
        dtype = np.dtype(np.float32)  # half data computes in float32
    t = xp.asarray(tau)
    if t.dtype.kind not in "biuf":
        raise TypeError(f"{func}: tau must be a real number or array, got dtype {t.dtype}")
    tc = t.astype(dtype)
    with np.errstate(divide="ignore", over="ignore"):
        bad = ~(xp.isfinite(tc) & (tc > 0) & xp.isfinite(1 / tc))
    if bool(bad.any()):
        first = t.reshape(-1)[int(xp.argmax(bad.reshape(-1)))]
        raise ValueError(
            f"{func}: tau must be finite and > 0 with a finite 1 / tau (in {np.dtype(dtype)}), got {float(first)!r}"
        )
    if t.ndim == 0:
        return tc.reshape(1), ()
    try:
        full = xp.broadcast_to(tc, lay.batch)
    except ValueError:
        raise ValueError(
            f"{func}: tau of shape {t.shape} does not broadcast to the batch shape {lay.batch}"
        ) from None
    return xp.ascontiguousarray(full).reshape(lay.rows), t.shape


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


def backward_inputs(func: str, grad: Any, saved: Any, saved_name: str, *others: Any):
    """Namespace, backend, ``grad`` and the saved forward array in one dtype,
    and the result dtype, for a backward pass (``others`` join the array-type
    check only)."""
    xp, backend = namespace(func, grad, saved, *others)
    half = half_storage(backend)
    g, g_result = float_array(xp, grad, func, "grad", half)
    o, o_result = float_array(xp, saved, func, saved_name, half)
    compute = np.result_type(g.dtype, o.dtype)
    result = np.result_type(g_result, o_result)
    return xp, backend, g.astype(compute, copy=False), o.astype(compute, copy=False), result


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
        return xp.empty(shape2d, compute)
    if not isinstance(out, xp.ndarray):
        raise TypeError(
            f"{func}: out must be a {xp.__name__} array, not {type(out).__module__}.{type(out).__name__}"
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
    return xp.empty(shape2d, compute)


def deliver(xp: Any, res: Any, out: Any) -> Any:
    """The returned array: ``res``, or ``out`` holding it (copied there when
    the kernel wrote into a temporary)."""
    if out is None:
        return res
    if not xp.may_share_memory(res, out):
        xp.copyto(out, res)
    return out
