"""GPU backend: the launch contract of ``kernels/cpu.py`` on CuPy arrays.

:func:`launch` takes a kernel record of the registry (``gumbel_np._ops``) and
its parameters' values: 2-D C-contiguous ``(rows, K)`` CuPy arrays of one
float dtype (float16, float32 or float64) and preallocated outputs; the
kernel runs on the device that holds them (:func:`device`; the public layer
enters it for the whole call) and on CuPy's current stream.  The kernel
lists and name expressions below, and every launch's argument list, come
from the registry's records.  float16 arrays are
taken as they are (:data:`HALF_STORAGE`): the kernels load and store
``__half`` and compute in float, so temperatures (``tau``) and the
temperature gradient (``dtau``) of float16 data are float32 arrays, and the
noise of float16 data is the float32 stream rounded to half.

The kernels live in the ``<stem>.cu`` file each registry record names (``softmax``,
``gumbel``, ``estimators``, ``binary``, ``ranking``, ``concrete``, ``conditional``;
with ``rows.cuh`` and ``philox.cuh``), shipped as package data.  There is one
loader: each source is read once per
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
import re
import threading
from functools import cache
from typing import Any

import numpy as np

from .._ops import KERNELS as _REGISTRY
from .._ops import PARAMS, Kernel

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
    stem: tuple(k.name for k in _REGISTRY.values() if k.stem == stem)
    for stem in dict.fromkeys(k.stem for k in _REGISTRY.values())
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


def _kernel(op: str, dtype: np.dtype) -> tuple[Any, int]:
    """The compiled ``op<T>`` on the current device, and the device's SM count."""
    cupy = _cupy()
    dev = cupy.cuda.Device().id
    expr = f"{op}<{_CTYPES[np.dtype(dtype)]}>"
    fn = _functions.get((dev, expr))
    if fn is None:
        stem = _REGISTRY[op].stem
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
# Devices


def device(func: str, *arrays: Any) -> Any:
    """The device a call runs on: the one that holds its CuPy arrays (the
    current device when none is given); ValueError when they lie on several."""
    cupy = _cupy()
    ids = sorted({a.device.id for a in arrays if isinstance(a, cupy.ndarray)})
    if len(ids) > 1:
        raise ValueError(
            f"{func}: the arrays lie on different CUDA devices {ids}; move them to one device "
            "(cupy.asarray under cupy.cuda.Device(i))"
        )
    return cupy.cuda.Device(ids[0]) if ids else cupy.cuda.Device()


# --------------------------------------------------------------------------
# Argument checks (the public layer has validated; these catch misuse of the
# launch contract, which would otherwise write out of bounds)


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


def _tau(tau: Any, n: int, dtype: np.dtype, op: str) -> tuple[Any, np.int64]:
    """``tau`` as a contiguous array of the compute dtype of ``dtype`` data
    (one value, or ``n``: one per row or per element), and its stride."""
    cupy = _cupy()
    t = cupy.ascontiguousarray(cupy.asarray(tau, dtype=_compute(dtype)).reshape(-1))
    if t.size == 1:
        return t, np.int64(0)
    if t.size != n:
        raise ValueError(f"{op}: tau must hold 1 or {n} values, got {t.size}")
    return t, np.int64(1)


_SCALARS = {
    "i64": np.int64,
    "u32": lambda v: np.uint32(int(v) & 0xFFFFFFFF),
    "int": lambda v: np.int32(int(v)),
    "double": lambda v: np.float64(float(v)),
}
"""Each scalar parameter type as the NumPy scalar of its exact C type."""


def _array_dtype(ctype: str, dtype: np.dtype) -> np.dtype:
    base = ctype.removeprefix("const ").rstrip("*")
    return {"S": dtype, "T": _compute(dtype), "i64": np.dtype(np.int64), "bool": np.dtype(np.bool_)}[base]


def _shape(spec: str, rows: int, k: int, nsamples: int) -> tuple[int, ...]:
    return tuple({"R": rows, "K": k, "N": nsamples, "U": 1}[c] for c in spec)


# --------------------------------------------------------------------------
# The launch contract


def launch(kernel: Kernel, values: dict[str, Any]) -> None:
    """Run ``kernel`` of the registry on ``values`` (its parameters, by name).

    The arrays are checked against the parameters' shapes and dtypes (inputs
    are made contiguous copies of the data dtype where they are not; outputs
    must already be), absent optional arrays become null pointers, and
    :func:`launch_plan` gives the geometry and the argument list.
    """
    op = kernel.name
    dtype = _dtype(values[kernel.data], op)
    rows, k = int(values["rows"]), int(values["k"])
    nsamples = int(values.get("nsamples", 1))
    args: dict[str, Any] = {}
    for p in kernel.cuda:
        param = PARAMS[p]
        v = values.get(p)
        if not param.pointer:
            if p in values:
                args[p] = v
        elif v is None:
            if not param.optional:
                raise ValueError(f"{op}: {p} is required")
            args[p] = _NULL
        elif param.shape in ("1|R", "1|RK"):
            n = rows if param.shape == "1|R" else rows * k
            args[p], args[f"{p}_stride"] = _tau(v, n, dtype, op)
        else:
            want = _array_dtype(param.ctype, dtype)
            shape = _shape(param.shape, rows, k, nsamples)
            check = _input if param.ctype.startswith("const") else _output
            args[p] = check(v, shape, want, op, p)
    if nothing_to_write(kernel, rows, k, nsamples):
        return
    fn, sms = _kernel(op, dtype)
    fn(*launch_plan(kernel, args, dtype, sms))


def nothing_to_write(kernel: Kernel, rows: int, k: int, nsamples: int) -> bool:
    """Whether a launch of ``kernel`` would write nothing: no rows, no draws
    where the result has a draw axis, or empty rows of an element-wise
    kernel.  A row kernel still writes the result of an empty row (its
    logsumexp, -inf) and of an empty ranking or sample set (its
    log-probability 0, a zero gradient)."""
    draws = "N" in PARAMS[kernel.output].shape
    return rows == 0 or (draws and nsamples == 0) or (kernel.geometry == "flat" and k == 0)


def launch_plan(
    kernel: Kernel, args: dict[str, Any], dtype: np.dtype, sms: int
) -> tuple[tuple[int], tuple[int], tuple[Any, ...]]:
    """``(grid, block, arguments)`` of a launch of ``kernel`` on ``sms``
    multiprocessors (pure Python; the host emulation of the kernels uses it
    too).  ``args`` holds the pointer arguments (arrays, or :data:`_NULL`;
    one not given is passed as None),
    ``tau_stride`` beside a per-row ``tau``, and the scalars the caller sets
    (``rows``, ``k``, ``nsamples``, the key words, ``noise_mode``, ``hard``);
    the geometry follows ``kernel.geometry`` and sets ``lanes`` and
    ``per_item``.  Every scalar becomes the NumPy scalar of its C type.
    """
    rows, k = int(args["rows"]), int(args["k"])
    words = _NOISE_WORDS[np.dtype(dtype)]
    geometry: dict[str, int] = {}
    if kernel.geometry == "flat":
        draws = int(args.get("nsamples", 1)) if "nsamples" in kernel.cuda else 1
        threads, blocks = flat_geometry(rows * -(-k // words) * draws, sms)
    else:
        units = -(-k // (ELEMENTS_PER_LANE if kernel.geometry == "rows" else words))
        lanes, threads, blocks = row_geometry(rows, k, units, sms)
        geometry["lanes"] = lanes
        if kernel.geometry == "items":
            nsamples = int(args["nsamples"])
            per_item = draws_per_item(rows, nsamples, lanes, sms)
            geometry["per_item"] = per_item
            _, _, blocks = row_geometry(rows * -(-nsamples // per_item), k, units, sms)
    out = []
    for p in kernel.cuda:
        param = PARAMS[p]
        if param.pointer:
            out.append(args.get(p))
        else:
            v = geometry[p] if p in geometry else args.get(p)
            out.append(_SCALARS[param.ctype](0 if v is None else v))
    return (blocks,), (threads,), tuple(out)
