"""Dask arrays: every public function as a lazy blockwise graph (DESIGN section 9).

The only module that knows Dask, and it never imports it speculatively:
:func:`~._ops.run` comes here only when ``dask.array`` is already in
``sys.modules`` (a Dask array can exist only then) or a noise function is
given ``chunks=``.

How a call becomes a graph, from the registry record (``_ops.OPS``) alone:

* Mixing rule.  If any array argument (positional, ``tau``, ``noise``,
  ``row_ids``, ``baseline``, ``like``) is a Dask array, the call is lazy and
  returns Dask arrays.  Every other array argument, NumPy, CuPy or an
  array-like, is taken as ``dask.array.asarray`` would take it; the data
  argument (the one whose layout the call follows: ``logits``, ``x``,
  ``y_soft``, ...) sets the chunks, and every other argument is broadcast
  (where the in-memory call broadcasts it) and rechunked to match.  Scalars
  stay scalars.  ``out=`` is refused: a Dask result is a new array.
* Each block is an in-memory call (:func:`~._ops.run`) on NumPy or CuPy
  chunks.  Its default row ids are its rows' flat positions in the whole
  batch, made from the block's location (``block_info``), so the result
  equals the in-memory call bit for bit for any chunking and scheduler; a
  ``row_ids=`` Dask array is rechunked with the batch and passed per block.
* The category axis.  ``categorical`` keeps it split: each category chunk
  proposes its best ``(logits - row max) + G`` (the noise of its own
  categories, from the counter), and a tree reduction keeps the best, ties to
  the lowest index; the row maximum is an exact reduction before it.  Every
  other operation works on whole rows and rechunks the axis to one chunk
  (shrinking the batch chunks where a row chunk would exceed Dask's
  ``array.chunk-size``); ``logsumexp`` too, because a tree of partial sums
  rounds differently from the kernel's one sum and would not match the
  in-memory result bit for bit.  The element-wise binary family keeps any
  chunking, except that functions drawing noise need the axis that indexes
  the stream whole.
* Sums over rows that the in-memory call makes (the temperature gradient of
  a shared ``tau``, the gradient of a broadcast ``logits_p``) are made in one
  task from the per-row (per-element) terms, in the in-memory layout, so
  they match it bit for bit.
* Bad input that shapes, dtypes and options reveal raises when the graph is
  built, with the in-memory message: the call is validated through the same
  code (``_ops._call``) on shape-only stand-ins of the Dask arrays.  What
  depends on values (NaN rows, indices out of range, ``tau`` values) raises
  when the block holding it is computed, with the same message and the
  row's position in the whole array; a count of such rows in the message is
  the block's.
* Threads: inside a task, Numba's thread count is capped (:func:`task_threads`)
  so that the scheduler's parallelism times Numba's stays within the cores.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import threading
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from numpy.exceptions import AxisError

from . import _ops
from ._dispatch import is_cupy_array, namespace
from ._ops import ARRAY_OPTIONS, OPS, Op, run
from ._random import philox_key
from ._validation import (
    check_flag,
    check_row_id_values,
    check_shape,
    compute_dtypes,
    noise_dtype,
    normalize_axis,
)

# --------------------------------------------------------------------------
# What this module knows of the registry

ROLES = {
    "data": "full",
    "pair": "full",
    "grad": "full",
    "grad_batch": "batch",
    "grad_index": "index",
    "index": "index",
    "ranking": "index",
    "values": "index",
    "choice": "batch",
}
"""The layout of each array role: ``full`` (the data's shape), ``batch`` (one
value per row), ``index`` (the batch shape plus trailing sample axes)."""

RESULTS = ("rows", "batch", "per_index", "samples", "bits", "noise", "draws")
"""The result kinds this module can lay out."""


SPLIT = ("categorical",)
"""Operations that keep a split category axis and combine the chunks exactly."""

_SENTINEL = float(2**62)
"""The index of an empty or masked candidate in the categorical tree: above
every category, so a real index wins a tie."""

NOISE_BLOCK_ELEMENTS = 1 << 22
"""The noise of a split category chunk is made this many elements at a time
(see :func:`_category_noise`)."""


def chunking(op: Op) -> str:
    """How a Dask call of ``op`` treats the category axis: ``"split"`` (kept
    split, combined exactly), ``"whole"`` (rechunked to one chunk) or
    ``"any"`` (element-wise: any chunking)."""
    if op.name in SPLIT:
        return "split"
    if op.elementwise and "rng" not in op.options:
        return "any"
    return "whole"


def dask_doc(op: Op) -> str:
    """One sentence for the docstring of ``op`` on what a Dask call does with
    the category axis (from :func:`chunking`), for ``shared_docs`` to place."""
    what = {
        "split": "the category axis may stay split across chunks: each chunk proposes its best "
                 "perturbed logits and a tree reduction over the chunks keeps the best, exactly",
        "whole": "the category axis is rechunked to one chunk (the batch chunks shrink where a "
                 "block would exceed Dask's array.chunk-size)",
        "any": "any chunking is kept (element-wise)",
    }[chunking(op)]
    if op.name == "logsumexp":
        what += (", not reduced by a tree over the chunks: partial sums combined round differently from "
                 "the kernel's one sum, by an ulp or two in 12% to 21% of the rows")
    if op.result == "noise":
        what = ("any chunks are kept (chunks= or like=); each block's rows are generated whole along axis "
                "and cut to them")
    return (f"Dask arrays: a lazy Dask array (tuple of them) that equals the in-memory result bit "
            f"for bit for any chunking and scheduler; {what}.")


def add_dask_notes(functions: dict) -> None:
    """Put :func:`dask_doc` into the Notes of each public function of an
    operation (a new Notes section before References or Examples where it
    has none), so that every docstring says what a Dask call does with the
    category axis."""
    import textwrap

    for name, op in OPS.items():
        func = functions.get(name)
        if func is None or not func.__doc__:
            continue
        para = textwrap.fill(dask_doc(op), 76, initial_indent="    ", subsequent_indent="    ")
        doc = func.__doc__
        head = "\n    Notes\n    -----\n"
        if head in doc:
            doc = doc.replace(head, head + para + "\n\n", 1)
        else:
            for section in ("References", "Examples"):
                mark = f"\n    {section}\n    {'-' * len(section)}\n"
                if mark in doc:
                    doc = doc.replace(mark, head + para + "\n" + mark, 1)
                    break
            else:
                doc = doc.rstrip() + "\n" + head + para + "\n    "
        func.__doc__ = doc


def _supported(op: Op) -> None:
    """NotImplementedError for a record this module cannot lay out (a role or
    result kind added after it), rather than a graph that is silently wrong."""
    for _, role, name in op.arrays:
        if role not in ROLES:
            raise NotImplementedError(
                f"{op.name}: Dask arrays are not supported yet for an argument of role {role!r} ({name})"
            )
    if op.result not in RESULTS:
        raise NotImplementedError(f"{op.name}: Dask arrays are not supported yet for a result of kind {op.result!r}")


# --------------------------------------------------------------------------
# Detection


def _dask_array_type() -> Any:
    mod = sys.modules.get("dask.array")
    return None if mod is None else mod.Array


def is_dask(x: Any) -> bool:
    """True when ``x`` is a Dask array (without importing Dask)."""
    t = _dask_array_type()
    return t is not None and isinstance(x, t)


def dask_run(op: Op, arrays: tuple[Any, ...], axis: Any, out: Any, opts: dict) -> Any:
    """The lazy result of ``op`` when a Dask array is among its arguments (or
    a noise function is given ``chunks=``); None otherwise."""
    t = _dask_array_type()
    if op.result == "noise":
        lazy = opts.get("chunks") is not None or (
            t is not None and (isinstance(opts.get("like"), t) or isinstance(opts.get("row_ids"), t))
        )
    else:
        # Plain loops: this runs before every call once Dask is imported.
        lazy = False
        for a in arrays:
            if type(a) is not np.ndarray and isinstance(a, t):
                lazy = True
                break
        else:
            for o in ARRAY_OPTIONS:
                v = opts.get(o)
                if v is not None and isinstance(v, t):
                    lazy = True
                    break
    if not lazy:
        return None
    try:
        import dask.array  # noqa: F401
    except ImportError:
        raise ImportError(
            f"{op.name}: chunks= makes a Dask array, and Dask is not installed "
            "(pip install 'gumbel-np[dask]')"
        ) from None
    if out is not None:
        raise TypeError(
            f"{op.name}: out must be None when an argument is a Dask array (the result is a new lazy "
            f"array), got {type(out).__module__}.{type(out).__name__}"
        )
    _supported(op)
    if op.result == "noise":
        return _noise_call(op, arrays[0], axis, opts)
    return _call(op, arrays, axis, opts)


# --------------------------------------------------------------------------
# Keys


class _Key(np.random.SeedSequence):
    """A fixed Philox key in the form ``rng`` takes (a ``SeedSequence``
    whose state is the key): how a key drawn once, when the graph is built,
    reaches every block, so that ``rng=None`` or a ``Generator`` give one
    stream for the whole array."""

    def __init__(self, k0: int, k1: int) -> None:  # noqa: D107 (no entropy to pool)
        self.words = (int(k0), int(k1))

    def generate_state(self, n_words: int, dtype: Any = np.uint32) -> np.ndarray:
        return np.array(self.words, np.uint32)

    def __reduce__(self) -> tuple:
        return (_Key, self.words)

    def __repr__(self) -> str:
        return f"_Key{self.words}"

    def __dask_tokenize__(self) -> tuple:
        return ("gumbel_np._Key", *self.words)


def _fixed_rng(rng: Any, func: str) -> Any:
    """``rng`` as a value every block can take and that gives the same key:
    an int as it is (its key is a pure function of it), anything else as
    the :class:`_Key` it selects now."""
    if type(rng) is int and rng >= 0:
        return rng
    return _Key(*philox_key(rng, func))


# --------------------------------------------------------------------------
# Validation at graph construction: the in-memory code on shape-only stand-ins


class _Stop(Exception):
    """Raised by the stand-ins where the in-memory code needs values."""


class _Spec:
    """A shape and dtype standing in for a Dask array in :func:`_validate`:
    what the in-memory validation asks of an array (shape, dtype, reshape,
    astype, comparisons), without the values.  Value checks see no bad value
    (``bool()`` is False); they run when the blocks are computed."""

    __array_ufunc__ = None  # NumPy defers to the reflected operators

    def __init__(self, shape: tuple[int, ...], dtype: Any) -> None:
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: math.prod(self.shape))

    def astype(self, dtype: Any, copy: bool = True) -> "_Spec":
        return _Spec(self.shape, dtype)

    def reshape(self, *shape: Any) -> "_Spec":
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], tuple) else shape
        return _Spec(_reshaped(self.size, tuple(int(n) for n in shape)), self.dtype)

    def any(self, *a: Any, **k: Any) -> "_Spec":
        return _Spec((), bool)

    def __bool__(self) -> bool:
        return False

    def _op(self, other: Any, dtype: Any = None) -> "_Spec":
        shape = np.broadcast_shapes(self.shape, np.shape(other) if not isinstance(other, _Spec) else other.shape)
        return _Spec(shape, bool if dtype is None else dtype)

    __lt__ = __le__ = __gt__ = __ge__ = __eq__ = __ne__ = __and__ = __rand__ = __or__ = __ror__ = _op

    def __truediv__(self, other: Any) -> "_Spec":
        return self._op(other, self.dtype)

    __rtruediv__ = __truediv__

    def __invert__(self) -> "_Spec":
        return self

    def __getitem__(self, key: Any) -> Any:
        raise _Stop

    def __float__(self) -> float:
        raise _Stop

    __int__ = __index__ = __float__
    __hash__ = object.__hash__


def _reshaped(size: int, new: tuple[int, ...]) -> tuple[int, ...]:
    """The shape ``reshape(new)`` gives an array of ``size`` elements (one
    ``-1`` inferred), NumPy's ValueError where there is none."""
    if -1 in new:
        known = math.prod(n for n in new if n != -1)
        new = tuple((size // known if known else 0) if n == -1 else n for n in new)
    if math.prod(new) != size:
        raise ValueError(f"cannot reshape array of size {size} into shape {new}")
    return new


_SMALL = 1 << 12
"""Plain arrays up to this size are validated with their values."""


class _SpecNamespace:
    """The array namespace of :func:`_validate`: NumPy for plain values,
    :class:`_Spec` for the stand-ins, and nothing allocated at full size."""

    __name__ = "numpy"
    ndarray = np.ndarray
    int64 = np.int64

    @staticmethod
    def asarray(x: Any, dtype: Any = None) -> Any:
        if isinstance(x, _Spec):
            return x if dtype is None else x.astype(dtype)
        return np.asarray(x, dtype)

    @staticmethod
    def ascontiguousarray(x: Any) -> Any:
        if isinstance(x, _Spec) or x.size > _SMALL:
            return _Spec(np.shape(x), x.dtype)
        return np.ascontiguousarray(x)

    @staticmethod
    def broadcast_to(x: Any, shape: Any) -> Any:
        if not isinstance(x, _Spec):
            return np.broadcast_to(x, shape)
        np.broadcast_to(np.broadcast_to(np.empty((), np.int8), x.shape), shape)  # NumPy's ValueError
        return _Spec(shape, x.dtype)

    @staticmethod
    def moveaxis(x: Any, source: int, dest: int) -> Any:
        if not isinstance(x, _Spec):
            return np.moveaxis(x, source, dest)
        return _Spec(np.moveaxis(np.broadcast_to(np.empty((), np.int8), x.shape), source, dest).shape, x.dtype)

    @staticmethod
    def isfinite(x: Any) -> Any:
        return _Spec(x.shape, bool) if isinstance(x, _Spec) else np.isfinite(x)

    isnan = isfinite

    @staticmethod
    def empty(shape: Any, dtype: Any = float) -> _Spec:
        return _Spec(shape if isinstance(shape, tuple) else (shape,), dtype)

    zeros = empty

    @staticmethod
    def full(shape: Any, value: Any, dtype: Any = float) -> _Spec:
        return _Spec(shape if isinstance(shape, tuple) else (shape,), dtype)

    @staticmethod
    def may_share_memory(a: Any, b: Any) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        fn = getattr(np, name)

        def on_values(*args: Any, **kwargs: Any) -> Any:
            if any(isinstance(v, _Spec) for v in (*args, *kwargs.values())):
                raise _Stop
            return fn(*args, **kwargs)

        return on_values


_SPEC_XP = _SpecNamespace()


class _Validated(Exception):
    """Raised by :class:`_SpecBackend` where the in-memory call would launch."""


class _SpecBackend:
    """The backend of :func:`_validate`: stops the call at its launch."""

    def __init__(self, half: bool) -> None:
        self.HALF_STORAGE = half

    @staticmethod
    def launch(kernel: Any, values: dict) -> None:
        raise _Validated


def _spec_of(x: Any) -> Any:
    return _Spec(x.shape, x.dtype) if is_dask(x) else x


def _validate(op: Op, arrays: tuple[Any, ...], axis: Any, opts: dict, cupy: bool) -> None:
    """Raise what the in-memory call would raise before its launch, for the
    arguments as far as their shapes, dtypes and options tell: the call runs
    through ``_ops._call`` itself, on :class:`_Spec` stand-ins of the Dask
    arrays, and stops where it would launch the kernel.  A check that needs
    values is left to the blocks."""
    func = op.name
    opts = dict(opts)
    for f in op.flags:
        opts[f] = check_flag(opts[f], func, f)
    if isinstance(opts.get("rng"), np.random.Generator):
        opts["rng"] = 0  # the key is drawn once, later; a probe must not advance the generator
    opts.pop("chunks", None)
    if op.result == "noise":
        opts["like"] = None
    try:
        _ops._call(op, _SPEC_XP, _SpecBackend(cupy), tuple(_spec_of(a) for a in arrays), axis, None,
                   {k: _spec_of(v) for k, v in opts.items()})
    except (_Validated, _Stop):
        return
    except (TypeError, ValueError, AxisError, MemoryError) as exc:
        if str(exc).startswith(f"{func}:") or isinstance(exc, AxisError):
            raise
        return  # the stand-ins fell short (not the caller's error): the blocks will check
    except Exception:  # noqa: BLE001 - the same: leave it to the blocks
        return


# --------------------------------------------------------------------------
# Threads inside tasks

_ENV_THREADS: list[Any] = []


def _env_threads() -> Any:
    """The environment's answer for :func:`task_threads` (read once):
    an int, None to leave Numba alone, or ``"auto"``."""
    if not _ENV_THREADS:
        env = os.environ
        n: Any = "auto"
        if env.get("GUMBEL_NP_DASK_THREADS", "").strip():
            n = int(env["GUMBEL_NP_DASK_THREADS"]) or None
        elif env.get("NUMBA_NUM_THREADS", "").strip():
            n = None
        elif env.get("OMP_NUM_THREADS", "").strip().isdigit():
            n = max(1, int(env["OMP_NUM_THREADS"]))
        _ENV_THREADS.append(n)
    return _ENV_THREADS[0]


def task_threads() -> int | None:
    """Numba threads per Dask task on this thread, or None to leave Numba's
    setting alone.

    In order: ``GUMBEL_NP_DASK_THREADS`` when set (``0``: leave it alone);
    ``NUMBA_NUM_THREADS`` set in the environment: leave it alone (the pool
    is already sized, e.g. by ``distributed.nanny.pre-spawn-environ``);
    ``OMP_NUM_THREADS`` when set (the ``distributed`` nanny sets it to 1
    for its workers by default, and Dask's advice on oversubscription is
    built on it); a task on the main thread of a process that is not a
    child (the synchronous scheduler runs one task at a time): leave it
    alone; else 1 (a thread of the threaded scheduler, a process of the
    ``processes`` scheduler: the scheduler already runs about one task per
    core).
    """
    n = _env_threads()
    if n != "auto":
        return n
    import multiprocessing

    if threading.current_thread() is threading.main_thread() and multiprocessing.parent_process() is None:
        return None
    return 1


@contextlib.contextmanager
def _threads(xp: Any):
    """Numba's thread count for this thread capped at :func:`task_threads`
    for one task (``numba.set_num_threads`` is per thread), then restored."""
    n = task_threads() if xp is np else None
    if n is None:
        yield
        return
    import numba

    prev = numba.get_num_threads()
    n = min(n, numba.config.NUMBA_NUM_THREADS)
    if n == prev:
        yield
        return
    numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(prev)


# --------------------------------------------------------------------------
# Plans and blocks


@dataclass(frozen=True)
class _Plan:
    """What every block of one call needs: the operation, the layout of the
    extended index space (the data's axes, then the sample axes) and of each
    input and result in it, and the options passed as they are."""

    op: str
    axis: int
    ndim: int
    samples: tuple[int, ...]
    batch: tuple[int, ...]
    nargs: int
    inputs: tuple[tuple[Any, tuple[int, ...]], ...]
    outputs: tuple[tuple[int, ...], ...]
    static: tuple[tuple[str, Any], ...]
    ids: bool = False
    expand_tau: str = ""
    noise_shape: bool = False
    call_axis: Any = None

    @property
    def batch_dims(self) -> tuple[int, ...]:
        return tuple(d for d in range(self.ndim) if d != self.axis)

    @property
    def rank(self) -> int:
        return self.ndim + len(self.samples)


def _xp_of(x: Any) -> Any:
    return sys.modules["cupy"] if is_cupy_array(x) else np


def _unembed(block: Any, dims: tuple[int, ...]) -> Any:
    return block.reshape(tuple(block.shape[d] for d in dims))


def _embed(x: Any, dims: tuple[int, ...], rank: int) -> Any:
    shape = [1] * rank
    if x.ndim != len(dims):
        raise ValueError(f"result of {x.ndim} axes where {len(dims)} were expected")
    for i, d in enumerate(dims):
        shape[d] = x.shape[i]
    return x.reshape(tuple(shape))


def _row_ids(xp: Any, plan: _Plan, loc: list[tuple[int, int]]) -> Any:
    """The flat positions in the whole batch (C order) of the rows of the
    block at ``loc`` (its ``(start, stop)`` per data axis): the default row
    ids.  A range where the block spans every batch axis but its first (the
    common case), else not contiguous: a sum of one range per batch axis."""
    dims = plan.batch_dims
    shape = tuple(loc[d][1] - loc[d][0] for d in dims)
    strides = [1] * len(dims)
    for i in reversed(range(len(dims) - 1)):
        strides[i] = strides[i + 1] * plan.batch[i + 1]
    first = sum(loc[d][0] * st for d, st in zip(dims, strides))
    if all(n == plan.batch[i] for i, n in enumerate(shape) if i > 0):
        ids = np.arange(first, first + math.prod(shape), dtype=np.int64).reshape(shape)
    else:
        ids = np.full(shape, first, np.int64)
        for i, n in enumerate(shape):
            ids += (np.arange(n, dtype=np.int64) * strides[i]).reshape((1,) * i + (n,) + (1,) * (len(shape) - i - 1))
    return ids if xp is np else xp.asarray(ids)


_ROW = re.compile(r"(\brow |\bat index )\(([0-9, ]*)\)")


def _globalize(exc: Exception, plan: _Plan, loc: list[tuple[int, int]]) -> Exception:
    """``exc`` with the row (``row (i, j)``) or element (``at index (i, j,
    k)``) it names moved from the block's coordinates to the whole array's."""

    def shift(m: re.Match) -> str:
        local = [int(v) for v in m.group(2).replace(" ", "").split(",") if v]
        dims = plan.batch_dims if m.group(1).startswith("row") else tuple(range(plan.ndim))
        if len(local) != len(dims):
            return m.group(0)
        return m.group(1) + str(tuple(v + loc[d][0] for v, d in zip(local, dims)))

    if any(math.isnan(v) for lo_hi in loc for v in lo_hi):
        return exc  # unknown chunk sizes: the block's own coordinates
    msg = _ROW.sub(shift, str(exc))
    return exc if msg == str(exc) else type(exc)(msg)


def _block(plan: _Plan, *blocks: Any, block_info: Any = None) -> tuple[Any, ...]:
    """One block: the in-memory call on its chunks, its results laid out in
    the extended index space (a tuple, taken apart by :func:`_pick`)."""
    loc = block_info[None]["array-location"]
    op = OPS[plan.op]
    arrays: list[Any] = [None] * plan.nargs
    opts = dict(plan.static)
    xp = np
    for (slot, dims), b in zip(plan.inputs, blocks):
        v = _unembed(b, dims)
        if isinstance(slot, int):
            arrays[slot] = v
            xp = _xp_of(v) if xp is np else xp
        else:
            opts[slot] = v
    if plan.noise_shape:
        arrays = [tuple(hi - lo for lo, hi in loc[: plan.ndim])]
        like = opts.get("like")
        xp = np if like is None else _xp_of(like)
    if plan.ids:
        opts["row_ids"] = _row_ids(xp, plan, loc)
    if plan.expand_tau:
        dims = plan.batch_dims if plan.expand_tau == "rows" else tuple(range(plan.ndim))
        shape = tuple(loc[d][1] - loc[d][0] for d in dims)
        opts["tau"] = xp.broadcast_to(xp.asarray(opts["tau"]), shape)
    try:
        with _threads(xp):
            res = run(op, tuple(arrays), plan.axis if plan.call_axis is None else plan.call_axis, None, **opts)
    except (ValueError, TypeError) as exc:
        raise _globalize(exc, plan, loc) from None
    res = res if isinstance(res, tuple) else (res,)
    if len(res) != len(plan.outputs):
        raise NotImplementedError(
            f"{plan.op}: the call returned {len(res)} arrays where its Dask layout expects "
            f"{len(plan.outputs)}; Dask arrays are not supported yet for these options"
        )
    try:
        return tuple(_embed(r, dims, plan.rank) for r, dims in zip(res, plan.outputs))
    except ValueError as exc:
        raise NotImplementedError(f"{plan.op}: Dask arrays are not supported yet for this call: {exc}") from None


def _pick(block: tuple[Any, ...], i: int) -> Any:
    return block[i]


# --------------------------------------------------------------------------
# Building the graph


def _token(*parts: Any) -> str:
    from dask.base import tokenize

    return tokenize(*parts)


def _meta(xp: Any, ndim: int, dtype: Any) -> Any:
    return xp.empty((0,) * ndim, dtype)


def _chunk_limit() -> int:
    import dask.config
    from dask.utils import parse_bytes

    return parse_bytes(dask.config.get("array.chunk-size"))


def _whole_axis(a: Any, ax: int) -> Any:
    """``a`` with axis ``ax`` in one chunk, its other chunks kept, or made
    smaller where a block would exceed Dask's ``array.chunk-size``."""
    if a.numblocks[ax] == 1:
        return a
    limit = _chunk_limit()
    itemsize = a.dtype.itemsize
    biggest = max(
        math.prod(max(c) if c else 0 for i, c in enumerate(a.chunks) if i != ax) * a.shape[ax] * itemsize, 0
    )
    spec = {ax: -1}
    if biggest > limit:
        spec.update({d: "auto" for d in range(a.ndim) if d != ax})
    return a.rechunk(spec)


def _inserted(x: Any, dims: tuple[int, ...], rank: int) -> Any:
    """A Dask array over ``dims`` of the extended space (in order), with
    length-1 axes at the others (indexing with None keeps the blocks)."""
    return x[tuple(slice(None) if d in dims else None for d in range(rank))] if len(dims) < rank else x


def _unknown(chunks: tuple[int, ...]) -> bool:
    return any(math.isnan(c) for c in chunks)


def _aligned(x: Any, dims: tuple[int, ...], ext_chunks: tuple[tuple[int, ...], ...]) -> Any:
    """``x`` (over ``dims``) in the extended space, rechunked to its chunks
    (an axis of unknown chunk sizes is left as it is: it can only match the
    data's when both come from the same selection)."""
    rank = len(ext_chunks)
    y = _inserted(x, dims, rank)
    target = tuple(
        y.chunks[d] if _unknown(y.chunks[d]) or _unknown(ext_chunks[d])
        else ext_chunks[d] if d in dims and y.shape[d] == sum(ext_chunks[d]) else (y.shape[d],)
        for d in range(rank)
    )
    return y.rechunk(target)


def _known_rows(data: Any, ax: int, func: str, why: str) -> None:
    """ValueError where a batch axis of ``data`` has unknown chunk sizes (after
    a boolean selection, say) and the call needs the rows' positions."""
    for d, c in enumerate(data.chunks):
        if d != ax and _unknown(c):
            raise ValueError(
                f"{func}: the chunk sizes of the data along axis {d} are unknown (a boolean selection?), and {why} "
                "needs the rows' positions; call .compute_chunk_sizes() first, or pass row_ids"
            )


def _call(op: Op, arrays: tuple[Any, ...], axis: Any, opts: dict) -> Any:
    import dask.array as da

    func = op.name
    roles = op.arrays
    di = next(i for i, r in enumerate(roles) if r[1] == "data")
    metas = [x._meta if is_dask(x) else x for x in (*arrays, *(opts.get(o) for o in ARRAY_OPTIONS))]
    namespace(func, *(m for m in metas if hasattr(m, "shape")))  # NumPy and CuPy mixed: the in-memory TypeError
    _validate(op, arrays, axis, opts, any(is_cupy_array(m) for m in metas))
    lazy = [da.asarray(a) for a in arrays]
    opts = dict(opts)
    if "rng" in opts and opts.get("noise") is None:  # with noise= the call draws nothing
        opts["rng"] = _fixed_rng(opts["rng"], func)
    data = lazy[di]
    scalar = data.ndim == 0
    if scalar:
        # One row of one category, as in memory: the arrays of the data's
        # shape as (1,), the results' category axis dropped at the end.
        lazy = [x.reshape(1) if ROLES[r] == "full" else x for (_, r, _), x in zip(op.arrays, lazy)]
        if is_dask(opts.get("noise")) or np.ndim(opts.get("noise")) > 0:
            opts["noise"] = da.asarray(opts["noise"]).reshape(1)
        data = lazy[di]
    ax = normalize_axis(axis, data.ndim, func)
    if op.name in SPLIT and data.numblocks[ax] > 1:
        return _split_categorical(op, data, ax, opts)
    if chunking(op) == "whole":
        data = _whole_axis(data, ax)
    lazy[di] = data
    return _graph(op, lazy, di, ax, opts, axis, scalar)


def _graph(op: Op, lazy: list[Any], di: int, ax: int, opts: dict, axis: Any, scalar: bool = False) -> Any:
    import dask.array as da

    func = op.name
    data = lazy[di]
    D = data.ndim
    batch = tuple(n for i, n in enumerate(data.shape) if i != ax)
    bdims = tuple(d for d in range(D) if d != ax)
    full = tuple(range(D))
    xp = _xp_of(data._meta)

    # The sample axes of the extended space.
    samples: tuple[int, ...] = ()
    for (_, role, _), x in zip(op.arrays, lazy):
        if ROLES[role] == "index":
            samples = tuple(x.shape[len(batch):])
    nsamples = opts.get("num_samples")
    if op.result in ("samples", "bits", "draws") and nsamples is not None:
        samples = (int(nsamples),)
    sdims = tuple(range(D, D + len(samples)))
    rank = D + len(samples)
    ext_chunks = tuple(data.chunks) + tuple((s,) for s in samples)

    keepdims = bool(opts.get("keepdims", False))
    layout = {"full": full, "batch": full if keepdims else bdims, "index": bdims + sdims}
    inputs: list[tuple[Any, tuple[int, ...]]] = []
    args: list[Any] = []
    for i, ((_, role, _), x) in enumerate(zip(op.arrays, lazy)):
        kind = ROLES[role]
        dims = layout[kind] if role != "choice" else bdims
        x = da.asarray(x)
        if role == "pair" and x.shape != data.shape:
            x = _broadcast(da, x, data.shape)
        elif kind == "batch":
            x = _broadcast(da, x, tuple(data.shape[d] if d != ax else 1 for d in full) if keepdims and role != "choice" else batch)
        inputs.append((i, dims))
        args.append(_aligned(x, dims, ext_chunks))

    static: dict[str, Any] = {}
    expand_tau = ""
    tau_grad = bool(opts.get("tau_grad"))
    tau_shape: tuple[int, ...] = ()
    for name, value in opts.items():
        if name == "tau":
            tdims = full if op.elementwise else bdims
            t = value if hasattr(value, "ndim") else np.asarray(value)
            if t.ndim == 0 and not is_dask(value) and not tau_grad:
                static[name] = value
                continue
            if not op.elementwise and t.ndim == D and t.shape[ax] == 1:
                t = t.reshape(tuple(n for i, n in enumerate(t.shape) if i != ax))
            tau_shape = tuple(t.shape)
            if t.ndim == 0 and not is_dask(value):
                static[name] = value
                expand_tau = "elements" if op.elementwise else "rows"
                continue
            target = data.shape if op.elementwise else batch
            inputs.append(("tau", tdims))
            args.append(_aligned(_broadcast(da, da.asarray(t), target), tdims, ext_chunks))
        elif name == "noise" and (is_dask(value) or np.ndim(value) > 0):
            inputs.append(("noise", full))
            args.append(_aligned(da.asarray(value), full, ext_chunks))
        elif name == "row_ids" and value is not None:
            inputs.append(("row_ids", bdims))
            args.append(_aligned(da.asarray(value), bdims, ext_chunks))
        elif name == "baseline" and not (value is None or isinstance(value, str) or np.ndim(value) == 0):
            index_shape = batch + samples
            inputs.append(("baseline", bdims + sdims))
            args.append(_aligned(_broadcast(da, da.asarray(value), index_shape), bdims + sdims, ext_chunks))
        else:
            static[name] = value
    ids = "row_ids" in op.options and opts.get("row_ids") is None
    if ids:
        _known_rows(data, ax, func, "the default row ids (the rows' flat positions)")

    # Results, in the order the in-memory call returns them.
    main = {
        "rows": full,
        "batch": full if keepdims else bdims,
        "per_index": bdims + sdims,
        "samples": bdims + sdims,
        "bits": full + sdims,
        "draws": full + sdims,
    }[op.result]
    outputs = [main]
    kinds = [op.result]
    second = "out_p" in op.kernel_for(opts).cuda
    if second:
        outputs.append(full)
        kinds.append("pair_grad")
    if opts.get("return_soft"):
        outputs.append(full)
        kinds.append("rows")
    if tau_grad:
        outputs.append(full if op.elementwise else bdims)
        kinds.append("tau_grad")

    plan = _Plan(
        op=op.name, axis=ax, ndim=D, samples=samples, batch=batch, nargs=len(op.arrays),
        inputs=tuple(inputs), outputs=tuple(outputs), static=tuple(sorted(static.items(), key=lambda kv: kv[0])),
        ids=ids, expand_tau=expand_tau, call_axis=axis,
    )
    dtype = _result_dtype(op, lazy)
    name = f"{func}-{_token(plan, *args)}"
    inter = da.map_blocks(
        _block, plan, *args, chunks=ext_chunks, meta=_meta(np, rank, object), name=name,
    )
    results = []
    for i, (dims, kind) in enumerate(zip(outputs, kinds)):
        out_dtype = {"samples": np.dtype(np.int64), "bits": np.dtype(np.bool_)}.get(kind, dtype)
        unit = (ax,) if kind == "batch" and keepdims else ()  # kept as length 1
        chunks = tuple(ext_chunks[d] if d in dims and d not in unit else (1,) * len(ext_chunks[d]) for d in range(rank))
        r = da.map_blocks(_pick, inter, i, chunks=chunks, meta=_meta(xp, rank, out_dtype), name=f"{name}-{i}")
        r = r[tuple(slice(None) if d in dims and not (scalar and d == ax) else 0 for d in range(rank))]
        if kind == "pair_grad":
            pair = next(x for (_, role, _), x in zip(op.arrays, lazy) if role == "pair")
            if tuple(pair.shape) != tuple(data.shape):
                r = _summed(r, ax, tuple(pair.shape))
        elif kind == "tau_grad":
            tau = opts["tau"]
            r = _summed(r, ax if op.elementwise else None, tau_shape)
            r = r.reshape(np.shape(tau)) if tuple(r.shape) != tuple(np.shape(tau)) else r
        results.append(r)
    return results[0] if len(results) == 1 else tuple(results)


def _broadcast(da: Any, x: Any, shape: tuple[int, ...]) -> Any:
    if tuple(x.shape) == tuple(shape):
        return x
    return da.broadcast_to(x, shape)


def _result_dtype(op: Op, lazy: list[Any]) -> np.dtype:
    """The float dtype of the results (NumPy's promotion of the data, pair
    and gradients, after the conversions of DESIGN section 5)."""
    kinds = [
        compute_dtypes(np.dtype(x.dtype), op.name, name, False)[1]
        for (_, role, name), x in zip(op.arrays, lazy)
        if role in ("data", "pair", "grad", "grad_batch")
    ]
    return np.result_type(*kinds)


def _summed(r: Any, ax: int | None, shape: tuple[int, ...]) -> Any:
    """``sum_to_shape`` of the per-row (per-element) terms ``r``, in one task
    over them all, in the layout the in-memory call sums them in (the
    kernels' rows, with the category axis last), so that it matches that call
    bit for bit."""
    import dask.array as da

    if tuple(r.shape) == tuple(shape):
        return r
    whole = r.rechunk(tuple((n,) for n in r.shape))
    out_shape = tuple(shape)
    return da.map_blocks(
        _sum_block, whole, ax, out_shape,
        chunks=tuple((n,) for n in out_shape), drop_axis=list(range(len(out_shape), whole.ndim)) if whole.ndim > len(out_shape) else None,
        meta=_meta(_xp_of(whole._meta), len(out_shape), whole.dtype),
    )


def _sum_block(x: Any, ax: int | None, shape: tuple[int, ...]) -> Any:
    from ._validation import sum_to_shape

    xp = _xp_of(x)
    if ax is not None and x.ndim:
        # The kernels' layout: rows with the category axis last, restored as a view.
        x = xp.moveaxis(xp.ascontiguousarray(xp.moveaxis(x, ax, -1)), -1, ax)
    return sum_to_shape(xp, x, shape)


# --------------------------------------------------------------------------
# Noise


def _noise_call(op: Op, shape: Any, axis: Any, opts: dict) -> Any:
    import dask.array as da

    func = op.name
    dims = check_shape(shape, func)
    like, row_ids, chunks = opts.get("like"), opts.get("row_ids"), opts.get("chunks")
    lazy_like = is_dask(like)
    if like is not None and not lazy_like and not isinstance(like, np.ndarray) and not is_cupy_array(like):
        _ops.like_namespace(func, like)  # the in-memory TypeError
    meta_like = like._meta if lazy_like else like
    xp = _xp_of(meta_like) if meta_like is not None else np
    _validate(op, (dims,), axis, opts, xp is not np)
    want = noise_dtype(opts["dtype"], func)
    D = len(dims)
    if D == 0:
        res = _noise_call(op, (1,), 0, {**opts, "chunks": -1, "like": like,
                                        "row_ids": None if row_ids is None else da.asarray(row_ids).reshape(())})
        return res.reshape(())
    ax = normalize_axis(axis, D, func)
    batch = dims[:ax] + dims[ax + 1:]
    if chunks is None:
        chunks = like.chunks if lazy_like and tuple(like.shape) == dims else "auto"
        if chunks == "auto" and is_dask(row_ids) and tuple(row_ids.shape) == batch:
            chunks = row_ids.chunks[:ax] + ((dims[ax],),) + row_ids.chunks[ax:]
    # "auto" along the noise axis keeps it whole: its rows are generated whole
    # anyway, and Dask's own choice would make each task hold many chunks.
    if isinstance(chunks, str) and chunks == "auto":
        chunks = tuple(dims[ax] if d == ax else "auto" for d in range(D))
    elif isinstance(chunks, tuple) and len(chunks) == D and isinstance(chunks[ax], str) and chunks[ax] == "auto":
        chunks = chunks[:ax] + (dims[ax],) + chunks[ax + 1:]
    elif isinstance(chunks, dict):
        chunks = {d: dims[ax] if (d % D == ax and isinstance(c, str) and c == "auto") else c for d, c in chunks.items()}
    try:
        wanted = da.core.normalize_chunks(chunks, dims, dtype=want)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{func}: chunks={chunks!r} do not fit the shape {dims}: {exc}") from exc
    # The noise of a row is made whole (its categories are counted from 0):
    # the requested chunks of the category axis are cut from it afterwards.
    ext_chunks = wanted[:ax] + ((dims[ax],),) + wanted[ax + 1:]
    bdims = tuple(d for d in range(D) if d != ax)
    inputs, args = [], []
    if row_ids is not None:
        inputs.append(("row_ids", bdims))
        args.append(_aligned(da.asarray(row_ids), bdims, ext_chunks))
    static = {k: v for k, v in opts.items() if k not in ("chunks", "row_ids", "like")}
    static["rng"] = _fixed_rng(opts.get("rng"), func)
    static["dtype"] = want
    static["like"] = None if xp is np else xp.empty(0, want)
    plan = _Plan(
        op=op.name, axis=ax, ndim=D, samples=(), batch=batch, nargs=1, inputs=tuple(inputs),
        outputs=(tuple(range(D)),), static=tuple(sorted(static.items(), key=lambda kv: kv[0])),
        ids=row_ids is None, noise_shape=True, call_axis=axis,
    )
    name = f"{func}-{_token(plan, dims, ext_chunks, *args)}"
    inter = da.map_blocks(_block, plan, *args, chunks=ext_chunks, meta=_meta(np, D, object), name=name)
    r = da.map_blocks(_pick, inter, 0, chunks=ext_chunks, meta=_meta(xp, D, want), name=f"{name}-0")
    return r if ext_chunks == wanted else r.rechunk(wanted)


# --------------------------------------------------------------------------
# categorical with the category axis split: an exact tree reduction


@dataclass(frozen=True)
class _Tree:
    """The categorical tree of one call: ``draws`` draws of ``best``
    candidates each (``num_samples`` draws of 1 with replacement, 1 draw of
    ``k`` without), the data's axis and batch shape, the key and dtype of
    the noise."""

    op: str
    axis: int
    ndim: int
    batch: tuple[int, ...]
    draws: int
    best: int
    replace: bool
    rng: Any
    compute: str
    user_ids: bool

    @property
    def k(self) -> int:
        """``num_samples``."""
        return self.draws * self.best

    @property
    def width(self) -> int:
        return 2 * self.draws * self.best + 3


def _split_categorical(op: Op, data: Any, ax: int, opts: dict) -> Any:
    """``categorical`` of logits whose category axis is split: for each block,
    the best candidates of ``(logits - M) + G`` over its categories (``M``
    the row maximum, a first exact reduction; ``G`` the noise of the block's
    own categories), merged by a tree reduction over the category chunks,
    ties to the lowest index, exactly as the kernel orders them."""
    import dask.array as da

    func = op.name
    if opts.get("row_ids") is None:
        _known_rows(data, ax, func, "a category axis split across chunks with the default row ids")
    s = opts.get("num_samples")
    replace = opts.get("replace", True)
    n = 1 if s is None else int(s)
    draws, best = (n, 1) if replace else (1, n)
    dt = np.dtype(data.dtype)
    xp = _xp_of(data._meta)
    compute, _ = compute_dtypes(dt, func, "logits", False)
    if opts.get("noise_dtype") is not None and np.dtype(opts["noise_dtype"]) == np.float64:
        compute = np.dtype(np.float64)
    batch = tuple(n_ for i, n_ in enumerate(data.shape) if i != ax)
    row_ids = opts.get("row_ids")
    tree = _Tree(
        op=func, axis=ax, ndim=data.ndim, batch=batch, draws=draws, best=best, replace=bool(replace),
        rng=opts["rng"], compute=compute.str, user_ids=row_ids is not None,
    )
    m = da.max(data, axis=ax, keepdims=True)
    args = [data, m]
    if row_ids is not None:
        ids = da.asarray(row_ids)
        ids = ids[tuple(slice(None) if d != ax else None for d in range(data.ndim))]
        args.append(ids.rechunk(m.chunks))
    W = tree.width
    cand_chunks = tuple(c if d != ax else (W,) * data.numblocks[ax] for d, c in enumerate(data.chunks))
    name = f"{func}-candidates-{_token(tree, *args)}"
    cands = da.map_blocks(_candidates, *args, tree=tree, chunks=cand_chunks, meta=_meta(np, data.ndim, np.float64), name=name)
    out = da.reduction(
        cands, _identity, partial(_finish_tree, tree=tree), combine=partial(_merge_tree, tree=tree),
        axis=ax, keepdims=True, dtype=np.int64, concatenate=True, output_size=draws * best,
        meta=_meta(np, data.ndim, np.int64), name=f"{func}-tree-{_token(tree, cands.name)}",
    )
    out = da.moveaxis(out, ax, -1)
    if xp is not np:
        out = out.map_blocks(xp.asarray, meta=_meta(xp, out.ndim, np.int64))
    return out[..., 0] if s is None else out


def _identity(x: Any, axis: Any = None, keepdims: bool = True) -> Any:
    return x


def _category_noise(xp: Any, rows: int, j0: int, j1: int, rng: Any, draw: int, ids: Any, dtype: np.dtype) -> Any:
    """The noise of categories ``j0 <= j < j1`` of the rows ``ids``, at draw
    ``draw``: the noise kernel of ``gumbel`` (from the registry) numbers a
    row's categories from 0, so it makes ``[0, j1)`` and the block keeps its
    own; the work of a split axis grows with the number of its chunks (a
    category offset in ``gumbel_fwd`` would remove that)."""
    kernel = OPS["gumbel"].kernel
    backend = namespace("gumbel", ids)[1] if xp is np else namespace("gumbel", xp.empty(0))[1]
    k0, k1 = philox_key(rng, "categorical")
    out = xp.empty((rows, j1), dtype)
    backend.launch(kernel, {"out": out, "rows": rows, "k": j1, "k0": k0, "k1": k1, "draw": draw,
                            "row_ids": ids, "nsamples": 1})
    return out[:, j0:j1]


def _top(val: Any, idx: Any, best: int) -> tuple[Any, Any]:
    """The ``best`` largest values of each row and their indices, in
    decreasing order, ties to the lowest index (padded with empty
    candidates): the kernels' order."""
    rows, n = val.shape
    if n < best:
        val = np.concatenate([val, np.full((rows, best - n), -np.inf, val.dtype)], axis=1)
        idx = np.concatenate([idx, np.full((rows, best - n), _SENTINEL)], axis=1)
    order = np.lexsort((idx, -val), axis=-1)[:, :best]
    return np.take_along_axis(val, order, 1), np.take_along_axis(idx, order, 1)


def _candidates(x: Any, m: Any, *rest: Any, tree: _Tree, block_info: Any = None) -> Any:
    """The candidates of one block of logits, along the category axis: per
    draw, its ``best`` values of ``z = (x - M) + G`` and their category
    indices, then ``M`` (the row maximum: NaN, ``+inf`` and ``-inf`` mark
    the rows with nothing to draw), the row's count of categories that are
    not ``-inf`` (without replacement) and its flat position in the batch
    (for the error message)."""
    loc = block_info[0]["array-location"]
    ax = tree.axis
    xp = _xp_of(x)
    compute = np.dtype(tree.compute)
    j0, j1 = loc[ax]
    x2 = xp.moveaxis(x, ax, -1)
    bshape = x2.shape[:-1]
    rows = math.prod(bshape)
    x2 = xp.ascontiguousarray(x2.reshape(rows, j1 - j0).astype(compute, copy=False))
    m2 = m.reshape(rows).astype(compute, copy=False)
    plan = _Plan(tree.op, ax, tree.ndim, (), tree.batch, 0, (), (), ())
    if tree.user_ids:
        check_row_id_values(xp, rest[0], tree.op)  # the in-memory ValueError
        ids = xp.ascontiguousarray(rest[0].reshape(rows).astype(np.int64, copy=False))
    else:
        ids = _row_ids(xp, plan, loc).reshape(rows)
    width, nb, b = tree.width, tree.draws * tree.best, tree.best
    out = np.empty((rows, width))
    step = max(1, NOISE_BLOCK_ELEMENTS // max(j1, 1))
    with _threads(xp):
        for r0 in range(0, rows, step):
            r1 = min(rows, r0 + step)
            xs, ms = x2[r0:r1], m2[r0:r1, None]
            for d in range(tree.draws):
                with np.errstate(over="ignore", invalid="ignore"):  # as the kernel: inf - inf is NaN
                    z = xs - ms
                    z += _category_noise(xp, r1 - r0, j0, j1, tree.rng, d, ids[r0:r1], compute)
                if xp is not np:
                    z = z.get()
                if b == 1:
                    # A row with something to draw has a finite maximum, so a
                    # -inf (masked) category never wins: argmax, the first
                    # maximum, is the kernel's choice.
                    first = z.argmax(axis=1) if j1 > j0 else np.zeros(r1 - r0, np.intp)
                    out[r0:r1, d] = z[np.arange(r1 - r0), first] if j1 > j0 else -np.inf
                    out[r0:r1, nb + d] = first + j0 if j1 > j0 else _SENTINEL
                else:
                    # A masked category is never drawn; one whose z overflowed
                    # to -inf is, after the finite ones, in index order.
                    host = xs if xp is np else xs.get()
                    idx = np.where(host == -np.inf, _SENTINEL, np.arange(j0, j1, dtype=np.float64))
                    out[r0:r1, d * b:(d + 1) * b], out[r0:r1, nb + d * b: nb + (d + 1) * b] = _top(z, idx, b)
    out[:, 2 * nb] = m2 if xp is np else m2.get()
    out[:, 2 * nb + 1] = 0 if tree.replace else ((x2 != -np.inf).sum(axis=1) if xp is np else (x2 != -np.inf).sum(axis=1).get())
    # The rows' positions, for the error message (-1 where the data's chunk
    # sizes are unknown: then the rows are known by their row ids only).
    known = not _unknown(tree.batch) and not any(_unknown(loc[d]) for d in range(tree.ndim) if d != ax)
    if not known:
        out[:, 2 * nb + 2] = -1
    elif tree.user_ids or xp is not np:
        out[:, 2 * nb + 2] = _row_ids(np, plan, loc).reshape(rows)
    else:
        out[:, 2 * nb + 2] = ids  # the default ids are the positions
    return np.moveaxis(out.reshape(bshape + (width,)), -1, ax)


def _merged(x: Any, tree: _Tree) -> tuple[np.ndarray, tuple[int, ...]]:
    """The candidates of several blocks (concatenated along the category
    axis) merged into one block's worth, as ``(rows, width)``."""
    ax = tree.axis
    x2 = np.moveaxis(x, ax, -1)
    bshape = x2.shape[:-1]
    rows = math.prod(bshape)
    W, nb, b = tree.width, tree.draws * tree.best, tree.best
    parts = x2.reshape(rows, -1, W)
    out = np.empty((rows, W))
    for d in range(tree.draws):
        val = parts[:, :, d * b:(d + 1) * b].reshape(rows, -1)
        idx = parts[:, :, nb + d * b: nb + (d + 1) * b].reshape(rows, -1)
        out[:, d * b:(d + 1) * b], out[:, nb + d * b: nb + (d + 1) * b] = _top(val, idx, b)
    out[:, 2 * nb] = parts[:, 0, 2 * nb]
    out[:, 2 * nb + 1] = parts[:, :, 2 * nb + 1].sum(axis=1)
    out[:, 2 * nb + 2] = parts[:, 0, 2 * nb + 2]
    return out, bshape


def _merge_tree(x: Any, axis: Any = None, keepdims: bool = True, tree: _Tree | None = None) -> Any:
    out, bshape = _merged(x, tree)
    return np.moveaxis(out.reshape(bshape + (tree.width,)), -1, tree.axis)


def _finish_tree(x: Any, axis: Any = None, keepdims: bool = True, tree: _Tree | None = None) -> Any:
    """The samples of the merged candidates; the in-memory ValueError for
    the first row with nothing (or, without replacement, too little) to
    draw, named by its position in the whole batch."""
    out, bshape = _merged(x, tree)
    nb = tree.draws * tree.best
    m, live = out[:, 2 * nb], out[:, 2 * nb + 1]
    bad = ~np.isfinite(m)
    if not tree.replace:
        bad |= live < tree.best
    if bad.any():
        where_rows = np.flatnonzero(bad)
        r = int(where_rows[0])
        p = int(out[r, 2 * nb + 2])
        pos = tuple(int(i) for i in np.unravel_index(p, tree.batch)) if p >= 0 else "(position unknown)"
        what = None if np.isfinite(m[r]) else (  # a finite maximum: too few categories
            "holds NaN" if np.isnan(m[r]) else ("holds +inf" if m[r] > 0 else "is all -inf")
        )
        _ops.raise_no_distribution(tree.op, pos, what, int(where_rows.size), int(live[r]), tree.k)
    samples = out[:, nb: 2 * nb].astype(np.int64)
    return np.moveaxis(samples.reshape(bshape + (nb,)), -1, tree.axis)
