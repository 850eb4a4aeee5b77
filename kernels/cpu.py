"""CPU backend: the launch contract on NumPy arrays, run by Numba kernels.

:func:`launch` takes a kernel record of the registry (``gumbel_np._ops``) and
the values of its parameters: 2-D C-contiguous ``(rows, K)`` arrays of one
float dtype (float32 or float64), preallocated outputs and scalars; the
public layer has already validated, converted and reshaped.
``kernels/cuda.py`` implements the same contract on CuPy arrays.

Kernel modules are imported on first use, so ``import gumbel_np`` compiles
nothing; each kernel compiles on its first call for a given dtype.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
from typing import Any, Callable

import numpy as np

from .._ops import PARAMS, Kernel
from ._jit import as_u64

name = "cpu"

HALF_STORAGE = False
"""float16 arrays are converted to float32 before they reach this backend."""

_NO_ROWS = np.empty(0, np.int64)
"""The "no array" of an absent int64 pointer (``row_ids``)."""

_NO_DATA = {np.dtype(t): np.empty(0, t) for t in (np.float32, np.float64)}
"""The "no array" of an absent float pointer, per data dtype (the Numba
kernels are specialised on it, so it has the data's dtype)."""


_HOST = contextlib.nullcontext()


def device(func: str, *arrays: Any) -> contextlib.nullcontext:
    """The context a call runs in: the host (nothing to select)."""
    return _HOST


@functools.cache
def _kernels(module: str) -> Any:
    return importlib.import_module(f"{__package__}.{module}")


def _argument(p: str) -> Callable[[dict, Any], Any]:
    """How the value of parameter ``p`` becomes the Numba kernel's argument
    (``values``, the data dtype's "no array")."""
    param = PARAMS[p]
    if param.ctype == "u32":
        return lambda v, none: as_u64(v.get(p, 0))
    if p == "hard":
        return lambda v, none: bool(v[p])
    if not param.pointer:
        return lambda v, none: v[p]
    flat = len(param.shape) == 2  # (rows, K) or (rows, N): the kernels take them flat
    if param.optional:
        absent = _NO_ROWS if "i64" in param.ctype else None

        def optional(v: dict, none: Any) -> Any:
            a = v.get(p)
            if a is None:
                return none if absent is None else absent
            return a.ravel() if flat else a

        return optional
    if flat:
        return lambda v, none: v[p].ravel()
    return lambda v, none: v[p]


@functools.cache
def _plan(kernel: Kernel) -> tuple[Callable[..., Any], tuple[Callable[[dict, Any], Any], ...], str]:
    """The Numba function of ``kernel``, its argument builders and its data parameter."""
    fn = getattr(_kernels(kernel.stem), kernel.name)
    return fn, tuple(_argument(p) for p in kernel.cpu), kernel.data


def launch(kernel: Kernel, values: dict[str, Any]) -> None:
    """Run ``kernel`` on the rows of ``values`` (its parameters, by name)."""
    fn, arguments, data = _plan(kernel)
    none = _NO_DATA[values[data].dtype]
    rows, k = values["rows"], values["k"]
    args = [a(values, none) for a in arguments]
    if kernel.work == "k":
        fn(rows, k, *args)
    else:
        fn(rows, k, *args, work=k * values["nsamples"])
