"""GPU backend: the backend contract of ``kernels/cpu.py`` on CuPy arrays.

Every function takes 2-D C-contiguous ``(rows, K)`` CuPy arrays of one float
dtype (float16, float32 or float64) and writes into preallocated outputs, on
the device that holds them and on CuPy's current stream.  float16 arrays are
taken as they are (:data:`HALF_STORAGE`): the kernels load and store
``__half`` and compute in float, so temperatures (``tau``) and the
temperature gradient (``dtau``) of float16 data are float32 arrays, and the
noise of float16 data is the float32 stream rounded to half.

The kernels live in ``softmax.cu`` and ``gumbel.cu`` (with ``rows.cuh`` and ``philox.cuh``),
shipped as package data.  There is one loader: each source is read once per
process through :mod:`importlib.resources`, its quoted ``#include`` lines
replaced by the header text (so CuPy's on-disk kernel cache, keyed by the
source text, sees every header change), and compiled once per device as a
``cupy.RawModule`` whose ``name_expressions`` name every ``<float>``,
``<double>`` and ``<__half>`` kernel (the sources include ``<cuda_fp16.h>``,
which CuPy's include path provides).  Every scalar argument is a NumPy scalar
of the exact C type of the kernel parameter (CuPy does not check them).

Importing this module imports no CuPy and compiles nothing; the first call
imports CuPy (``ImportError`` naming the package to install when it is
missing) and checks that a device is usable (``RuntimeError`` otherwise).

Launch geometry (:func:`row_geometry`): rows of up to :data:`WARP_MAX_K`
elements run ``lanes`` threads per row (a power of two, at most a warp, giving
each thread about :data:`ELEMENTS_PER_LANE` elements or one Philox block) in
blocks of :data:`WARP_BLOCK` threads; longer rows run a block of
:data:`ROW_BLOCK` threads per row.  Both loop over rows on a grid capped at
:data:`WAVES` full waves of resident blocks.  ``gumbel_fwd`` has no reduction
and runs one thread per Philox block over the flat array.
"""

from __future__ import annotations

import importlib
import importlib.resources
import numbers
import re
import threading
from functools import cache
from typing import Any

import numpy as np

name = "cuda"

HALF_STORAGE = True
"""float16 arrays reach this backend unconverted (see the module docstring)."""

WARP_MAX_K = 1024
"""Rows up to this many elements get a warp (or less) each; longer rows a block."""

WARP_BLOCK = 256
"""Threads per block of a warp-per-row launch."""

ROW_BLOCK = 512
"""Threads per block of a block-per-row launch (``GNP_ROW_BLOCK`` in rows.cuh,
which is also every row kernel's ``__launch_bounds__``)."""

FLAT_BLOCK = 256
"""Threads per block of the element-wise noise kernel."""

WAVES = 8
"""Grid cap, in waves of resident blocks: enough blocks to balance the
grid-stride loops, few enough that the cap (not the row count) bounds the grid
size for very large batches."""

ELEMENTS_PER_LANE = 4
"""Short rows of the softmax family get about this many elements per thread
(a row of 16 runs on 4 lanes, 8 rows to a warp): fewer shuffle steps per row
and several independent loads in flight per thread."""

THREADS_PER_SM = 2048
"""Resident threads per multiprocessor on sm_80 and sm_90."""

COMPILE_OPTIONS = ("-std=c++17",)
"""NVRTC options: no ``--use_fast_math`` (it flushes denormals and uses the
approximate logf/expf, which would break the noise tail and -inf masking)."""

_CTYPES = {
    np.dtype(np.float32): "float",
    np.dtype(np.float64): "double",
    np.dtype(np.float16): "__half",
}
"""The storage type each kernel template is instantiated on, per array dtype."""

_COMPUTE = {np.dtype(np.float16): np.dtype(np.float32)}
"""The dtype a kernel computes in, where it is not the storage dtype: its
temperature and temperature-gradient arrays have this dtype."""

KERNELS = {
    "softmax": (
        "logsumexp_fwd",
        "softmax_fwd",
        "log_softmax_fwd",
        "logsumexp_bwd",
        "softmax_bwd",
        "log_softmax_bwd",
    ),
    "gumbel": ("gumbel_fwd", "gumbel_softmax_fwd", "gumbel_softmax_bwd", "categorical_fwd"),
}
"""The kernels of each source file (``<stem>.cu``)."""

NAME_EXPRESSIONS = {
    stem: tuple(f"{op}<{ctype}>" for op in ops for ctype in _CTYPES.values())
    for stem, ops in KERNELS.items()
}
"""The ``name_expressions`` each module is compiled with."""

_NOISE_WORDS = {np.dtype(np.float32): 4, np.dtype(np.float64): 2, np.dtype(np.float16): 4}
"""Elements per Philox block (the ``W`` of the stream mapping; float16 data
draws the float32 stream)."""

_NULL = np.uint64(0)
"""A null pointer argument: 8 zero bytes, whatever CuPy does with ``None``."""

_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]+"([^"]+)"[ \t]*$', re.MULTILINE)

_lock = threading.Lock()
_modules: dict[tuple[int, str], Any] = {}
_functions: dict[tuple[int, str], Any] = {}
_sms: dict[int, int] = {}
_cupy_module: Any = None


# --------------------------------------------------------------------------
# Loader


def _cupy() -> Any:
    """CuPy, imported on first use, with a usable device."""
    global _cupy_module
    if _cupy_module is not None:
        return _cupy_module
    try:
        cupy = importlib.import_module("cupy")
    except ImportError as exc:
        raise ImportError(
            "gumbel_np CUDA backend: CuPy is not installed; install cupy-cuda12x or "
            "cupy-cuda13x (pip install gumbel-np[cuda12] or gumbel-np[cuda13])"
        ) from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except (RuntimeError, OSError) as exc:  # CUDARuntimeError, or no driver library
        raise RuntimeError(
            f"gumbel_np CUDA backend: CuPy is installed but no CUDA device is usable ({exc})"
        ) from exc
    if count < 1:
        raise RuntimeError("gumbel_np CUDA backend: CuPy is installed but no CUDA device is usable")
    _cupy_module = cupy
    return cupy


def _read(filename: str) -> str:
    return importlib.resources.files("gumbel_np.kernels").joinpath(filename).read_text("utf-8")


@cache
def source(stem: str) -> str:
    """The CUDA source of ``<stem>.cu`` with its quoted includes inlined."""
    seen: set[str] = set()

    def expand(filename: str) -> str:
        seen.add(filename)

        def include(match: re.Match[str]) -> str:
            header = match.group(1)
            if header in seen:
                return f"// {header}: already included"
            return f"// begin {header}\n{expand(header)}\n// end {header}"

        return _INCLUDE.sub(include, _read(filename))

    return expand(f"{stem}.cu")


def _stem(op: str) -> str:
    for stem, ops in KERNELS.items():
        if op in ops:
            return stem
    raise KeyError(op)


def _kernel(op: str, dtype: np.dtype) -> tuple[Any, int]:
    """The compiled ``op<T>`` on the current device, and the device's SM count."""
    cupy = _cupy()
    dev = cupy.cuda.Device().id
    expr = f"{op}<{_CTYPES[np.dtype(dtype)]}>"
    fn = _functions.get((dev, expr))
    if fn is None:
        stem = _stem(op)
        with _lock:
            mod = _modules.get((dev, stem))
            if mod is None:
                mod = cupy.RawModule(
                    code=source(stem),
                    options=COMPILE_OPTIONS,
                    name_expressions=NAME_EXPRESSIONS[stem],
                )
                mod.compile()
                _modules[(dev, stem)] = mod
            if dev not in _sms:
                _sms[dev] = int(cupy.cuda.Device(dev).attributes["MultiProcessorCount"])
            fn = _functions.get((dev, expr))
            if fn is None:
                fn = mod.get_function(expr)
                # Published last: another thread takes the lock-free path
                # above as soon as it sees the function, and reads _sms.
                _functions[(dev, expr)] = fn
    return fn, _sms[dev]


# --------------------------------------------------------------------------
# Launch geometry (pure Python, so it is testable without a GPU)


def row_geometry(rows: int, k: int, units: int, sms: int) -> tuple[int, int, int]:
    """``(lanes, threads per block, blocks)`` of a row kernel.

    ``units``: the row length in what one lane should handle at least:
    groups of :data:`ELEMENTS_PER_LANE` elements for the softmax family,
    Philox blocks for the Gumbel kernels.  ``lanes`` is 0 for a block per row.
    """
    if k <= WARP_MAX_K:
        lanes = min(32, 1 << max(units - 1, 0).bit_length())
        per_block = WARP_BLOCK // lanes
        cap = sms * (THREADS_PER_SM // WARP_BLOCK) * WAVES
        return lanes, WARP_BLOCK, max(1, min(-(-rows // per_block), cap))
    cap = sms * (THREADS_PER_SM // ROW_BLOCK) * WAVES
    return 0, ROW_BLOCK, max(1, min(rows, cap))


def flat_geometry(total: int, sms: int) -> tuple[int, int]:
    """``(threads per block, blocks)`` of the element-wise noise kernel."""
    cap = sms * (THREADS_PER_SM // FLAT_BLOCK) * WAVES
    return FLAT_BLOCK, max(1, min(-(-total // FLAT_BLOCK), cap))


def draws_per_item(rows: int, nsamples: int, lanes: int, sms: int) -> int:
    """Draws per work item of ``categorical_fwd``.

    All of a row's draws form one item (the row maximum and shifted logits
    are then computed once) unless there are too few rows to fill the
    device, in which case the draws are split into runs.
    """
    groups = sms * THREADS_PER_SM // 2 // (lanes if lanes > 0 else ROW_BLOCK)
    if rows == 0 or nsamples <= 1 or rows >= groups:
        return max(nsamples, 1)
    runs = min(nsamples, -(-groups // rows))
    return -(-nsamples // runs)


# --------------------------------------------------------------------------
# Argument checks (the public layer has validated; these catch misuse of the
# backend contract, which would otherwise write out of bounds)


def _dtype(x: Any, op: str) -> np.dtype:
    _cupy()  # ImportError / RuntimeError first: without CuPy nothing below can work
    dtype = np.dtype(x.dtype)
    if dtype not in _CTYPES:
        raise TypeError(
            f"{op}: the CUDA backend takes float16, float32 or float64 arrays, got {dtype}"
        )
    return dtype


def _compute(dtype: np.dtype) -> np.dtype:
    """The dtype the kernels of ``dtype`` data compute in (float32 for float16)."""
    return _COMPUTE.get(np.dtype(dtype), np.dtype(dtype))


def _input(x: Any, shape: tuple[int, ...], dtype: np.dtype, op: str, what: str) -> Any:
    cupy = _cupy()
    a = cupy.ascontiguousarray(cupy.asarray(x, dtype=dtype))
    if a.shape != tuple(shape):
        raise ValueError(f"{op}: {what} must have shape {tuple(shape)}, got {a.shape}")
    return a


def _output(a: Any, shape: tuple[int, ...], dtype: np.dtype, op: str, what: str) -> Any:
    if a.shape != tuple(shape) or np.dtype(a.dtype) != dtype or not a.flags.c_contiguous:
        raise ValueError(
            f"{op}: {what} must be a C-contiguous {dtype} array of shape {tuple(shape)}, "
            f"got {a.dtype} {a.shape} (c_contiguous={a.flags.c_contiguous})"
        )
    return a


def _row_ids(row_ids: Any, rows: int, op: str) -> Any:
    if row_ids is None:
        return _NULL
    return _input(row_ids, (rows,), np.dtype(np.int64), op, "row_ids")


def _key(key: Any) -> tuple[np.uint32, np.uint32]:
    """The two Philox key words; None (explicit or no noise: no key drawn) gives (0, 0)."""
    if key is None:
        return np.uint32(0), np.uint32(0)
    return np.uint32(int(key[0]) & 0xFFFFFFFF), np.uint32(int(key[1]) & 0xFFFFFFFF)


def _tau(tau: Any, rows: int, dtype: np.dtype, op: str) -> tuple[Any, np.int64]:
    """``tau`` as a contiguous array of the compute dtype of ``dtype`` data, and its stride."""
    cupy = _cupy()
    t = cupy.ascontiguousarray(cupy.asarray(tau, dtype=_compute(dtype)).reshape(-1))
    if t.size == 1:
        return t, np.int64(0)
    if t.size != rows:
        raise ValueError(f"{op}: tau must hold 1 or {rows} values, got {t.size}")
    return t, np.int64(1)


# --------------------------------------------------------------------------
# Softmax family


def _rows_op(op: str, inputs: tuple[Any, ...], out: Any, shape: tuple[int, int]) -> None:
    """Launch ``op(*inputs, out, rows, k, lanes)`` of softmax.cu."""
    rows, k = shape
    if rows == 0:
        return
    with out.device:
        fn, sms = _kernel(op, out.dtype)
        lanes, threads, blocks = row_geometry(rows, k, -(-k // ELEMENTS_PER_LANE), sms)
        fn((blocks,), (threads,), (*inputs, out, np.int64(rows), np.int64(k), np.int32(lanes)))


def logsumexp_fwd(x: Any, out: Any) -> None:
    op = "logsumexp_fwd"
    dtype = _dtype(x, op)
    rows, k = x.shape
    x = _input(x, (rows, k), dtype, op, "x")
    _rows_op(op, (x,), _output(out, (rows,), dtype, op, "out"), (rows, k))


def softmax_fwd(x: Any, out: Any) -> None:
    op = "softmax_fwd"
    dtype = _dtype(x, op)
    x = _input(x, x.shape, dtype, op, "x")
    _rows_op(op, (x,), _output(out, x.shape, dtype, op, "out"), x.shape)


def log_softmax_fwd(x: Any, out: Any) -> None:
    op = "log_softmax_fwd"
    dtype = _dtype(x, op)
    x = _input(x, x.shape, dtype, op, "x")
    _rows_op(op, (x,), _output(out, x.shape, dtype, op, "out"), x.shape)


def logsumexp_bwd(g: Any, x: Any, out: Any) -> None:
    op = "logsumexp_bwd"
    dtype = _dtype(x, op)
    rows, k = x.shape
    g = _input(g, (rows,), dtype, op, "g")
    x = _input(x, (rows, k), dtype, op, "x")
    _rows_op(op, (g, x), _output(out, (rows, k), dtype, op, "out"), (rows, k))


def softmax_bwd(g: Any, y: Any, out: Any) -> None:
    op = "softmax_bwd"
    dtype = _dtype(y, op)
    g = _input(g, y.shape, dtype, op, "g")
    y = _input(y, y.shape, dtype, op, "y")
    _rows_op(op, (g, y), _output(out, y.shape, dtype, op, "out"), y.shape)


def log_softmax_bwd(g: Any, y: Any, out: Any) -> None:
    op = "log_softmax_bwd"
    dtype = _dtype(y, op)
    g = _input(g, y.shape, dtype, op, "g")
    y = _input(y, y.shape, dtype, op, "y")
    _rows_op(op, (g, y), _output(out, y.shape, dtype, op, "out"), y.shape)


# --------------------------------------------------------------------------
# Gumbel family


def gumbel_fwd(out: Any, key: Any, row_ids: Any = None, draw: int = 0) -> None:
    op = "gumbel_fwd"
    dtype = _dtype(out, op)
    rows, k = out.shape
    _output(out, (rows, k), dtype, op, "out")
    total = rows * -(-k // _NOISE_WORDS[dtype])
    if total == 0:
        return
    with out.device:
        ids = _row_ids(row_ids, rows, op)
        k0, k1 = _key(key)
        fn, sms = _kernel(op, dtype)
        threads, blocks = flat_geometry(total, sms)
        fn(
            (blocks,),
            (threads,),
            (out, np.int64(rows), np.int64(k), k0, k1, ids, np.uint32(int(draw) & 0xFFFFFFFF)),
        )


def gumbel_softmax_fwd(
    logits: Any,
    out: Any,
    key: Any,
    row_ids: Any,
    tau: Any,
    noise: Any,
    out_soft: Any,
    hard: bool,
) -> None:
    """``out`` = Gumbel-Softmax sample of ``logits`` (its one-hot when ``hard``).

    ``tau``: 1 or ``rows`` temperatures (float32 for float16 data).  ``noise``:
    None (draw from ``key`` and ``row_ids`` at draw index 0), a ``(rows, K)``
    array of ``logits``' dtype, or 0 (no noise).
    ``out_soft``: None, or where the soft sample goes when ``hard``.
    """
    op = "gumbel_softmax_fwd"
    dtype = _dtype(logits, op)
    rows, k = logits.shape
    logits = _input(logits, (rows, k), dtype, op, "logits")
    _output(out, (rows, k), dtype, op, "out")
    if out_soft is not None:
        _output(out_soft, (rows, k), dtype, op, "out_soft")
    if rows == 0:
        return
    with out.device:
        tau_arr, tau_stride = _tau(tau, rows, dtype, op)
        if noise is None:
            mode, noise_arr = 0, _NULL
        elif isinstance(noise, numbers.Real) and not isinstance(noise, bool):
            if noise != 0:
                raise ValueError(f"{op}: a scalar noise must be 0 (no noise), got {noise!r}")
            mode, noise_arr = 2, _NULL
        else:
            mode, noise_arr = 1, _input(noise, (rows, k), dtype, op, "noise")
        ids = _row_ids(row_ids, rows, op)
        k0, k1 = _key(key)
        fn, sms = _kernel(op, dtype)
        lanes, threads, blocks = row_geometry(rows, k, -(-k // _NOISE_WORDS[dtype]), sms)
        fn(
            (blocks,),
            (threads,),
            (
                logits,
                out,
                np.int64(rows),
                np.int64(k),
                k0,
                k1,
                ids,
                tau_arr,
                tau_stride,
                np.int32(mode),
                noise_arr,
                _NULL if out_soft is None else out_soft,
                np.int32(1 if hard else 0),
                np.int32(lanes),
            ),
        )


def gumbel_softmax_bwd(g: Any, y_soft: Any, tau: Any, out: Any, dtau: Any) -> None:
    """``out`` = VJP of the Gumbel-Softmax given the soft sample; ``dtau`` (None
    or ``(rows,)``, float32 for float16 data, as ``tau``) = the per-row
    temperature gradient."""
    op = "gumbel_softmax_bwd"
    dtype = _dtype(y_soft, op)
    rows, k = y_soft.shape
    g = _input(g, (rows, k), dtype, op, "g")
    y_soft = _input(y_soft, (rows, k), dtype, op, "y_soft")
    _output(out, (rows, k), dtype, op, "out")
    if dtau is not None:
        _output(dtau, (rows,), _compute(dtype), op, "dtau")
    if rows == 0:
        return
    with out.device:
        tau_arr, tau_stride = _tau(tau, rows, dtype, op)
        fn, sms = _kernel(op, dtype)
        lanes, threads, blocks = row_geometry(rows, k, -(-k // ELEMENTS_PER_LANE), sms)
        fn(
            (blocks,),
            (threads,),
            (
                g,
                y_soft,
                tau_arr,
                tau_stride,
                out,
                _NULL if dtau is None else dtau,
                np.int64(rows),
                np.int64(k),
                np.int32(lanes),
            ),
        )


def categorical_fwd(logits: Any, out: Any, key: Any, row_ids: Any) -> None:
    """``out[r, s]`` = Gumbel-Max sample ``s`` of row ``r`` (-1 for a row whose
    maximum is NaN or infinite); ``out`` is int64 ``(rows, S)``."""
    op = "categorical_fwd"
    dtype = _dtype(logits, op)
    rows, k = logits.shape
    logits = _input(logits, (rows, k), dtype, op, "logits")
    if out.ndim != 2 or out.shape[0] != rows:
        raise ValueError(f"{op}: out must have shape ({rows}, S), got {out.shape}")
    nsamples = out.shape[1]
    _output(out, (rows, nsamples), np.dtype(np.int64), op, "out")
    if rows == 0 or nsamples == 0:
        return
    with out.device:
        ids = _row_ids(row_ids, rows, op)
        k0, k1 = _key(key)
        fn, sms = _kernel(op, dtype)
        lanes, threads, _ = row_geometry(rows, k, -(-k // _NOISE_WORDS[dtype]), sms)
        per_item = draws_per_item(rows, nsamples, lanes, sms)
        items = rows * -(-nsamples // per_item)
        _, _, blocks = row_geometry(items, k, -(-k // _NOISE_WORDS[dtype]), sms)
        fn(
            (blocks,),
            (threads,),
            (
                logits,
                out,
                np.int64(rows),
                np.int64(k),
                np.int64(nsamples),
                np.int64(per_item),
                k0,
                k1,
                ids,
                np.int32(lanes),
            ),
        )
