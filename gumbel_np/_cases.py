"""Example calls of every operation: one table for the tests and the benchmarks.

:func:`calls` builds, for each operation of the registry (``_ops.OPS``) and
each of its :data:`VARIANTS`, a :class:`Call`: the operation's positional
arrays made from their roles (``data``: random logits, or for a backward pass
the output of its forward; ``pair``: other random logits; ``index``:
:data:`DRAWS` samples per row of ``categorical`` of the logits; ``values``
and ``grad_index``: random numbers of the index's shape; ``grad``: a random
gradient of the data's shape; ``grad_batch``: one of the forward output's
per-row shape; ``choice``: the single draw of ``categorical``) and its options
(:data:`OPTIONS`).  The tests run every call against its reference,
gradient check, ``out=`` and invariance checks; the benchmarks time the same
calls against their peers.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._ops import OPS

OPTIONS: dict[str, Any] = {"tau": 0.7, "rng": 3}
"""The options every example call sets (where the operation has them)."""

VARIANTS: dict[str, tuple[dict[str, Any], ...]] = {
    "logsumexp": ({}, {"keepdims": True}),
    "logsumexp_backward": ({}, {"keepdims": True}),
    "gumbel_softmax": ({}, {"hard": True}),
    "categorical": ({}, {"num_samples": 3}, {"num_samples": 3, "replace": False}),
    "reinforce": ({}, {"baseline": "loo"}, {"baseline": 0.25}),
    "bernoulli": ({}, {"num_samples": 3}),
    "conditional_gumbel": ({}, {"num_samples": 3}),
    "gumbel_rao_backward": ({"num_samples": 1}, {}),
    "gumbel_sigmoid": ({}, {"hard": True}),
}
"""Calls beyond the defaults: each dict is one call's extra options."""


SAMPLES: dict[str, str] = {
    "exp_concrete_log_prob": "log_gumbel_softmax",
    "concrete_log_prob": "gumbel_softmax",
    "binary_concrete_log_prob": "gumbel_sigmoid",
}
"""The sampler of each density: its example calls (and its backward pass's)
evaluate it at a sample of the pair logits, at the call's temperature."""


DRAWS = 3
"""Samples per row of the example calls that take an ``index`` (the batch
shape plus one sample axis of this length)."""


@dataclass
class Call:
    """One example call: ``gumbel_np.<op>(*arrays, axis=axis, **options)``."""

    op: str
    label: str
    arrays: tuple[Any, ...]
    options: dict[str, Any] = field(default_factory=dict)
    axis: int = -1

    def __call__(self, **extra: Any) -> Any:
        fn, takes_axis = _function(self.op)
        if takes_axis:
            return fn(*self.arrays, axis=self.axis, **self.options, **extra)
        return fn(*self.arrays, **self.options, **extra)

    def nbytes(self, result: Any) -> int:
        """Bytes the call must move: its arrays read and ``result`` written."""
        result = result[0] if isinstance(result, tuple) else result
        return sum(int(a.nbytes) for a in self.arrays if hasattr(a, "nbytes")) + int(result.nbytes)


@functools.lru_cache(maxsize=None)
def _function(name: str) -> tuple[Any, bool]:
    """The public function ``name`` and whether it takes ``axis`` (the
    element-wise functions without noise have no stream to index).  Looked
    up once: the benchmarks time calls made through :class:`Call`."""
    import gumbel_np

    fn = getattr(gumbel_np, name)
    return fn, "axis" in inspect.signature(fn).parameters


def _public(name: str, *arrays: Any, axis: int, **options: Any) -> Any:
    """``gumbel_np.<name>(*arrays, axis=axis, **options)``, without ``axis``
    where the function has none."""
    fn, takes_axis = _function(name)
    return fn(*arrays, axis=axis, **options) if takes_axis else fn(*arrays, **options)


def label(op: str, extra: dict[str, Any]) -> str:
    """``"gumbel_softmax hard"``, ``"categorical num_samples=3"``, ...: the
    operation and its variant's options."""
    words = [op] + [k if v is True else f"{k}={v}" for k, v in extra.items()]
    return " ".join(words)


def _forward_options(name: str, extra: dict[str, Any]) -> dict[str, Any]:
    op = OPS[name]
    opts = {k: v for k, v in OPTIONS.items() if k in op.options}
    opts.update({k: v for k, v in extra.items() if k in op.options})
    return opts


def make(
    name: str,
    shape: tuple[int, ...],
    dtype: Any = np.float32,
    xp: Any = np,
    axis: int = -1,
    seed: int = 0,
    draws: int = DRAWS,
    **extra: Any,
) -> Call:
    """The example call of operation ``name`` on data of ``shape`` and
    ``dtype`` (in ``xp``'s arrays), with ``extra`` options (and ``draws``
    samples per row where it takes an ``index``)."""
    import gumbel_np as gnp

    op = OPS[name]
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    opts = _forward_options(name, extra)
    if opts.get("replace") is False:  # at most K distinct categories
        opts["num_samples"] = min(opts["num_samples"], shape[axis])
    if op.result == "noise":
        opts.update(dtype=dtype, like=xp.empty(1, dtype))
        return Call(name, label(name, extra), (tuple(shape),), opts, axis)
    x = xp.asarray((3 * rng.standard_normal(shape)).astype(dtype))
    roles = {role for _, role, _ in op.arrays}
    pair = xp.asarray((3 * rng.standard_normal(shape)).astype(dtype)) if "pair" in roles else None
    index = None
    if roles & {"index", "values", "grad_index"}:
        index = gnp.categorical(x, axis=axis, num_samples=draws, rng=OPTIONS["rng"])
    if "choice" in roles:  # one category per row: the single draw
        index = gnp.categorical(x, axis=axis, rng=OPTIONS["rng"])
    if "ranking" in roles:  # distinct categories, in the order drawn
        k = min(draws, shape[axis])
        index = gnp.categorical(x, axis=axis, num_samples=k, replace=False, rng=OPTIONS["rng"])
    arrays = []
    density = SAMPLES.get(name) or SAMPLES.get(op.forward or "")
    for role_name, role, public in op.arrays:
        if role == "data" and density is not None:
            arrays.append(_public(density, pair, axis=axis, tau=OPTIONS["tau"], rng=OPTIONS["rng"]))
        elif role == "data":
            if op.forward is None or not public.startswith("y"):
                # A backward pass of the forward's input (logsumexp, the
                # entropy, the L0 norm) takes x itself.
                arrays.append(x)
            else:
                fwd_arrays = (x,) if pair is None else (x, pair)
                fwd_arrays += () if index is None else (index,)
                fopts = _forward_options(op.forward, extra)
                if public == "y_soft":  # the soft sample, also of a gate
                    fopts["return_soft"] = True
                y = _public(op.forward, *fwd_arrays, axis=axis, **fopts)
                arrays.append(y[1] if public == "y_soft" else y)
        elif role == "pair":
            arrays.append(pair)
        elif role in ("index", "ranking", "choice"):
            arrays.append(index)
        elif role in ("values", "grad_index"):
            arrays.append(xp.asarray(rng.standard_normal(index.shape).astype(dtype)))
        elif role == "grad":
            arrays.append(xp.asarray(rng.standard_normal(shape).astype(dtype)))
        else:  # grad_batch: of the forward's per-row result shape
            batch = list(shape)
            ax = axis % len(shape)
            if extra.get("keepdims"):
                batch[ax] = 1
            else:
                del batch[ax]
            arrays.append(xp.asarray(rng.standard_normal(batch).astype(dtype)))
    return Call(name, label(name, extra), tuple(arrays), opts, axis)


def calls(
    shape: tuple[int, ...], dtype: Any = np.float32, xp: Any = np, axis: int = -1, seed: int = 0
) -> list[Call]:
    """Every example call: each operation with each of its variants."""
    return [
        make(name, shape, dtype, xp, axis, seed, **extra)
        for name in OPS
        for extra in VARIANTS.get(name, ({},))
    ]
