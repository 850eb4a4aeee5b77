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

import math
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
    check_limits,
    check_noise_dtype,
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

SCORE_SUM, SCORE_MEAN, SCORE_LOO = 0, 1, 2
"""The ``estimator`` parameter of ``score_bwd``, which serves two operations:
``sum_s w_s * (onehot(i_s) - softmax(x))`` with the weights as given (the
backward pass of ``categorical_log_prob``), the mean over the samples of
``(w_s - b_s) * (onehot(i_s) - softmax(x))`` with an optional baseline array
``b`` (``reinforce``), and that mean with the leave-one-out baseline ``b_s =
(sum_t w_t - w_s) / (S - 1)`` (``reinforce(..., baseline="loo")``).
``estimators.cu`` (``gnp::SCORE_*``) and ``kernels/estimators.py`` hold the
same numbers."""

GATE_SOFT, GATE_HARD, GATE_CLIP = 0, 1, 2
"""The ``gate`` parameter of ``binary_concrete_fwd`` and ``_bwd``, which
serve ``gumbel_sigmoid`` and ``hard_concrete``: the soft sample, its hard
side (straight-through), or the stretched and clipped hard-concrete gate.
``binary.cu`` (``gnp::GATE_*``) and ``kernels/binary.py`` hold the same
numbers."""

SPACE_LOG, SPACE_SIMPLEX = 0, 1
"""The ``space`` parameter of ``concrete_log_prob_fwd`` and ``_bwd``, which
serve ``exp_concrete_log_prob`` (a sample ``z = log y``) and
``concrete_log_prob`` (``y`` on the simplex).  ``concrete.cu``
(``gnp::SPACE_*``) and ``kernels/concrete.py`` hold the same numbers."""

LOGISTIC_DOMAIN = 1
"""The stream domain of the logistic noise (the Gumbel noise is domain 0):
the counter's draw word is ``draw + (domain << 28)`` (``kernels/philox.py``)."""

CONDITIONAL_DOMAIN = 2
"""The stream domain of the uniforms of the conditional Gumbel samples
(``conditional_gumbel``, ``gumbel_rao_backward``)."""


@dataclass(frozen=True)
class Param:
    """One kernel parameter.

    ``ctype``: the CUDA type; ``S`` is the storage type of the data (``float``,
    ``double`` or ``__half``), ``T`` the type it computes in (``float`` for
    ``__half``).  ``shape``: for an array, its shape in terms of ``R`` (rows),
    ``K`` (row length) and ``N`` (draws per row); ``"1|R"`` is one value or
    one per row, ``"1|RK"`` one value or one per element, ``"U"`` a single
    value.  ``optional``: an array that may be
    absent (``None``), passed as the backend's "no array" sentinel.
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
    "index": Param("const i64*", "RN"),
    "choice": Param("const i64*", "R"),
    "draws": Param("S*", "RKN"),
    "weights": Param("const S*", "RN"),
    "baseline": Param("const S*", "RN", optional=True),
    "out_samples": Param("S*", "RN"),
    "logits_p": Param("const S*", "RK"),
    "out_p": Param("S*", "RK"),
    "estimator": Param("int"),
    "status": Param("i64*", "U", optional=True),
    "taus": Param("const T*", "1|RK"),
    "taus_stride": Param("i64"),
    "dtaus": Param("T*", "RK", optional=True),
    "out_bits": Param("bool*", "RKN"),
    "gate": Param("int"),
    "lo": Param("double"),
    "hi": Param("double"),
    "k0": Param("u32"),
    "k1": Param("u32"),
    "draw": Param("u32"),
    "noise_mode": Param("int"),
    "hard": Param("int"),
    "lanes": Param("int"),
    "space": Param("int"),
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
        _kernel("categorical_log_prob_fwd", "estimators", "logits out_samples k nsamples index status",
                "logits index out_samples status rows k nsamples lanes"),
        _kernel("score_bwd", "estimators", "logits out k nsamples index weights baseline estimator status",
                "logits index weights baseline out status rows k nsamples estimator lanes"),
        _kernel("categorical_entropy_fwd", "estimators", "logits out_rows k",
                "logits out_rows rows k lanes"),
        _kernel("categorical_entropy_bwd", "estimators", "g_rows logits out k",
                "g_rows logits out rows k lanes"),
        _kernel("categorical_kl_fwd", "estimators", "logits logits_p out_rows k",
                "logits logits_p out_rows rows k lanes"),
        _kernel("categorical_kl_bwd", "estimators", "g_rows logits logits_p out out_p k",
                "g_rows logits logits_p out out_p rows k lanes"),
        _kernel("logistic_fwd", "binary", "out k k0 k1 draw row_ids",
                "out rows k k0 k1 row_ids draw", geometry="flat"),
        _kernel("bernoulli_fwd", "binary", "logits out_bits k nsamples k0 k1 row_ids status",
                "logits out_bits status rows k nsamples k0 k1 row_ids", geometry="flat", work="k*nsamples"),
        _kernel("binary_concrete_fwd", "binary",
                "logits out k k0 k1 row_ids taus noise_mode noise out_soft gate lo hi",
                "logits out rows k k0 k1 row_ids taus taus_stride noise_mode noise out_soft gate lo hi",
                geometry="flat"),
        _kernel("binary_concrete_bwd", "binary", "g y out k taus dtaus gate lo hi",
                "g y taus taus_stride out dtaus rows k gate lo hi", geometry="flat"),
        _kernel("hard_concrete_l0_fwd", "binary", "logits out k taus lo hi",
                "logits out rows k taus taus_stride lo hi", geometry="flat"),
        _kernel("hard_concrete_l0_bwd", "binary", "g logits out k taus dtaus lo hi",
                "g logits taus taus_stride out dtaus rows k lo hi", geometry="flat"),
        _kernel("log_gumbel_softmax_fwd", "concrete", "logits out k k0 k1 row_ids tau noise_mode noise",
                "logits out rows k k0 k1 row_ids tau tau_stride noise_mode noise lanes", geometry="noise"),
        _kernel("log_gumbel_softmax_bwd", "concrete", "g y out k tau dtau",
                "g y tau tau_stride out dtau rows k lanes"),
        _kernel("concrete_log_prob_fwd", "concrete", "x logits_p out_rows k tau space",
                "x logits_p out_rows rows k tau tau_stride space lanes"),
        _kernel("concrete_log_prob_bwd", "concrete", "g_rows x logits_p out out_p k tau dtau space",
                "g_rows x logits_p tau tau_stride out out_p dtau rows k space lanes"),
        _kernel("binary_concrete_log_prob_fwd", "concrete", "x logits_p out k taus",
                "x logits_p out rows k taus taus_stride", geometry="flat"),
        _kernel("binary_concrete_log_prob_bwd", "concrete", "g x logits_p out out_p k taus dtaus",
                "g x logits_p taus taus_stride out out_p dtaus rows k", geometry="flat"),
        _kernel("categorical_topk_fwd", "ranking", "logits samples k nsamples k0 k1 row_ids",
                "logits samples rows k nsamples k0 k1 row_ids lanes", geometry="noise"),
        _kernel("plackett_luce_log_prob_fwd", "ranking", "logits out_rows k nsamples index status",
                "logits index out_rows status rows k nsamples lanes"),
        _kernel("plackett_luce_log_prob_bwd", "ranking", "g_rows logits out k nsamples index status",
                "g_rows logits index out status rows k nsamples lanes"),
        _kernel("conditional_gumbel_fwd", "conditional", "logits choice draws k nsamples k0 k1 row_ids status",
                "logits choice draws status rows k nsamples k0 k1 row_ids lanes", work="k*nsamples"),
        _kernel("gumbel_rao_bwd", "conditional", "g logits choice out k nsamples k0 k1 row_ids tau status",
                "g logits choice tau tau_stride out status rows k nsamples k0 k1 row_ids lanes",
                work="k*nsamples"),
        _kernel("reinmax_bwd", "conditional", "g logits choice out k tau status",
                "g logits choice tau tau_stride out status rows k lanes"),
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
    the array whose layout the call follows; ``"pair"``: a second array of
    the data's shape (the ``p`` of a divergence); ``"grad"``: the gradient
    of a backward pass, of the data's shape, or ``"grad_batch"``, of the
    forward output's per-row shape, or ``"grad_index"``, of the index's
    shape; ``"index"``: integer category indices, the batch shape plus any
    trailing sample axes; ``"ranking"``: the batch shape plus one axis of
    categories in the order drawn; ``"choice"``: one category per row, of
    the batch shape exactly; ``"values"``: one value per index, converted to
    the data's dtype).  ``options``: its keyword-only options besides
    ``axis`` and ``out``.  ``result``: ``"rows"`` (the data's shape; with a
    second output where the kernel has ``out_p``), ``"batch"`` (one value per
    row), ``"per_index"`` (one value per index), ``"samples"`` (int64
    indices), ``"bits"`` (bools of the data's shape, plus a sample axis
    with ``num_samples``), ``"draws"`` (the data's shape and dtype, plus a
    sample axis with ``num_samples``) or ``"noise"`` (of a requested shape).
    ``elementwise``: a function of each element alone (the binary family),
    whose ``tau`` broadcasts to the data's shape rather than to the batch
    shape; its ``axis`` still indexes the stream as a category axis does.
    ``constants``: kernel parameters the operation fixes.  ``backward``: the public name of its
    vector-Jacobian product (``None``: not differentiable); ``forward``: for a
    backward pass, the function it differentiates.  ``paths``: the family of
    row-length thresholds its kernels switch on (``"softmax"`` or
    ``"gumbel"``).  ``variants``: ``(option, value, kernel)``: the call runs
    that kernel instead where the option has that value (``categorical``
    with ``replace=False`` runs the top-k sampler).
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
    elementwise: bool = False
    constants: tuple[tuple[str, Any], ...] = ()
    variants: tuple[tuple[str, Any, str], ...] = ()
    finish: Callable[..., Any] | None = field(default=None, compare=False)

    def kernel_for(self, opts: dict) -> Kernel:
        """The kernel a call with the options ``opts`` runs."""
        for option, value, name in self.variants:
            if opts.get(option) is value:
                return KERNELS[name]
        return self.kernel

    @cached_property
    def flags(self) -> tuple[str, ...]:
        return tuple(o for o in self.options if o in FLAGS)

    @cached_property
    def short(self) -> bool:
        """Whether a small call may take :func:`_small_call`: its arrays are
        the data, a second array of its shape (a gradient or a pair) and a
        per-row gradient."""
        roles = tuple(r for _, r, _ in self.arrays)
        return set(roles) <= {"data", "grad", "grad_batch", "pair"}

    @cached_property
    def tau_param(self) -> str:
        """The kernel parameter that takes ``tau``: one value per row, or
        per element for an element-wise operation."""
        return "taus" if "taus" in self.kernel.cuda else "tau"


FLAGS = ("keepdims", "hard", "return_soft", "tau_grad", "replace")
"""The boolean options (checked by :func:`~._validation.check_flag`)."""

DEFAULT_LIMITS = (-0.1, 1.1)
"""The hard concrete's default stretch interval (Louizos et al. 2018)."""


_PUBLIC_NAMES = {
    "x": "x",
    "g": "grad",
    "g_rows": "grad",
    "y": "y",
    "logits": "logits",
    "index": "index",
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
    as having no distribution (its sample is -1), or, without replacement,
    fewer categories that are not ``-inf`` than the draws asked for."""
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
        live = int((row != -np.inf).sum())
        too_few = what == "is all -inf" and live
        raise_no_distribution(func, where, None if too_few else what, int(bad.size), live, ctx["values"]["nsamples"])


def raise_no_distribution(func: str, where: Any, what: str | None, count: int, live: int = 0, draws: int = 0) -> None:
    """``categorical``'s ValueError for the row ``where`` that has nothing to
    draw (``what``: "holds NaN", "holds +inf" or "is all -inf") or, where
    ``what`` is None, whose ``live`` categories that are not ``-inf`` are too
    few for ``draws`` draws without replacement; ``count``: how many such
    rows (the in-memory call and the Dask tree raise it alike)."""
    if what is None:
        raise ValueError(
            f"{func}: row {where} of logits has {live} categories that are not -inf, fewer than "
            f"num_samples={draws} draws without replacement ({count} such row(s))"
        )
    raise ValueError(
        f"{func}: row {where} of logits {what} ({count} invalid row(s)); there is no distribution to sample from"
    )


ARRAY_OPTIONS = ("tau", "noise", "row_ids", "baseline")
"""The options that may hold an array (the others are scalars or flags)."""


def _bad_index(ctx: dict) -> None:
    """A ValueError naming the first row and value of ``index`` outside
    ``[0, K)``, where the kernel flagged one (its ``status``; a separate check
    would be a pass over ``index`` as long as the kernel's when K is small)."""
    values = ctx["values"]
    if int(values["status"][0]):
        _out_of_range(ctx, values["index"], values["_index_raw"].reshape(values["index"].shape))


def _out_of_range(ctx: dict, flat: Any, raw: Any) -> None:
    """The ValueError of the first row and value of the ``(rows, S)`` indices
    ``flat`` (``raw``: as given) outside ``[0, K)``, if there is one."""
    xp, lay = ctx["xp"], ctx["lay"]
    bad = (flat < 0) | (flat >= lay.k)
    if not bool(bad.any()):
        return
    r = int(xp.flatnonzero(bad.any(axis=1))[0])
    s = int(xp.flatnonzero(bad[r])[0])
    where = tuple(int(i) for i in np.unravel_index(r, lay.batch))
    raise ValueError(
        f"{ctx['func']}: index {int(raw[r, s])} in row {where} is out of range for {lay.k} categories "
        f"(axis {ctx['axis']} of the logits)"
    )


def _bad_choice(ctx: dict) -> None:
    """The estimators conditioned on a category: a ValueError naming the
    first row whose ``index`` is outside ``[0, K)`` or has probability 0 (a
    ``-inf`` logit), where the kernel flagged one (its ``status``)."""
    xp, values, lay, func = ctx["xp"], ctx["values"], ctx["lay"], ctx["func"]
    if not int(values["status"][0]):
        return
    idx = values["choice"]
    raw = values["_index_raw"].reshape(-1)
    _out_of_range(ctx, idx[:, None], raw[:, None])
    x = values["logits"]
    picked = x[xp.arange(lay.rows), idx]
    r = int(xp.flatnonzero(picked == -np.inf)[0])
    where = tuple(int(i) for i in np.unravel_index(r, lay.batch))
    raise ValueError(
        f"{func}: index {int(raw[r])} in row {where} has probability 0 (its logit is -inf); "
        "there is no sample to condition on"
    )


def _bad_nan(ctx: dict) -> None:
    """``bernoulli``: a ValueError naming the first NaN logit, where the
    kernel flagged one (its ``status``)."""
    values = ctx["values"]
    if not int(values["status"][0]):
        return
    xp, lay = ctx["xp"], ctx["lay"]
    flat = xp.isnan(values["logits"]).reshape(-1)
    r, j = divmod(int(xp.argmax(flat)), lay.k)
    # The kernels' (row, element) back to the logits' own axis order.
    row = tuple(int(v) for v in np.unravel_index(r, lay.batch))
    where = () if lay.scalar else row[: lay.axis] + (j,) + row[lay.axis :]
    raise ValueError(
        f"{ctx['func']}: logits hold NaN at index {where} ({int(flat.sum())} NaN element(s)); "
        "a NaN logit has no Bernoulli probability"
    )


def _binary(name: str, kernel: str, arrays: str, options: str, result: str, **kw: Any) -> Op:
    return _op(name, kernel, arrays, options, result, "gumbel", elementwise=True, **kw)


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
        _op("gumbel", "gumbel_fwd", "", "dtype rng row_ids like chunks", "noise", "gumbel"),
        _op("gumbel_softmax", "gumbel_softmax_fwd", "logits:data",
            "tau hard rng noise row_ids return_soft noise_dtype", "rows", "gumbel",
            backward="gumbel_softmax_backward", needs_categories=True),
        _op("gumbel_softmax_backward", "gumbel_softmax_bwd", "g:grad y:data:y_soft", "tau tau_grad", "rows",
            "gumbel", forward="gumbel_softmax"),
        _op("categorical", "categorical_fwd", "logits:data", "num_samples replace rng row_ids noise_dtype",
            "samples", "gumbel", needs_categories=True, finish=_bad_rows,
            variants=(("replace", False, "categorical_topk_fwd"),)),
        _op("categorical_log_prob", "categorical_log_prob_fwd", "logits:data index:index", "", "per_index",
            "softmax", backward="categorical_log_prob_backward", finish=_bad_index),
        _op("categorical_log_prob_backward", "score_bwd", "weights:grad_index:grad logits:data index:index",
            "", "rows", "softmax", forward="categorical_log_prob", constants=(("estimator", SCORE_SUM),),
            finish=_bad_index),
        _op("reinforce", "score_bwd", "logits:data index:index weights:values:values", "baseline", "rows",
            "softmax", finish=_bad_index),
        _op("log_gumbel_softmax", "log_gumbel_softmax_fwd", "logits:data", "tau rng noise row_ids", "rows",
            "gumbel", backward="log_gumbel_softmax_backward", needs_categories=True),
        _op("log_gumbel_softmax_backward", "log_gumbel_softmax_bwd", "g:grad y:data", "tau tau_grad", "rows",
            "gumbel", forward="log_gumbel_softmax"),
        _op("exp_concrete_log_prob", "concrete_log_prob_fwd", "x:data:sample logits_p:pair:logits", "tau",
            "batch", "softmax", backward="exp_concrete_log_prob_backward", constants=(("space", SPACE_LOG),)),
        _op("exp_concrete_log_prob_backward", "concrete_log_prob_bwd",
            "g_rows:grad_batch x:data:sample logits_p:pair:logits", "tau tau_grad", "rows", "softmax",
            forward="exp_concrete_log_prob", constants=(("space", SPACE_LOG),)),
        _op("concrete_log_prob", "concrete_log_prob_fwd", "x:data:sample logits_p:pair:logits", "tau",
            "batch", "softmax", backward="concrete_log_prob_backward", constants=(("space", SPACE_SIMPLEX),)),
        _op("concrete_log_prob_backward", "concrete_log_prob_bwd",
            "g_rows:grad_batch x:data:sample logits_p:pair:logits", "tau tau_grad", "rows", "softmax",
            forward="concrete_log_prob", constants=(("space", SPACE_SIMPLEX),)),
        _op("plackett_luce_log_prob", "plackett_luce_log_prob_fwd", "logits:data index:ranking", "", "batch",
            "softmax", backward="plackett_luce_log_prob_backward", finish=_bad_index),
        _op("plackett_luce_log_prob_backward", "plackett_luce_log_prob_bwd",
            "g_rows:grad_batch logits:data index:ranking", "", "rows", "softmax",
            forward="plackett_luce_log_prob", finish=_bad_index),
        _op("conditional_gumbel", "conditional_gumbel_fwd", "logits:data choice:choice:index",
            "rng num_samples row_ids", "draws", "gumbel", needs_categories=True, finish=_bad_choice),
        _op("gumbel_rao_backward", "gumbel_rao_bwd", "g:grad logits:data choice:choice:index",
            "tau num_samples rng row_ids", "rows", "gumbel", needs_categories=True, finish=_bad_choice),
        _op("reinmax_backward", "reinmax_bwd", "g:grad logits:data choice:choice:index", "tau", "rows",
            "softmax", needs_categories=True, finish=_bad_choice),
        _op("categorical_entropy", "categorical_entropy_fwd", "logits:data", "", "batch", "softmax",
            backward="categorical_entropy_backward"),
        _op("categorical_entropy_backward", "categorical_entropy_bwd", "g_rows:grad_batch logits:data", "",
            "rows", "softmax", forward="categorical_entropy"),
        _op("categorical_kl", "categorical_kl_fwd", "logits:data:logits_q logits_p:pair:logits_p", "",
            "batch", "softmax", backward="categorical_kl_backward"),
        _op("categorical_kl_backward", "categorical_kl_bwd",
            "g_rows:grad_batch logits:data:logits_q logits_p:pair:logits_p", "", "rows", "softmax",
            forward="categorical_kl"),
        _binary("logistic", "logistic_fwd", "", "dtype rng row_ids like chunks", "noise"),
        _binary("bernoulli", "bernoulli_fwd", "logits:data", "num_samples rng row_ids", "bits", finish=_bad_nan),
        _binary("gumbel_sigmoid", "binary_concrete_fwd", "logits:data",
                "tau hard rng noise row_ids return_soft", "rows", backward="gumbel_sigmoid_backward",
                constants=(("lo", 0.0), ("hi", 1.0))),
        _binary("gumbel_sigmoid_backward", "binary_concrete_bwd", "g:grad y:data:y_soft", "tau tau_grad",
                "rows", forward="gumbel_sigmoid", constants=(("gate", GATE_SOFT), ("lo", 0.0), ("hi", 1.0))),
        _binary("hard_concrete", "binary_concrete_fwd", "logits:data",
                "tau limits rng noise row_ids return_soft", "rows", backward="hard_concrete_backward",
                constants=(("gate", GATE_CLIP),)),
        _binary("hard_concrete_backward", "binary_concrete_bwd", "g:grad y:data:y_soft",
                "tau limits tau_grad", "rows", forward="hard_concrete", constants=(("gate", GATE_CLIP),)),
        _binary("hard_concrete_l0", "hard_concrete_l0_fwd", "logits:data", "tau limits", "rows",
                backward="hard_concrete_l0_backward"),
        _binary("hard_concrete_l0_backward", "hard_concrete_l0_bwd", "g:grad logits:data",
                "tau limits tau_grad", "rows", forward="hard_concrete_l0"),
        _binary("binary_concrete_log_prob", "binary_concrete_log_prob_fwd", "x:data:sample logits_p:pair:logits",
                "tau", "rows", backward="binary_concrete_log_prob_backward"),
        _binary("binary_concrete_log_prob_backward", "binary_concrete_log_prob_bwd",
                "g:grad x:data:sample logits_p:pair:logits", "tau tau_grad", "rows",
                forward="binary_concrete_log_prob"),
    )
}
"""Every public function that runs a kernel, by name (``gumbel_np.__all__``
is built from it and :data:`HOST_FUNCTIONS`)."""

HOST_FUNCTIONS = ("anneal_tau",)
"""Public functions with no kernel and no array layout (a schedule of plain
numbers): Python on the host, tested on their own."""



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
    rest on the device of the arrays (:func:`_call`).  A Dask array among
    the arguments (or ``chunks=`` given to a noise function) makes the call
    a lazy graph of such calls (``_dask.py``); Dask is never imported here:
    a Dask array can only exist if ``dask.array`` is in ``sys.modules``.
    """
    import sys

    if sys.modules.get("dask.array") is not None or opts.get("chunks") is not None:
        lazy = sys.modules.get(f"{__package__}._dask")
        if lazy is None:
            from . import _dask as lazy
        res = lazy.dask_run(op, arrays, axis, out, opts)
        if res is not None:
            return res
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
        where = (*arrays, *(opts[o] for o in ARRAY_OPTIONS if o in opts), out)
        where = tuple(w for w in where if not isinstance(w, str))
        xp, backend = namespace(func, *where)
    with backend.device(func, *where):
        return _call(op, xp, backend, arrays, axis, out, opts)


SMALL_CALL = 1 << 16
"""Calls on at most this many elements take :func:`_small_call` when they
can."""

_F32, _F64, _I64 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64)
_BOOL = np.dtype(np.bool_)


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
    if not op.short:
        return None
    roles = op.arrays
    data = next(i for i, r in enumerate(roles) if r[1] == "data")
    a = arrays[data]
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
    rows = a.size // k
    values: dict[str, Any] = {}
    for i, ((param, role, _), x) in enumerate(zip(roles, arrays)):
        if i == data:
            continue
        # Of the data's dtype and C-contiguous, of the data's shape (a
        # gradient, a pair) or of its batch shape (a per-row gradient, without
        # keepdims): what the long way would pass on unconverted.
        if (
            type(x) is not np.ndarray
            or x.dtype is not a.dtype
            or not x.flags.c_contiguous
            or x.shape != (a.shape[:-1] if role == "grad_batch" else a.shape)
        ):
            return None
        values[param] = x.reshape(rows) if role == "grad_batch" else x
    for name, value in opts.items():
        if name == "tau":
            t = scalar_tau(value, a.dtype)
            if t is None:
                return None
            values[op.tau_param] = t
        elif name == "hard":
            if type(value) is not bool:
                return None
            values["hard"] = value
            values["gate"] = GATE_HARD if value else GATE_SOFT
        elif name == "limits":
            values["lo"], values["hi"] = check_limits(value, op.name)
        elif name == "replace":
            if value is not True:
                return None
        elif name != "rng" and value is not (False if name in FLAGS else None):
            return None
    for name, value in op.constants:
        values[name] = value
    values[roles[data][0]] = a
    values["rows"], values["k"] = rows, k
    values["nsamples"] = 1
    if op.result in ("rows", "bits"):
        shape, dtype = a.shape, (a.dtype if op.result == "rows" else _BOOL)
    else:
        shape, dtype = a.shape[:-1], (a.dtype if op.result == "batch" else _I64)
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
    if op.result not in ("rows", "bits"):
        buf = buf.reshape(rows)
    values[op.kernel.output] = buf
    if "status" in op.kernel.cuda:
        values["status"] = np.zeros(1, _I64)
    if "rng" in opts:
        values["noise_mode"] = NOISE_DRAW
        values["k0"], values["k1"] = philox_key(opts["rng"], op.name)
    if "out_p" in op.kernel.cuda:
        values["out_p"] = np.empty(shape, dtype)
    _cpu_launch()(op.kernel, values)
    if op.result == "rows":
        return (buf, values["out_p"]) if "out_p" in values else buf
    lay = Rows(a.shape[:-1], k, a.ndim - 1)
    if op.finish is not None:
        op.finish({"xp": np, "buf": buf.reshape(rows, buf.size // max(rows, 1)), "lay": lay, "func": op.name, "logits": a, "values": values})
    return buf.reshape(shape) if out is None else out


def _index(xp: Any, x: Any, func: str, name: str, lay: Any, axis: Any, role: str = "index") -> tuple[Any, Any]:
    """``index`` as int64 ``(rows, S)`` (its sample axes flattened; a
    ``choice``: ``(rows,)``), and as the array it was given, checked:
    an integer array whose shape starts with the batch shape (for a
    ``ranking``, with exactly one axis more; for a ``choice``, none).  Its values
    are checked by the kernel, in the pass that reads them
    (:func:`_bad_index`)."""
    idx = as_array(xp, x, func, name)
    if idx.dtype.kind not in "iu":
        raise TypeError(
            f"{func}: {name} must be an array of integer category indices, got "
            + (repr(x) if idx.ndim == 0 and idx.dtype.kind in "fcb" else f"dtype {idx.dtype}")
        )
    nb = len(lay.batch)
    if role == "choice":
        if tuple(idx.shape) != lay.batch:
            raise ValueError(
                f"{func}: {name} of shape {tuple(idx.shape)} must have the batch shape {lay.batch} of the "
                f"logits (their shape without axis {axis}): one category per row"
            )
        return xp.ascontiguousarray(idx.astype(np.int64, copy=False)).reshape(lay.rows), idx
    if role == "ranking" and (idx.ndim != nb + 1 or tuple(idx.shape[:nb]) != lay.batch):
        raise ValueError(
            f"{func}: {name} of shape {tuple(idx.shape)} must be the batch shape {lay.batch} of the "
            f"logits (their shape without axis {axis}) followed by one axis of ranked categories"
        )
    if tuple(idx.shape[:nb]) != lay.batch:
        raise ValueError(
            f"{func}: {name} of shape {tuple(idx.shape)} must have the batch shape {lay.batch} of the "
            f"logits (their shape without axis {axis}) followed by any sample axes"
        )
    n = math.prod(idx.shape[nb:])
    return xp.ascontiguousarray(idx.astype(np.int64, copy=False)).reshape(lay.rows, n), idx


def _untie_narrowed(xp: Any, z: Any, choice: Any, dt: Any) -> Any:
    """Conditional samples ``z`` (``(rows, k, s)``, computed in float32)
    rounded to ``dt`` (float16), here or by a CUDA kernel that stores half,
    with every other category that the rounding tied with the winner
    ``choice[r]`` set to the ``dt`` value just below it: the kernels' rule,
    kept after the rounding, so that the argmax is still the index.  The
    indices were checked by the kernel."""
    h = z.astype(dt)
    rows = xp.arange(h.shape[0])
    win = h[rows, choice, :]  # (rows, s)
    tied = h == win[:, None, :]
    tied[rows, choice, :] = False
    if bool(tied.any()):
        below = xp.nextafter(win, xp.asarray(-np.inf, dt))
        h = xp.where(tied, below[:, None, :], h)
    return h


_INDEX_ROLES = ("index", "ranking", "choice")
"""The roles of integer category indices."""


def _inputs(
    op: Op, xp: Any, arrays: tuple[Any, ...], axis: Any, half: bool, values: dict, keepdims: bool
) -> tuple[Any, Any, tuple, Any]:
    """The positional arrays of ``op``, converted, checked and laid out as
    rows into ``values`` (an index also as given, under ``"_index_raw"``);
    returns ``(data, result dtype, inputs, layout)``.

    The dtypes of the data, a pair and a gradient promote together (NumPy's
    rule); ``values`` take the data's dtype.
    """
    func, roles = op.name, op.arrays
    conv = {}
    for (param, role, name), x in zip(roles, arrays):
        if role not in _INDEX_ROLES:
            conv[param] = float_array(xp, x, func, name, half)
    promoted = [conv[p] for p, role, _ in roles if role not in (*_INDEX_ROLES, "values")]
    common = np.result_type(*(v[0].dtype for v in promoted))
    result = np.result_type(*(v[1] for v in promoted))
    data, _, data_name = next(r for r in roles if r[1] == "data")
    a = conv[data][0].astype(common, copy=False)
    lay = layout(a.shape, axis, func)
    if op.needs_categories and lay.k == 0:
        raise ValueError(
            f"{func}: the category axis {axis} of logits with shape {a.shape} is empty; "
            "there is nothing to sample"
        )
    inputs: list[Any] = []
    index_shape = None
    for (param, role, name), x in zip(roles, arrays):
        if role in _INDEX_ROLES:
            values[param], raw = _index(xp, x, func, name, lay, axis, role)
            index_shape = tuple(raw.shape)
            values["_index_raw"] = raw
            if role != "choice":
                values["nsamples"] = values[param].shape[1]
            values["status"] = xp.zeros(1, np.int64)
    for param, role, name in roles:
        if role in _INDEX_ROLES:
            continue
        v = conv[param][0]
        if role == "data":
            values[param] = to_rows(xp, a, lay)
        elif role in ("grad", "pair"):
            v = v.astype(common, copy=False)
            if role == "pair" and v.shape != a.shape:
                # A second distribution (a prior, the p of a divergence)
                # broadcasts to the data's shape, as NumPy would; its
                # gradient is summed back to its own shape.
                try:
                    values["_pair_shape"] = tuple(v.shape)
                    v = xp.broadcast_to(v, a.shape)
                except ValueError:
                    raise ValueError(
                        f"{func}: {name} of shape {tuple(v.shape)} does not broadcast to the shape "
                        f"{tuple(a.shape)} of {data_name}"
                    ) from None
            same_shape(func, **({name: v, data_name: a} if role == "grad" else {data_name: a, name: v}))
            values[param] = to_rows(xp, v, lay)
        elif role == "grad_batch":
            v = v.astype(common, copy=False)
            batch = lay.batch_shape(keepdims)
            try:
                v = xp.broadcast_to(v, batch)
            except ValueError:
                raise ValueError(
                    f"{func}: grad of shape {v.shape} does not fit the {op.forward} output shape {batch}"
                ) from None
            values[param] = xp.ascontiguousarray(v).reshape(lay.rows)
        else:  # grad_index, values: one value per index
            v = v.astype(common if role == "grad_index" else a.dtype, copy=False)
            if tuple(v.shape) != index_shape:
                raise ValueError(
                    f"{func}: {name} must have the shape {index_shape} of index, got shape {tuple(v.shape)}"
                )
            values[param] = xp.ascontiguousarray(v).reshape(lay.rows, values["nsamples"])
        inputs.append(v)
    return a, result, tuple(inputs), lay


def _baseline(xp: Any, baseline: Any, values: dict, func: str, compute: np.dtype) -> None:
    """The ``estimator`` and ``baseline`` of ``reinforce``'s kernel for its
    ``baseline`` option (``None``, ``"loo"``, or numbers broadcastable to
    ``values``)."""
    shape, n = tuple(values["_index_raw"].shape), values["nsamples"]
    if n < 1:
        raise ValueError(f"{func}: index of shape {shape} holds no samples; the estimate needs at least one")
    if baseline is None:
        values["estimator"], values["baseline"] = SCORE_MEAN, None
        return
    if isinstance(baseline, str):
        if baseline != "loo":
            raise ValueError(
                f"{func}: baseline must be None, a number, an array broadcastable to values, or 'loo', "
                f"got {baseline!r}"
            )
        if n < 2:
            raise ValueError(
                f"{func}: baseline='loo' needs at least 2 samples per row (the mean of the others), "
                f"got {n} (index of shape {shape})"
            )
        values["estimator"], values["baseline"] = SCORE_LOO, None
        return
    b = as_array(xp, baseline, func, "baseline")
    if b.dtype.kind not in "iuf":
        raise TypeError(
            f"{func}: baseline must be None, a real number or array, or 'loo', got "
            + (repr(baseline) if b.ndim == 0 else f"an array of dtype {b.dtype}")
        )
    try:
        b = xp.broadcast_to(b, shape)
    except ValueError:
        raise ValueError(
            f"{func}: baseline of shape {tuple(b.shape)} does not broadcast to the shape {shape} of values"
        ) from None
    values["estimator"] = SCORE_MEAN
    values["baseline"] = xp.ascontiguousarray(b.astype(compute, copy=False)).reshape(values["weights"].shape)


def _call(op: Op, xp: Any, backend: Any, arrays: tuple[Any, ...], axis: Any, out: Any, opts: dict) -> Any:
    func = op.name
    kernel = op.kernel_for(opts)
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
        a, result, inputs, lay = _inputs(op, xp, arrays, axis, half, values, opts.get("keepdims", False))
        compute, data_shape = a.dtype, a.shape
        if opts.get("noise_dtype") is not None and check_noise_dtype(opts["noise_dtype"], a.dtype, func) != compute:
            # The float64 stream for float32 (float16) logits: the call
            # computes in float64 and returns the logits' dtype.
            a = a.astype(_F64)
            compute = a.dtype
            values[next(p for p, r, _ in op.arrays if r == "data")] = to_rows(xp, a, lay)

    # Options, in the order their errors are reported.
    nsamples = None
    if "num_samples" in opts:
        nsamples = check_num_samples(opts["num_samples"], func)
        if nsamples is None and op.result == "rows":  # an average over samples, not a sampler
            raise TypeError(f"{func}: num_samples must be an int >= 1 (the samples averaged), not None")
        values["nsamples"] = 1 if nsamples is None else nsamples
        if opts.get("replace") is False and values["nsamples"] > lay.k:
            raise ValueError(
                f"{func}: num_samples={nsamples} exceeds the {lay.k} categories of axis {axis}; "
                "without replacement at most that many can be drawn"
            )
    if "tau" in opts:
        if op.elementwise:
            each = Rows(tuple(data_shape), 1, 0, scalar=True)
            taus, tau_shape = check_tau(xp, opts["tau"], each, compute, func, "the shape of the logits")
            if taus.size > 1:  # one per element: in the kernels' row layout
                taus = to_rows(xp, taus.reshape(data_shape), lay).reshape(-1)
        else:
            taus, tau_shape = check_tau(xp, opts["tau"], lay, compute, func)
        values[op.tau_param] = taus
        inputs += (taus,)
    if "limits" in opts:
        values["lo"], values["hi"] = check_limits(opts["limits"], func)
    if "row_ids" in opts:
        values["row_ids"] = check_row_ids(xp, opts["row_ids"], lay, func)
    if "baseline" in opts:
        _baseline(xp, opts["baseline"], values, func, compute)
    if "noise" in opts:
        mode, nz = _noise(xp, opts["noise"], opts["rng"], a, lay, func, half)
        values["noise_mode"], values["noise"] = mode, nz
        inputs += (nz,)
    if "rng" in opts and values.get("noise_mode", NOISE_DRAW) == NOISE_DRAW:
        values["k0"], values["k1"] = philox_key(opts["rng"], func)

    # Outputs.
    if op.result == "batch":
        shape = lay.batch_shape(opts.get("keepdims", False))
        buf = output(xp, out, func, shape, result, compute, (lay.rows,), None, inputs)
    elif op.result == "per_index":
        shape = tuple(values["_index_raw"].shape)
        buf = output(xp, out, func, shape, result, compute, (lay.rows, values["nsamples"]), None, inputs)
    elif op.result == "samples":
        s = values["nsamples"]
        shape = lay.batch if nsamples is None else lay.batch + (s,)
        i64 = np.dtype(np.int64)
        buf = output(xp, out, func, shape, i64, i64, (lay.rows, s), None, inputs)
    elif op.result in ("bits", "draws"):
        s = values["nsamples"]
        shape = tuple(data_shape) if nsamples is None else tuple(data_shape) + (s,)
        dt, ct = (_BOOL, _BOOL) if op.result == "bits" else (result, compute)
        buf = output(xp, out, func, shape, dt, ct, (lay.rows, lay.k, s), None, inputs)
        moved = not lay.scalar and lay.axis != len(data_shape) - 1
        if moved and out is not None:  # out's layout is not the kernel's
            buf = empty(xp, (lay.rows, lay.k, s), ct, func)
        if op.result == "bits":
            values["status"] = xp.zeros(1, np.int64)
    else:
        buf = output(xp, out, func, data_shape, result, compute, lay.shape2d(), lay.axis, inputs)
    values[kernel.output] = buf
    if opts.get("return_soft") and opts.get("hard", True):
        values["out_soft"] = empty(xp, lay.shape2d(), compute, func)
    if opts.get("tau_grad"):
        dtau = "dtaus" if op.elementwise else "dtau"
        values[dtau] = xp.empty(lay.rows * (lay.k if op.elementwise else 1), compute_float(compute))
    if "hard" in opts:
        values["hard"] = opts["hard"]
        values["gate"] = GATE_HARD if opts["hard"] else GATE_SOFT
    if "out_p" in kernel.cuda:
        values["out_p"] = empty(xp, lay.shape2d(), compute, func)
    for name, value in op.constants:
        values[name] = value

    # Launch.
    values["rows"], values["k"] = lay.rows, lay.k
    backend.launch(kernel, values)
    if op.finish is not None:
        op.finish(
            {"xp": xp, "buf": buf, "lay": lay, "func": func, "logits": values.get("logits"), "values": values, "axis": axis}
        )

    # Restore and deliver.
    if op.result == "batch":
        return deliver(xp, lay.restore_batch(buf, opts.get("keepdims", False)).astype(result, copy=False), out)
    if op.result == "samples":
        return deliver(xp, buf.reshape(shape), out)
    if op.result in ("bits", "draws"):
        if op.result == "draws" and np.dtype(dt) == np.float16:
            buf = _untie_narrowed(xp, buf.reshape(lay.rows, lay.k, values["nsamples"]), values["choice"], dt)
        if moved:
            buf = xp.moveaxis(buf.reshape(lay.batch + (lay.k, values["nsamples"])), -2, lay.axis)
        return deliver(xp, buf.reshape(shape).astype(dt, copy=False), out)
    if op.result == "per_index":
        return deliver(xp, buf.reshape(shape).astype(result, copy=False), out)
    y = deliver(xp, lay.restore(xp, buf).astype(result, copy=False), out)
    results = (y,)
    if "out_p" in values:  # the gradient of a second input (a divergence, a density)
        second = lay.restore(xp, values["out_p"]).astype(result, copy=False)
        if "_pair_shape" in values:
            second = sum_to_shape(xp, second, values["_pair_shape"])
        results += (second,)
    if opts.get("return_soft"):
        soft = values.get("out_soft")
        results += (y if soft is None else lay.restore(xp, soft).astype(result, copy=False),)
    if opts.get("tau_grad"):
        if op.elementwise:
            dt = sum_to_shape(xp, lay.restore(xp, values["dtaus"].reshape(lay.shape2d())), tau_shape)
        else:
            dt = sum_to_shape(xp, values["dtau"].reshape(lay.batch), tau_shape)
        results += (dt.reshape(np.shape(opts["tau"])).astype(result, copy=False),)
    return results[0] if len(results) == 1 else results
