"""The operation registry: one record per operation, and the one pipeline that
serves every public function.

An :class:`Op` says what a public function takes and returns (the roles of
its array arguments, its options, the shape and dtype of its result, its
backward partner) and names its :class:`Kernel`; a :class:`Kernel` gives the
parameter lists of the Numba and CUDA kernels, in the names of
:data:`PARAMS`, which fixes each parameter's C type and shape.  Both backends
implement one contract, ``launch(kernel, values)``, and build the kernel's
arguments from these records; the CUDA name expressions come from them too,
as do ``gumbel_np.__all__``, the tests and the benchmarks.

The pipeline (:func:`run`) is the same for every function: namespace,
validation, layout, output, launch, restore, deliver.  What differs between
operations is data in the records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, Callable

import numpy as np

from ._dispatch import _backend as _dispatch_backend
from ._dispatch import like_namespace, namespace
from ._random import philox_key
from ._validation import (
    Rows,
    as_array,
    check_flag,
    check_num_samples,
    check_row_ids,
    check_shape,
    check_tau,
    compute_dtypes,
    compute_float,
    deliver,
    empty,
    float_array,
    half_storage,
    layout,
    noise_dtype,
    output,
    same_shape,
    scalar_tau,
    sum_to_shape,
    to_rows,
)

# --------------------------------------------------------------------------
# Kernel parameters

NOISE_DRAW, NOISE_ARRAY, NOISE_NONE = 0, 1, 2
"""The ``noise_mode`` parameter of the Gumbel-Softmax kernels: draw the noise
from the key, read it from the ``noise`` array, or add none.  ``rows.cuh``
(``gnp::NOISE_*``) and ``kernels/_rows.py`` hold the same numbers (a test
checks them against these)."""


@dataclass(frozen=True)
class Param:
    """One kernel parameter.

    ``ctype``: the CUDA type; ``S`` is the storage type of the data (``float``,
    ``double`` or ``__half``), ``T`` the type it computes in (``float`` for
    ``__half``).  ``shape``: for an array, its shape in terms of ``R`` (rows),
    ``K`` (row length) and ``N`` (draws per row); ``"1|R"`` is one value or
    one per row.  ``optional``: an array that may be absent (``None``), passed
    as the backend's "no array" sentinel.
    """

    ctype: str
    shape: str = ""
    optional: bool = False

    @property
    def pointer(self) -> bool:
        return self.ctype.endswith("*")


PARAMS: dict[str, Param] = {
    "x": Param("const S*", "RK"),
    "g": Param("const S*", "RK"),
    "g_rows": Param("const S*", "R"),
    "y": Param("const S*", "RK"),
    "logits": Param("const S*", "RK"),
    "noise": Param("const S*", "RK", optional=True),
    "scale": Param("const T*", "1|R", optional=True),
    "tau": Param("const T*", "1|R"),
    "row_ids": Param("const i64*", "R", optional=True),
    "out": Param("S*", "RK"),
    "out_rows": Param("S*", "R"),
    "samples": Param("i64*", "RN"),
    "out_soft": Param("S*", "RK", optional=True),
    "dtau": Param("T*", "R", optional=True),
    "rows": Param("i64"),
    "k": Param("i64"),
    "nsamples": Param("i64"),
    "per_item": Param("i64"),
    "tau_stride": Param("i64"),
    "k0": Param("u32"),
    "k1": Param("u32"),
    "draw": Param("u32"),
    "noise_mode": Param("int"),
    "hard": Param("int"),
    "lanes": Param("int"),
}
"""Every kernel parameter of every operation, by name."""


@dataclass(frozen=True)
class Kernel:
    """One kernel, with the same name in ``<stem>.py`` (Numba) and ``<stem>.cu`` (CUDA).

    ``cpu``: the Numba kernel's parameters after the row range; ``cuda``: the
    CUDA kernel's parameters.  ``geometry``: how the CUDA kernel is launched
    (``"rows"``: lanes per row by elements, ``"noise"``: lanes per row by
    Philox blocks, ``"items"``: rows x runs of draws, ``"flat"``: one thread
    per Philox block).  ``work``: the Numba chunking's work per row, when it
    is not the row length.
    """

    name: str
    stem: str
    cpu: tuple[str, ...]
    cuda: tuple[str, ...]
    geometry: str = "rows"
    work: str = "k"

    def __post_init__(self) -> None:
        for p in self.cpu + self.cuda:
            if p not in PARAMS:
                raise KeyError(f"kernel {self.name}: unknown parameter {p!r}")

    @cached_property
    def data(self) -> str:
        """The parameter whose dtype selects the template instance."""
        return next(p for p in self.cuda if PARAMS[p].ctype in ("const S*", "S*"))

    @cached_property
    def output(self) -> str:
        """The parameter that receives the operation's result."""
        return next(
            p for p in self.cuda
            if PARAMS[p].pointer and not PARAMS[p].ctype.startswith("const") and not PARAMS[p].optional
        )


def _kernel(name: str, stem: str, cpu: str, cuda: str, **kw: Any) -> Kernel:
    return Kernel(name, stem, tuple(cpu.split()), tuple(cuda.split()), **kw)


KERNELS: dict[str, Kernel] = {
    k.name: k
    for k in (
        _kernel("logsumexp_fwd", "softmax", "x out_rows k", "x out_rows rows k lanes"),
        _kernel("softmax_fwd", "softmax", "x out k scale", "x out rows k lanes"),
        _kernel("log_softmax_fwd", "softmax", "x out k", "x out rows k lanes"),
        _kernel("logsumexp_bwd", "softmax", "x out k g_rows", "g_rows x out rows k lanes"),
        _kernel("softmax_bwd", "softmax", "g y out k", "g y out rows k lanes"),
        _kernel("log_softmax_bwd", "softmax", "g y out k", "g y out rows k lanes"),
        _kernel("gumbel_fwd", "gumbel", "out k k0 k1 draw row_ids",
                "out rows k k0 k1 row_ids draw", geometry="flat"),
        _kernel("gumbel_softmax_fwd", "gumbel",
                "logits out k k0 k1 row_ids tau noise_mode noise out_soft hard",
                "logits out rows k k0 k1 row_ids tau tau_stride noise_mode noise out_soft hard lanes",
                geometry="noise"),
        _kernel("gumbel_softmax_bwd", "gumbel", "g y out k tau dtau",
                "g y tau tau_stride out dtau rows k lanes"),
        _kernel("categorical_fwd", "gumbel", "logits samples k nsamples k0 k1 row_ids",
                "logits samples rows k nsamples per_item k0 k1 row_ids lanes",
                geometry="items", work="k*nsamples"),
    )
}
"""Every kernel, by name."""


# --------------------------------------------------------------------------
# Operations


@dataclass(frozen=True)
class Op:
    """One public function.

    ``arrays``: its positional array arguments as ``(parameter, role, public
    name)``, the name its errors give it, and their roles (``"data"``:
    the array whose layout the call follows; ``"grad"``: the gradient of a
    backward pass, of the data's shape, or ``"grad_batch"``, of the forward
    output's per-row shape).  ``options``: its keyword-only options besides
    ``axis`` and ``out``.  ``result``: ``"rows"`` (the data's shape),
    ``"batch"`` (one value per row), ``"samples"`` (int64 indices) or
    ``"noise"`` (of a requested shape).  ``backward``: the public name of its
    vector-Jacobian product (``None``: not differentiable); ``forward``: for a
    backward pass, the function it differentiates.  ``paths``: the family of
    row-length thresholds its kernels switch on (``"softmax"`` or
    ``"gumbel"``).
    """

    name: str
    kernel: Kernel
    arrays: tuple[tuple[str, str, str], ...]
    options: tuple[str, ...]
    result: str
    paths: str
    backward: str | None = None
    forward: str | None = None
    needs_categories: bool = False
    finish: Callable[..., Any] | None = field(default=None, compare=False)

    @cached_property
    def flags(self) -> tuple[str, ...]:
        return tuple(o for o in self.options if o in FLAGS)


FLAGS = ("keepdims", "hard", "return_soft", "tau_grad")
"""The boolean options (checked by :func:`~._validation.check_flag`)."""


_PUBLIC_NAMES = {
    "x": "x",
    "g": "grad",
    "g_rows": "grad",
    "y": "y",
    "logits": "logits",
}
"""The name an error message gives each array parameter, unless its record
names it (``"y:data:y_soft"``)."""


def _op(name: str, kernel: str, arrays: str, options: str, result: str, paths: str, **kw: Any) -> Op:
    roles = tuple(
        (p[0], p[1], p[2] if len(p) > 2 else _PUBLIC_NAMES[p[0]]) for p in (a.split(":") for a in arrays.split())
    )
    return Op(name, KERNELS[kernel], roles, tuple(options.split()), result, paths, **kw)


def _bad_rows(ctx: dict) -> None:
    """``categorical``: a ValueError naming the first row the kernel marked
    as having no distribution (its sample is -1)."""
    xp, buf, lay, func = ctx["xp"], ctx["buf"], ctx["lay"], ctx["func"]
    if not lay.rows:
        return
    if xp is np and lay.rows <= 64 and min(buf[:, 0].tolist()) >= 0:
        return  # the common case of a small call, without array operations
    bad = xp.flatnonzero(buf[:, 0] < 0)
    if bad.size:
        r = int(bad[0])
        row = ctx["logits"].reshape(lay.rows, lay.k)[r]
        what = "holds NaN" if bool(xp.isnan(row).any()) else (
            "holds +inf" if bool(xp.isposinf(row).any()) else "is all -inf"
        )
        where = tuple(int(i) for i in np.unravel_index(r, lay.batch))
        raise ValueError(
            f"{func}: row {where} of logits {what} ({int(bad.size)} invalid row(s)); "
            "there is no distribution to sample from"
        )


OPS: dict[str, Op] = {
    op.name: op
    for op in (
        _op("logsumexp", "logsumexp_fwd", "x:data", "keepdims", "batch", "softmax",
            backward="logsumexp_backward"),
        _op("softmax", "softmax_fwd", "x:data", "", "rows", "softmax", backward="softmax_backward"),
        _op("log_softmax", "log_softmax_fwd", "x:data", "", "rows", "softmax",
            backward="log_softmax_backward"),
        _op("logsumexp_backward", "logsumexp_bwd", "g_rows:grad_batch x:data", "keepdims", "rows",
            "softmax", forward="logsumexp"),
        _op("softmax_backward", "softmax_bwd", "g:grad y:data", "", "rows", "softmax",
            forward="softmax"),
        _op("log_softmax_backward", "log_softmax_bwd", "g:grad y:data", "", "rows", "softmax",
            forward="log_softmax"),
        _op("gumbel", "gumbel_fwd", "", "dtype rng row_ids like", "noise", "gumbel"),
        _op("gumbel_softmax", "gumbel_softmax_fwd", "logits:data",
            "tau hard rng noise row_ids return_soft", "rows", "gumbel",
            backward="gumbel_softmax_backward", needs_categories=True),
        _op("gumbel_softmax_backward", "gumbel_softmax_bwd", "g:grad y:data:y_soft", "tau tau_grad", "rows",
            "gumbel", forward="gumbel_softmax"),
        _op("categorical", "categorical_fwd", "logits:data", "num_samples rng row_ids", "samples",
            "gumbel", needs_categories=True, finish=_bad_rows),
    )
}
"""Every public function, by name (``gumbel_np.__all__`` is built from it)."""



# --------------------------------------------------------------------------
# The pipeline


def _noise(xp: Any, noise: Any, rng: Any, a: Any, lay: Any, func: str, half: bool) -> tuple[int, Any]:
    """``(noise_mode, noise in (rows, K) or None)`` for a ``noise`` argument."""
    if noise is None:
        return NOISE_DRAW, None
    if rng is not None:
        raise ValueError(f"{func}: pass rng or noise, not both (got rng={rng!r})")
    nz = as_array(xp, noise, func, "noise")
    if nz.dtype.kind not in "iuf":
        raise TypeError(
            f"{func}: noise must be 0 or a real array of the logits' shape, not "
            + (repr(noise) if nz.ndim == 0 else f"an array of dtype {nz.dtype}")
        )
    if nz.ndim == 0:
        if float(nz) != 0.0:
            raise ValueError(
                f"{func}: a scalar noise must be 0 (the noise-free relaxation), got {float(nz)!r}"
            )
        return NOISE_NONE, None
    nz, _ = float_array(xp, nz, func, "noise", half)
    same_shape(func, logits=a, noise=nz)
    return NOISE_ARRAY, to_rows(xp, nz.astype(a.dtype, copy=False), lay)


def run(op: Op, arrays: tuple[Any, ...], axis: Any, out: Any, **opts: Any) -> Any:
    """Call the operation ``op`` on its positional ``arrays`` with its options.

    Namespace and backend first (from the arrays, or ``like=``), then the
    rest on the device of the arrays (:func:`_call`).
    """
    func = op.name
    if op.result != "noise" and type(axis) is int and axis == -1:
        res = _small_call(op, arrays, out, opts)
        if res is not None:
            return res
    for f in op.flags:
        opts[f] = check_flag(opts[f], func, f)
    if op.result == "noise":
        dims = check_shape(arrays[0], func)
        like = opts["like"]
        xp, backend = like_namespace(func, like if out is None else out)
        if like is not None and out is not None:
            namespace(func, like, out)  # TypeError when they mix NumPy and CuPy
        where: tuple[Any, ...] = (like, out)
        arrays = (dims,)
    else:
        where = (*arrays, *(opts[o] for o in ("tau", "noise", "row_ids") if o in opts), out)
        xp, backend = namespace(func, *where)
    with backend.device(func, *where):
        return _call(op, xp, backend, arrays, axis, out, opts)


SMALL_CALL = 1 << 16
"""Calls on at most this many elements take :func:`_small_call` when they
can."""

_F32, _F64, _I64 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64)


@lru_cache(maxsize=None)
def _cpu_launch() -> Callable[[Kernel, dict], None]:
    return _dispatch_backend("cpu").launch


def _small_call(op: Op, arrays: tuple[Any, ...], out: Any, opts: dict) -> Any:
    """The result of a call whose validation reduces to type checks, or None.

    A small call spends most of its time in Python, so the case that needs
    no conversion takes a short way: NumPy arrays of one native float dtype,
    C-contiguous, of one shape (the category axis last and not empty, at
    most :data:`SMALL_CALL` elements), ``axis=-1``, no ``out`` or one the
    kernel can write as it is (a plain, C-contiguous, writeable NumPy array
    of the result's shape and dtype that overlaps no input), options at
    their defaults or a scalar ``tau``, ``hard`` and ``rng``.  The kernel and
    its arguments are the ones :func:`_call` would give, so the result is
    the same bit for bit; anything else returns None and goes the long way.
    """
    a = arrays[-1]
    if (
        type(a) is not np.ndarray
        or (a.dtype is not _F32 and a.dtype is not _F64)
        or not a.flags.c_contiguous
        or a.ndim == 0
        or a.size > SMALL_CALL
    ):
        return None
    k = a.shape[-1]
    if k == 0:
        return None
    values: dict[str, Any] = {}
    if len(arrays) == 2:
        g = arrays[0]
        if (
            op.arrays[0][1] != "grad"
            or type(g) is not np.ndarray
            or g.dtype is not a.dtype
            or g.shape != a.shape
            or not g.flags.c_contiguous
        ):
            return None
        values[op.arrays[0][0]] = g
    for name, value in opts.items():
        if name == "tau":
            t = scalar_tau(value, a.dtype)
            if t is None:
                return None
            values["tau"] = t
        elif name == "hard":
            if type(value) is not bool:
                return None
            values["hard"] = value
        elif name != "rng" and value is not (False if name in FLAGS else None):
            return None
    rows = a.size // k
    values[op.arrays[-1][0]] = a
    values["rows"], values["k"] = rows, k
    if op.result == "rows":
        shape, dtype = a.shape, a.dtype
    else:
        shape, dtype = a.shape[:-1], (a.dtype if op.result == "batch" else _I64)
        values["nsamples"] = 1
    if out is None:
        buf = np.empty(shape, dtype)
    elif (
        type(out) is np.ndarray
        and out.dtype is dtype
        and out.shape == shape
        and out.flags.c_contiguous
        and out.flags.writeable
        and not any(np.may_share_memory(out, x) for x in arrays)
    ):
        buf = out
    else:
        return None
    if op.result != "rows":
        buf = buf.reshape(rows)
    values[op.kernel.output] = buf
    if "rng" in opts:
        values["noise_mode"] = NOISE_DRAW
        values["k0"], values["k1"] = philox_key(opts["rng"], op.name)
    _cpu_launch()(op.kernel, values)
    if op.result == "rows":
        return buf
    lay = Rows(shape, k, a.ndim - 1)
    if op.finish is not None:
        op.finish({"xp": np, "buf": buf.reshape(rows, 1), "lay": lay, "func": op.name, "logits": a})
    return buf.reshape(shape) if out is None else out


def _call(op: Op, xp: Any, backend: Any, arrays: tuple[Any, ...], axis: Any, out: Any, opts: dict) -> Any:
    func = op.name
    kernel = op.kernel
    half = half_storage(backend)
    values: dict[str, Any] = {}

    # Inputs and layout.
    if op.result == "noise":
        (dims,) = arrays
        want = noise_dtype(opts["dtype"], func)
        compute, _ = compute_dtypes(want, func, "dtype", half)
        data_shape, result = dims, want
        lay = layout(dims, axis, func)
        inputs: tuple[Any, ...] = ()
    else:
        roles = op.arrays
        if len(roles) == 1:
            a, result = float_array(xp, arrays[0], func, roles[0][2], half)
            grad = None
        else:
            saved = roles[1][2]
            grad, g_result = float_array(xp, arrays[0], func, roles[0][2], half)
            a, a_result = float_array(xp, arrays[1], func, saved, half)
            common = np.result_type(grad.dtype, a.dtype)
            result = np.result_type(g_result, a_result)
            grad, a = grad.astype(common, copy=False), a.astype(common, copy=False)
            if roles[0][1] == "grad":
                same_shape(func, **{roles[0][2]: grad, saved: a})
        compute, data_shape = a.dtype, a.shape
        lay = layout(a.shape, axis, func)
        if op.needs_categories and lay.k == 0:
            raise ValueError(
                f"{func}: the category axis {axis} of logits with shape {a.shape} is empty; "
                "there is nothing to sample"
            )
        if grad is not None and roles[0][1] == "grad_batch":
            batch = lay.batch_shape(opts["keepdims"])
            try:
                grad = xp.broadcast_to(grad, batch)
            except ValueError:
                raise ValueError(
                    f"{func}: grad of shape {grad.shape} does not fit the logsumexp output "
                    f"shape {batch}"
                ) from None
            values[roles[0][0]] = xp.ascontiguousarray(grad).reshape(lay.rows)
        elif grad is not None:
            values[roles[0][0]] = to_rows(xp, grad, lay)
        values[roles[-1][0]] = to_rows(xp, a, lay)
        inputs = (a,) if grad is None else (grad, a)

    # Options, in the order their errors are reported.
    nsamples = None
    if "num_samples" in opts:
        nsamples = check_num_samples(opts["num_samples"], func)
        values["nsamples"] = 1 if nsamples is None else nsamples
    if "tau" in opts:
        taus, tau_shape = check_tau(xp, opts["tau"], lay, compute, func)
        values["tau"] = taus
        inputs += (taus,)
    if "row_ids" in opts:
        values["row_ids"] = check_row_ids(xp, opts["row_ids"], lay, func)
    if "noise" in opts:
        mode, nz = _noise(xp, opts["noise"], opts["rng"], a, lay, func, half)
        values["noise_mode"], values["noise"] = mode, nz
        inputs += (nz,)
    if "rng" in opts and values.get("noise_mode", NOISE_DRAW) == NOISE_DRAW:
        values["k0"], values["k1"] = philox_key(opts["rng"], func)

    # Outputs.
    if op.result == "batch":
        shape = lay.batch_shape(opts["keepdims"])
        buf = output(xp, out, func, shape, result, compute, (lay.rows,), None, inputs)
    elif op.result == "samples":
        s = values["nsamples"]
        shape = lay.batch if nsamples is None else lay.batch + (s,)
        i64 = np.dtype(np.int64)
        buf = output(xp, out, func, shape, i64, i64, (lay.rows, s), None, inputs)
    else:
        buf = output(xp, out, func, data_shape, result, compute, lay.shape2d(), lay.axis, inputs)
    values[kernel.output] = buf
    if opts.get("return_soft") and opts.get("hard"):
        values["out_soft"] = empty(xp, lay.shape2d(), compute, func)
    if opts.get("tau_grad"):
        values["dtau"] = xp.empty(lay.rows, compute_float(compute))
    if "hard" in opts:
        values["hard"] = opts["hard"]

    # Launch.
    values["rows"], values["k"] = lay.rows, lay.k
    backend.launch(kernel, values)
    if op.finish is not None:
        op.finish({"xp": xp, "buf": buf, "lay": lay, "func": func, "logits": values.get("logits")})

    # Restore and deliver.
    if op.result == "batch":
        return deliver(xp, lay.restore_batch(buf, opts["keepdims"]).astype(result, copy=False), out)
    if op.result == "samples":
        return deliver(xp, buf.reshape(shape), out)
    y = deliver(xp, lay.restore(xp, buf).astype(result, copy=False), out)
    if opts.get("return_soft"):
        soft = values.get("out_soft")
        return y, (y if soft is None else lay.restore(xp, soft).astype(result, copy=False))
    if opts.get("tau_grad"):
        dt = sum_to_shape(xp, values["dtau"].reshape(lay.batch), tau_shape).reshape(np.shape(opts["tau"]))
        return y, dt.astype(result, copy=False)
    return y
