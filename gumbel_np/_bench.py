"""Benchmark registry and machinery shared by ``bench/`` and ``python -m gumbel_np bench``.

A *case* is one operation at one size with its implementations: gumbel_np
first, then the peers installed here (NumPy/SciPy, PyTorch, JAX).  Every
implementation runs on the same float32 inputs with the same thread count; a
plain memory copy that reads and writes the same number of bytes is timed in
the same run as the hardware floor.  Figures are medians of repeated calls
after a warm-up (which also compiles the kernels), taken in interleaved
rounds (:func:`interleaved_medians`).  On the GPU, times come
from ``cupyx.profiler.benchmark`` (CUDA events), never from a host clock.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

from . import _cases
from ._ops import DEFAULT_LIMITS

TAU = _cases.OPTIONS["tau"]
FULL_SIZES = [(4096, 1024), (65536, 128), (256, 50257), (1_000_000, 10)]
QUICK_SIZES = [(512, 1024), (4096, 128), (16, 50257), (50_000, 10)]
GPU_SIZES = [(65536, 1024), (16384, 32000), (4_000_000, 16)]
GPU_QUICK_SIZES = [(4096, 1024), (1024, 32000), (250_000, 16)]
LATENCY_SIZES = [(1, 10), (100, 10)]
"""Sizes of the ``latency`` family, whatever sizes the run is given."""
LATENCY_CALLS = 2000
"""Calls per timed sample in the ``latency`` family (figures are per call)."""
BINARY_SIZES = [(4096, 4096), (16_777_216, 1)]
"""Sizes of the ``binary`` family in a run at ``FULL_SIZES``: 16 M float32
elements as a square and as one column (one element per row, so one stream
per element)."""
BINARY_QUICK_SIZES = [(1024, 1024), (1_048_576, 1)]
"""Sizes of the ``binary`` family in a run at ``QUICK_SIZES`` (the default
of ``python -m gumbel_np bench``): the same two shapes, 16 times smaller
(1 M elements).  They add about a minute to that run on 2 cores (64 s
measured with an empty kernel cache, half of it compiling the binary
kernels; 35 s with the kernels cached), where the 16 M shapes would add
more than three (200 to 280 s cached).  On the GPU, the run at
``GPU_QUICK_SIZES`` takes ``BINARY_SIZES``."""
BINARY_GPU_SIZES = [(8192, 8192), (67_108_864, 1)]
"""Sizes of the ``binary`` family in a run at ``GPU_SIZES`` (64 M elements)."""
RANKING_SIZES = [(4096, 1024), (256, 50257), (1_000_000, 10)]
"""Sizes of the ``ranking`` family in a run at ``FULL_SIZES``: those of its
speed targets (``bench/topk_targets.py``), ``FULL_SIZES`` without K = 128."""
RANKING_QUICK_SIZES = [(512, 1024), (16, 50257), (50_000, 10)]
"""Sizes of the ``ranking`` family in a run at ``QUICK_SIZES`` (the default
of ``python -m gumbel_np bench``), ``QUICK_SIZES`` without K = 128: its
cases time slow peers (``torch.multinomial`` and NumPy's top-k cost 10 to 20
times the sampler), and three sizes keep the family's share of that run
small.  Other runs (the GPU's, sizes given by hand) take their sizes as
they are."""
RANKING_SAMPLES = (1, 8, 64)
"""Samples per row of the ``ranking`` family's top-k cases (``categorical(...,
num_samples=k, replace=False)``; at most K, so 1, 8 and 10 at K = 10)."""
RANKING_PL_SAMPLES = (1, 8)
"""Ranking lengths of the ``ranking`` family's Plackett-Luce cases."""
CHOICE_ROWS = 256
CHOICE_ELEMENTS = 1 << 16
"""NumPy's ``Generator.choice`` peer runs a Python loop over rows: it is timed
on the first ``min(rows, CHOICE_ROWS, CHOICE_ELEMENTS // K)`` rows (at least
one) and its time scaled to the whole batch (:attr:`Case.scale`)."""
COPY = "memory copy"
OUT = "gumbel_np (out=)"
"""The implementation name of gumbel_np writing into a preallocated ``out=``
(as the memory copy and NumPy's in-place noise do)."""


@dataclass
class Case:
    family: str
    op: str
    shape: tuple[int, int]
    nbytes: int
    impls: dict[str, Callable[[], Any]] = field(default_factory=dict)
    calls: int = 1  # calls of the operation per call of an impl (times are per operation)
    # Per implementation: its time's factor to the whole case, for a peer
    # timed on a part of the batch (rows / rows timed).
    scale: dict[str, float] = field(default_factory=dict)


@dataclass
class Row:
    op: str
    size: str
    backend: str
    impl: str
    ms: float
    gbps: float
    vs_ours: float  # this implementation's time over gumbel_np's (> 1: gumbel_np is faster)
    vs_copy: float  # this implementation's time over the memory-copy floor

    def as_dict(self) -> dict:
        return asdict(self)


def optional(name: str) -> Any:
    """The module if it imports, else None."""
    try:
        return importlib.import_module(name)
    except Exception:
        return None


def peers() -> dict[str, Any]:
    """The peer libraries installed here."""
    found = {"numpy": np, "scipy": optional("scipy.special"), "torch": optional("torch"), "jax": optional("jax")}
    if found["jax"] is not None:
        found["jax"].config.update("jax_platforms", "cpu")
    return {k: v for k, v in found.items() if v is not None}


def gpu_peers() -> dict[str, Any]:
    """The peer libraries that run on the GPU here (PyTorch with CUDA)."""
    torch = optional("torch")
    return {"torch": torch} if torch is not None and torch.cuda.is_available() else {}


def torch_of(torch: Any, a: Any) -> Any:
    """A PyTorch tensor sharing ``a``'s memory (NumPy, or CuPy by DLPack)."""
    return torch.from_numpy(a) if isinstance(a, np.ndarray) else torch.from_dlpack(a)


def torch_conditional_gumbel(torch: Any, logits: Any, onehot: Any, k: int) -> Any:
    """The conditional Gumbel sampler of Paulus et al.'s reference code,
    ported as published: ``k`` samples as a ``(k, rows, K)`` tensor of noise
    (``exp(logits)`` summed unshifted, as there)."""
    with torch.no_grad():
        e = torch.distributions.exponential.Exponential(rate=torch.ones_like(logits)).sample([k])
        ei = (onehot * e).sum(dim=-1, keepdim=True)
        z = logits.exp().sum(dim=-1, keepdim=True)
        adjusted = onehot * (-torch.log(ei) + torch.log(z)) + (1 - onehot) * -torch.log(
            e / torch.exp(logits) + ei / z
        )
        return adjusted - logits


def torch_gumbel_rao(torch: Any, logits: Any, onehot: Any, grad: Any, tau: float, k: int) -> Callable[[], Any]:
    """The reference's Gumbel-Rao gradient with respect to the logits (the
    sample given): the surrogate ``softmax((logits + noise) / tau).mean(0)``
    differentiated by autograd."""

    def run():
        a = logits.detach().requires_grad_(True)
        noise = torch_conditional_gumbel(torch, a.detach(), onehot, k)
        return torch.autograd.grad(torch.softmax((a + noise) / tau, dim=-1).mean(0), a, grad)

    return run


def torch_reinmax_backward(torch: Any, logits: Any, onehot: Any, grad: Any, tau: float) -> Callable[[], Any]:
    """Liu et al.'s ``ReinMaxCore.backward``, ported as published, with no
    gradient at the soft output."""

    def run():
        y_soft = logits.softmax(dim=-1)
        shifted = 0.5 * ((logits / tau).softmax(dim=-1) + onehot)
        g1 = (2 * grad) * shifted
        g1 = g1 - shifted * g1.sum(dim=-1, keepdim=True)
        g0 = (-0.5 * grad) * y_soft
        g0 = g0 - y_soft * g0.sum(dim=-1, keepdim=True)
        out = g0 + g1
        return out - out.mean(dim=-1, keepdim=True)

    return run


def gpu_skip_reason() -> str | None:
    """Why the GPU backend cannot be benchmarked here, or None."""
    cupy = optional("cupy")
    if cupy is None:
        return "CuPy is not installed (pip install '.[cuda12]' or '.[cuda13]')"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "no CUDA device is present"
    except Exception as exc:
        return f"no CUDA device is usable ({type(exc).__name__}: {exc})"
    return None


def set_threads(n: int) -> int:
    """Use ``n`` threads in every library; returns the Numba thread count."""
    import numba

    n = max(1, min(n, numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(n)
    torch = optional("torch")
    if torch is not None:
        torch.set_num_threads(n)
    return n


def interleaved_medians(
    fns: dict[str, Callable[[], Any]], rounds: int = 7, warmup: int = 1, min_time: float = 0.1
) -> dict[str, float]:
    """Median wall time in seconds of each ``fn()`` (CPU work only).

    The implementations are timed in interleaved rounds (each once per
    round) rather than one after another, so that a change in the machine's
    speed during the measurement -- common on a shared virtual machine --
    touches every implementation, the copy floor included, alike and leaves
    their ratios alone.  At least ``rounds`` rounds; more, up to 50, until
    every implementation has run for ``min_time`` seconds in all.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    while True:
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
        n = len(times[next(iter(times))])
        if n >= 50 or (n >= rounds and min(sum(t) for t in times.values()) >= min_time):
            break
    return {name: statistics.median(t) for name, t in times.items()}


def gpu_time(fn: Callable[[], Any], repeat: int = 20) -> float:
    """Median GPU time of ``fn()`` in seconds, by CUDA events."""
    from cupyx.profiler import benchmark

    res = benchmark(fn, n_repeat=repeat, n_warmup=3)
    return float(np.median(res.gpu_times))


def _copy_fn(xp: Any, nbytes: int) -> Callable[[], Any]:
    n = max(1, nbytes // 8)  # a copy of n float32 reads 4n and writes 4n bytes
    src = xp.asarray(np.random.default_rng(0).random(n, dtype=np.float32))
    dst = xp.empty_like(src)
    return lambda: xp.copyto(dst, src)


def _numpy_noise(shape: tuple[int, int], npr: np.random.Generator) -> Callable[[], Any]:
    """The fastest plain-NumPy float32 Gumbel noise: -log(-log(U)) in place."""
    buf = np.empty(shape, np.float32)

    def noise():
        npr.random(dtype=np.float32, out=buf)
        np.log(buf, out=buf)
        np.negative(buf, out=buf)
        np.log(buf, out=buf)
        return np.negative(buf, out=buf)

    return noise


def _ours(family: str, op: str, name: str, shape: tuple[int, int], xp: Any, **extra: Any) -> tuple[Case, Any]:
    """The case of operation ``name``'s example call (``gumbel_np._cases``,
    the tests' table) on float32 data of ``shape``: allocating and with
    ``out=``, and the call (whose arrays the peers take)."""
    call = _cases.make(name, shape, np.float32, xp, **extra)
    res = call()
    buf = xp.empty_like(res[0] if isinstance(res, tuple) else res)
    impls = {"gumbel_np": call}
    if "out" in inspect.signature(getattr(importlib.import_module("gumbel_np"), name)).parameters:
        impls[OUT] = lambda: call(out=buf)
    return Case(family, op, shape, call.nbytes(res), impls), call


def softmax_cases(shape: tuple[int, int], xp: Any = np, found: dict | None = None) -> list[Case]:
    """The softmax family, its backward passes and Gumbel noise."""
    found = peers() if found is None else found
    cases, calls = [], {}
    for op, name in (
        ("softmax", "softmax"),
        ("log_softmax", "log_softmax"),
        ("logsumexp", "logsumexp"),
        ("softmax_backward", "softmax_backward"),
        ("log_softmax_backward", "log_softmax_backward"),
        ("logsumexp_backward", "logsumexp_backward"),
        ("gumbel noise", "gumbel"),
    ):
        case, calls[name] = _ours("softmax", op, name, shape, xp)
        cases.append(case)
    (x,) = calls["softmax"].arrays
    g, y = calls["softmax_backward"].arrays
    ly = calls["log_softmax_backward"].arrays[1]
    gr = calls["logsumexp_backward"].arrays[0]
    by_op = {c.op: c.impls for c in cases}
    torch = found.get("torch")
    if torch is not None:
        tx = torch_of(torch, x).requires_grad_(True)
        tg = torch_of(torch, g)
        ty, tly, tlse = torch.softmax(tx, -1), torch.log_softmax(tx, -1), torch.logsumexp(tx, -1)
        td = tx.detach()
        by_op["softmax"]["torch"] = lambda: torch.softmax(td, -1)
        by_op["log_softmax"]["torch"] = lambda: torch.log_softmax(td, -1)
        by_op["logsumexp"]["torch"] = lambda: torch.logsumexp(td, -1)
        by_op["softmax_backward"]["torch (autograd)"] = lambda: torch.autograd.grad(ty, tx, tg, retain_graph=True)
        by_op["log_softmax_backward"]["torch (autograd)"] = lambda: torch.autograd.grad(tly, tx, tg, retain_graph=True)
        tgr = torch_of(torch, gr)
        by_op["logsumexp_backward"]["torch (autograd)"] = lambda: torch.autograd.grad(tlse, tx, tgr, retain_graph=True)
        by_op["gumbel noise"]["torch"] = lambda: -torch.empty(shape, device=td.device).exponential_().log()
    if xp is not np:
        return cases
    sp = found.get("scipy")
    if sp is not None:
        by_op["softmax"]["scipy.special"] = lambda: sp.softmax(x, axis=-1)
        by_op["log_softmax"]["scipy.special"] = lambda: sp.log_softmax(x, axis=-1)
        by_op["logsumexp"]["scipy.special"] = lambda: sp.logsumexp(x, axis=-1)
    by_op["softmax_backward"]["numpy"] = lambda: y * (g - (g * y).sum(-1, keepdims=True))
    by_op["log_softmax_backward"]["numpy"] = lambda: g - np.exp(ly) * g.sum(-1, keepdims=True)
    by_op["gumbel noise"]["numpy (in place)"] = _numpy_noise(shape, np.random.default_rng(1))
    return cases


def gumbel_cases(shape: tuple[int, int], xp: Any = np, found: dict | None = None) -> list[Case]:
    """Gumbel-Softmax (soft, hard, backward) and categorical sampling."""
    found = peers() if found is None else found
    cases = []
    for op, name, extra in (
        ("gumbel_softmax", "gumbel_softmax", {}),
        ("gumbel_softmax hard", "gumbel_softmax", {"hard": True}),
        ("gumbel_softmax_backward", "gumbel_softmax_backward", {}),
        ("categorical", "categorical", {}),
    ):
        cases.append(_ours("gumbel", op, name, shape, xp, **extra)[0])
    soft, hard, bwd, cat = (c.impls for c in cases)
    (x,) = cases[0].impls["gumbel_np"].arrays
    g = cases[2].impls["gumbel_np"].arrays[0]
    torch = found.get("torch")
    if torch is not None:
        F = torch.nn.functional
        tx = torch_of(torch, x)
        txg = tx.clone().requires_grad_(True)
        ty = F.gumbel_softmax(txg, tau=TAU)
        tg = torch_of(torch, g)
        soft["torch"] = lambda: F.gumbel_softmax(tx, tau=TAU)
        hard["torch"] = lambda: F.gumbel_softmax(tx, tau=TAU, hard=True)
        bwd["torch (autograd)"] = lambda: torch.autograd.grad(ty, txg, tg, retain_graph=True)
        cat["torch.multinomial"] = lambda: torch.multinomial(torch.softmax(tx, -1), 1)
    if xp is not np:
        return cases
    npr = np.random.default_rng(1)
    noise = _numpy_noise(shape, npr)

    def numpy_gumbel_softmax():
        z = noise()
        z += x
        z /= TAU
        z -= z.max(-1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(-1, keepdims=True)
        return z

    def numpy_gumbel_max():
        z = noise()
        z += x
        return z.argmax(-1)

    def numpy_cumsum():
        p = np.exp(x - x.max(-1, keepdims=True))
        np.cumsum(p, axis=-1, out=p)
        u = npr.random(len(x), dtype=np.float32)[:, None] * p[:, -1:]
        return (p < u).sum(-1)

    soft["numpy"] = numpy_gumbel_softmax
    cat["numpy (cumsum)"] = numpy_cumsum
    cat["numpy (gumbel-max)"] = numpy_gumbel_max
    jax = found.get("jax")
    if jax is not None:
        jx = jax.numpy.asarray(x)
        key = jax.random.PRNGKey(0)
        jgs = jax.jit(lambda k, a: jax.nn.softmax((a + jax.random.gumbel(k, a.shape, a.dtype)) / TAU, axis=-1))
        jcat = jax.jit(lambda k, a: jax.random.categorical(k, a, axis=-1))
        soft["jax (jit)"] = lambda: jgs(key, jx).block_until_ready()
        cat["jax.random.categorical"] = lambda: jcat(key, jx).block_until_ready()
    return cases


def estimator_cases(shape: tuple[int, int], xp: Any = np, found: dict | None = None) -> list[Case]:
    """The score-function estimator (S = 1 and 4 samples per row), the
    log-probability, entropy and KL divergence with their backward passes
    (PyTorch's through autograd), the conditional Gumbel sample, Gumbel-Rao
    (S = 1 and 10) and ReinMax (against ports of their authors' PyTorch
    code), and in the same run the
    kernels they are measured against (``softmax`` with ``out=`` for
    ``reinforce``, ``logsumexp`` for ``categorical_log_prob``)."""
    found = peers() if found is None else found
    cases = []
    for op, name, extra in (
        ("softmax", "softmax", {}),
        ("logsumexp", "logsumexp", {}),
        ("reinforce S=1", "reinforce", {"draws": 1}),
        ("reinforce S=4", "reinforce", {"draws": 4}),
        ("reinforce loo S=4", "reinforce", {"draws": 4, "baseline": "loo"}),
        ("categorical_log_prob", "categorical_log_prob", {"draws": 1}),
        ("categorical_entropy", "categorical_entropy", {}),
        ("categorical_kl", "categorical_kl", {}),
        ("categorical_log_prob_backward", "categorical_log_prob_backward", {"draws": 1}),
        ("categorical_entropy_backward", "categorical_entropy_backward", {}),
        ("categorical_kl_backward", "categorical_kl_backward", {}),
        ("conditional_gumbel", "conditional_gumbel", {}),
        ("gumbel_rao_backward S=1", "gumbel_rao_backward", {"num_samples": 1}),
        ("gumbel_rao_backward S=10", "gumbel_rao_backward", {"num_samples": 10}),
        ("reinmax_backward", "reinmax_backward", {}),
    ):
        cases.append(_ours("estimators", op, name, shape, xp, **extra)[0])
    by_op = {c.op: c.impls for c in cases}
    calls = {c.op: c.impls["gumbel_np"] for c in cases}
    x, i1, v1 = calls["reinforce S=1"].arrays
    _, i4, v4 = calls["reinforce S=4"].arrays
    q, p = calls["categorical_kl"].arrays
    torch = found.get("torch")
    if torch is not None:
        from torch.distributions import Categorical, kl_divergence

        tx, tq, tp = torch_of(torch, x), torch_of(torch, q), torch_of(torch, p)

        def torch_reinforce(idx: Any, v: Any, loo: bool = False) -> Callable[[], Any]:
            ti, tv = torch_of(torch, idx).T, torch_of(torch, v).T  # (S, rows): the sample shape first
            s = ti.shape[0]

            def grad():
                a = tx.detach().requires_grad_(True)
                lp = Categorical(logits=a, validate_args=False).log_prob(ti)
                w = (tv - (tv.sum(0) - tv) / (s - 1)) if loo else tv
                return torch.autograd.grad((w * lp).mean(0).sum(), a)

            return grad

        by_op["reinforce S=1"]["torch (autograd)"] = torch_reinforce(i1, v1)
        by_op["reinforce S=4"]["torch (autograd)"] = torch_reinforce(i4, v4)
        by_op["reinforce loo S=4"]["torch (autograd)"] = torch_reinforce(i4, v4, loo=True)
        t1 = torch_of(torch, i1).T
        by_op["categorical_log_prob"]["torch"] = lambda: Categorical(logits=tx, validate_args=False).log_prob(t1)
        by_op["categorical_entropy"]["torch"] = lambda: Categorical(logits=tx, validate_args=False).entropy()
        by_op["categorical_kl"]["torch"] = lambda: kl_divergence(
            Categorical(logits=tq, validate_args=False), Categorical(logits=tp, validate_args=False)
        )
        by_op["softmax"]["torch"] = lambda: torch.softmax(tx, -1)
        by_op["logsumexp"]["torch"] = lambda: torch.logsumexp(tx, -1)
        # The backward passes: autograd on a retained graph (only the backward runs).
        g_lp, _, _ = calls["categorical_log_prob_backward"].arrays
        g_h, _ = calls["categorical_entropy_backward"].arrays
        g_kl, _, _ = calls["categorical_kl_backward"].arrays
        ax, aq, ap = (t.clone().requires_grad_(True) for t in (tx, tq, tp))
        lp = Categorical(logits=ax, validate_args=False).log_prob(t1)
        ent = Categorical(logits=ax, validate_args=False).entropy()
        kl = kl_divergence(Categorical(logits=aq, validate_args=False), Categorical(logits=ap, validate_args=False))
        tg_lp, tg_h, tg_kl = torch_of(torch, g_lp).T, torch_of(torch, g_h), torch_of(torch, g_kl)
        by_op["categorical_log_prob_backward"]["torch (autograd)"] = lambda: torch.autograd.grad(
            lp, ax, tg_lp, retain_graph=True
        )
        by_op["categorical_entropy_backward"]["torch (autograd)"] = lambda: torch.autograd.grad(
            ent, ax, tg_h, retain_graph=True
        )
        by_op["categorical_kl_backward"]["torch (autograd)"] = lambda: torch.autograd.grad(
            kl, (aq, ap), tg_kl, retain_graph=True
        )
        # The reference codes of Gumbel-Rao and ReinMax, ported (the sample given).
        xc, ic = calls["conditional_gumbel"].arrays
        g_r, _, _ = calls["gumbel_rao_backward S=1"].arrays
        tau = calls["gumbel_rao_backward S=1"].options["tau"]
        onehot = torch.nn.functional.one_hot(torch_of(torch, ic), shape[1]).to(torch_of(torch, xc).dtype)
        txc, tg_r = torch_of(torch, xc), torch_of(torch, g_r)
        by_op["conditional_gumbel"]["torch (reference port)"] = lambda: torch_conditional_gumbel(torch, txc, onehot, 1)
        for s in (1, 10):
            by_op[f"gumbel_rao_backward S={s}"]["torch (reference port)"] = torch_gumbel_rao(
                torch, txc, onehot, tg_r, tau, s
            )
        by_op["reinmax_backward"]["torch (reference port)"] = torch_reinmax_backward(torch, txc, onehot, tg_r, tau)
    if xp is not np:
        return cases

    def np_log_softmax(a: Any) -> Any:
        z = a - a.max(-1, keepdims=True)
        return z - np.log(np.exp(z).sum(-1, keepdims=True))

    def numpy_reinforce(idx: Any, v: Any, loo: bool = False) -> Callable[[], Any]:
        s = idx.shape[1]
        rows = np.arange(len(idx))

        def grad():
            e = np.exp(x - x.max(-1, keepdims=True))
            w = ((v - v.mean(-1, keepdims=True)) / (s - 1)) if loo else v / s
            g = e * (-w.sum(-1, keepdims=True) / e.sum(-1, keepdims=True))
            for d in range(s):  # one sample per row at a time: no repeated index
                g[rows, idx[:, d]] += w[:, d]
            return g

        return grad

    by_op["reinforce S=1"]["numpy"] = numpy_reinforce(i1, v1)
    by_op["reinforce S=4"]["numpy"] = numpy_reinforce(i4, v4)
    by_op["reinforce loo S=4"]["numpy"] = numpy_reinforce(i4, v4, loo=True)
    by_op["categorical_log_prob"]["numpy"] = lambda: np.take_along_axis(np_log_softmax(x), i1, -1)

    def numpy_entropy():
        lq = np_log_softmax(x)
        return -(np.exp(lq) * lq).sum(-1)

    def numpy_kl():
        lq = np_log_softmax(q)
        return (np.exp(lq) * (lq - np_log_softmax(p))).sum(-1)

    by_op["categorical_entropy"]["numpy"] = numpy_entropy
    by_op["categorical_kl"]["numpy"] = numpy_kl
    sp = found.get("scipy")
    if sp is not None:
        by_op["softmax"]["scipy.special"] = lambda: sp.softmax(x, axis=-1)
        by_op["logsumexp"]["scipy.special"] = lambda: sp.logsumexp(x, axis=-1)
    return cases


def _repeated(fn: Callable[[], Any], n: int) -> Callable[[], Any]:
    def many():
        for _ in range(n):
            fn()

    return many


def latency_cases(shape: tuple[int, int], xp: Any = np, found: dict | None = None) -> list[Case]:
    """Per-call latency on tiny arrays: the same operations as the other
    families, each sample ``LATENCY_CALLS`` calls in a loop (the Python
    overhead of validation, dispatch and launch dominates here)."""
    found = peers() if found is None else found
    cases = [
        c
        for fam in (softmax_cases, gumbel_cases)
        for c in fam(shape, xp, found)
        if c.op in ("softmax", "logsumexp", "gumbel_softmax", "gumbel_softmax_backward", "categorical")
    ]
    for c in cases:
        c.family = "latency"
        c.op = f"{c.op} (latency)"
        c.impls = {name: _repeated(fn, LATENCY_CALLS) for name, fn in c.impls.items()}
        c.calls = LATENCY_CALLS
    return cases


def binary_cases(shape: tuple[int, int], xp: Any = np, found: dict | None = None) -> list[Case]:
    """The binary family: logistic noise, Bernoulli draws, the binary
    Concrete sample (soft and hard), the hard-concrete gate and its L0
    norm with their backward passes (PyTorch's through autograd of
    ``RelaxedBernoulli.rsample``), and in the same run Gumbel noise of the
    same size, the kernel the samplers are measured against
    (``bench/binary_targets.py``)."""
    found = peers() if found is None else found
    cases = []
    for op, name, extra in (
        ("gumbel noise", "gumbel", {}),
        ("logistic", "logistic", {}),
        ("bernoulli", "bernoulli", {}),
        ("gumbel_sigmoid", "gumbel_sigmoid", {}),
        ("gumbel_sigmoid hard", "gumbel_sigmoid", {"hard": True}),
        ("hard_concrete", "hard_concrete", {}),
        ("hard_concrete_l0", "hard_concrete_l0", {}),
        ("gumbel_sigmoid_backward", "gumbel_sigmoid_backward", {}),
        ("hard_concrete_backward", "hard_concrete_backward", {}),
        ("hard_concrete_l0_backward", "hard_concrete_l0_backward", {}),
    ):
        cases.append(_ours("binary", op, name, shape, xp, **extra)[0])
    by_op = {c.op: c.impls for c in cases}
    calls = {c.op: c.impls["gumbel_np"] for c in cases}
    (x,) = calls["gumbel_sigmoid"].arrays
    g_gs, y_gs = calls["gumbel_sigmoid_backward"].arrays
    g_hc, y_hc = calls["hard_concrete_backward"].arrays
    g_l0, x_l0 = calls["hard_concrete_l0_backward"].arrays
    lo, hi = DEFAULT_LIMITS  # the example calls keep the default limits
    shift = TAU * math.log(-lo / hi)  # hard_concrete_l0: sigmoid(x - tau log(-lo / hi))
    torch = found.get("torch")
    if torch is not None:
        from torch.distributions import RelaxedBernoulli

        tx = torch_of(torch, x)

        def relaxed(logits: Any) -> Any:
            return RelaxedBernoulli(TAU, logits=logits, validate_args=False).rsample()

        def torch_logistic():
            u = torch.rand(shape, device=tx.device)
            v = torch.log1p(-u)
            return u.log_().sub_(v)

        by_op["logistic"]["torch"] = torch_logistic
        by_op["bernoulli"]["torch"] = lambda: torch.bernoulli(torch.sigmoid(tx))
        by_op["gumbel_sigmoid"]["torch"] = lambda: relaxed(tx)
        by_op["gumbel_sigmoid hard"]["torch"] = lambda: (relaxed(tx) > 0.5).to(tx.dtype)
        by_op["hard_concrete"]["torch"] = lambda: relaxed(tx).mul_(hi - lo).add_(lo).clamp_(0, 1)
        by_op["hard_concrete_l0"]["torch"] = lambda: torch.sigmoid(tx - shift)
        # The backward passes: autograd on a retained graph (only the backward runs).
        a_gs, a_hc, a_l0 = (torch_of(torch, v).clone().requires_grad_(True) for v in (x, x, x_l0))
        t_gs = relaxed(a_gs)
        t_hc = (relaxed(a_hc) * (hi - lo) + lo).clamp(0, 1)
        t_l0 = torch.sigmoid(a_l0 - shift)
        tg_gs, tg_hc, tg_l0 = (torch_of(torch, v) for v in (g_gs, g_hc, g_l0))
        by_op["gumbel_sigmoid_backward"]["torch (autograd)"] = lambda: torch.autograd.grad(
            t_gs, a_gs, tg_gs, retain_graph=True
        )
        by_op["hard_concrete_backward"]["torch (autograd)"] = lambda: torch.autograd.grad(
            t_hc, a_hc, tg_hc, retain_graph=True
        )
        by_op["hard_concrete_l0_backward"]["torch (autograd)"] = lambda: torch.autograd.grad(
            t_l0, a_l0, tg_l0, retain_graph=True
        )
    if xp is not np:
        return cases
    # NumPy: each formula in place in preallocated float32 buffers (the
    # fastest plain NumPy, as _numpy_noise), but Bernoulli as it is usually
    # written, uniforms below expit(logits).
    npr = np.random.default_rng(1)
    u, t = np.empty(shape, np.float32), np.empty(shape, np.float32)
    m1, m2 = np.empty(shape, bool), np.empty(shape, bool)

    def numpy_logistic():
        npr.random(dtype=np.float32, out=u)
        with np.errstate(divide="ignore"):  # NumPy's u = 0 (one in 2**24) gives -inf
            np.negative(u, out=t)
            np.log1p(t, out=t)
            np.log(u, out=u)
        return np.subtract(u, t, out=u)

    def sigmoid_in_place(z: Any) -> Any:
        np.negative(z, out=z)
        with np.errstate(over="ignore"):  # exp overflows to inf: sigmoid 0
            np.exp(z, out=z)
        z += 1
        return np.reciprocal(z, out=z)

    def numpy_gumbel_sigmoid():
        z = numpy_logistic()
        z += x
        z /= TAU
        return sigmoid_in_place(z)

    def numpy_gumbel_sigmoid_hard():
        z = numpy_gumbel_sigmoid()
        return np.greater(z, 0.5, out=z)

    def numpy_hard_concrete():
        z = numpy_gumbel_sigmoid()
        z *= hi - lo
        z += lo
        return np.clip(z, 0, 1, out=z)

    def numpy_l0():
        np.subtract(x, shift, out=t)
        return sigmoid_in_place(t)

    def numpy_gs_backward():
        b = np.subtract(1, y_gs, out=t)
        b *= y_gs
        b *= g_gs
        b /= TAU
        return b

    def numpy_hc_backward():
        v = np.multiply(y_hc, hi - lo, out=t)
        v += lo
        inside = np.greater(v, 0, out=m1)
        inside &= np.less(v, 1, out=m2)
        b = np.subtract(1, y_hc, out=t)
        b *= y_hc
        b *= g_hc
        b *= (hi - lo) / TAU
        b *= inside
        return b

    def numpy_l0_backward():
        p = sigmoid_in_place(np.subtract(x_l0, shift, out=t))
        b = np.subtract(1, p, out=u)
        b *= p
        b *= g_l0
        return b

    by_op["logistic"]["numpy (in place)"] = numpy_logistic
    sp = found.get("scipy")
    if sp is not None:
        by_op["bernoulli"]["numpy (expit)"] = lambda: npr.random(shape, dtype=np.float32) < sp.expit(x)
    by_op["gumbel_sigmoid"]["numpy (in place)"] = numpy_gumbel_sigmoid
    by_op["gumbel_sigmoid hard"]["numpy (in place)"] = numpy_gumbel_sigmoid_hard
    by_op["hard_concrete"]["numpy (in place)"] = numpy_hard_concrete
    by_op["hard_concrete_l0"]["numpy (in place)"] = numpy_l0
    by_op["gumbel_sigmoid_backward"]["numpy (in place)"] = numpy_gs_backward
    by_op["hard_concrete_backward"]["numpy (in place)"] = numpy_hc_backward
    by_op["hard_concrete_l0_backward"]["numpy (in place)"] = numpy_l0_backward
    jax = found.get("jax")
    if jax is not None:
        jnp = jax.numpy
        jx = jnp.asarray(x)
        key = jax.random.PRNGKey(0)
        jlog = jax.jit(lambda k: jax.random.logistic(k, shape, jnp.float32))
        jber = jax.jit(lambda k, a: jax.random.bernoulli(k, jax.nn.sigmoid(a)))
        jgs = jax.jit(lambda k, a: jax.nn.sigmoid((a + jax.random.logistic(k, a.shape, a.dtype)) / TAU))
        by_op["logistic"]["jax (jit)"] = lambda: jlog(key).block_until_ready()
        by_op["bernoulli"]["jax (jit)"] = lambda: jber(key, jx).block_until_ready()
        by_op["gumbel_sigmoid"]["jax (jit)"] = lambda: jgs(key, jx).block_until_ready()
    return cases


def ranking_samples(k: int, samples: tuple[int, ...] = RANKING_SAMPLES) -> list[int]:
    """The samples per row of the top-k cases at row length ``k`` (each of
    ``samples`` at most ``k``, once)."""
    return list(dict.fromkeys(min(s, k) for s in samples))


def ranking_cases(shape: tuple[int, int], xp: Any = np, found: dict | None = None) -> list[Case]:
    """The ranking family: Gumbel-top-k sampling without replacement
    (``categorical(..., num_samples=k, replace=False)``, k of
    :data:`RANKING_SAMPLES`), the Plackett-Luce log-probability of a ranking
    of k of :data:`RANKING_PL_SAMPLES` and its backward pass, and in the same
    run the kernels they are measured against (``categorical``, one draw;
    ``logsumexp`` and its backward; ``bench/topk_targets.py``).

    Peers of the sampler: ``torch.multinomial(p, k, replacement=False)`` on
    the softmax probabilities (computed beforehand, so only the draw is
    timed), ``jax.random.categorical(..., replace=False)``, NumPy's Gumbel-top-k
    as a user writes it (``logits + Generator.gumbel``, ``argpartition``, then
    ``argsort`` of the k), and ``Generator.choice(K, k, replace=False, p=row)``
    in a row loop (on :data:`CHOICE_ROWS` rows at most, scaled to the batch).
    Peers of the log-probability: the textbook formula (each normaliser as the
    total less the mass chosen so far) in NumPy and PyTorch, whose backward
    is written out in NumPy and taken by autograd in PyTorch."""
    found = peers() if found is None else found
    rows, k = shape
    cases = [_ours("ranking", "categorical", "categorical", shape, xp)[0]]
    tops = {}
    for s in ranking_samples(k):
        tops[s] = _ours("ranking", f"categorical replace=False k={s}", "categorical", shape, xp,
                        num_samples=s, replace=False)[0]
    cases += tops.values()
    cases += [_ours("ranking", op, op, shape, xp)[0] for op in ("logsumexp", "logsumexp_backward")]
    pl, plb = {}, {}
    for s in ranking_samples(k, RANKING_PL_SAMPLES):
        pl[s] = _ours("ranking", f"plackett_luce_log_prob k={s}", "plackett_luce_log_prob", shape, xp, draws=s)[0]
        plb[s] = _ours("ranking", f"plackett_luce_log_prob_backward k={s}", "plackett_luce_log_prob_backward",
                       shape, xp, draws=s)[0]
    cases += [c for s in pl for c in (pl[s], plb[s])]
    (x,) = cases[0].impls["gumbel_np"].arrays
    index = {s: c.impls["gumbel_np"].arrays[1] for s, c in pl.items()}
    grad = {s: c.impls["gumbel_np"].arrays[0] for s, c in plb.items()}
    torch = found.get("torch")
    if torch is not None:
        tx = torch_of(torch, x)
        tp = torch.softmax(tx, -1)
        for s, c in tops.items():
            c.impls["torch.multinomial"] = functools.partial(torch.multinomial, tp, s, replacement=False)

        def torch_pl(t: Any, ti: Any) -> Any:
            e = torch.exp(t - t.max(-1, keepdim=True).values)
            c = torch.gather(e, -1, ti)
            rest = e.sum(-1, keepdim=True) - torch.cumsum(c, -1) + c
            return (torch.log(c) - torch.log(rest)).sum(-1)

        for s in pl:
            ti = torch_of(torch, index[s])
            a = tx.clone().requires_grad_(True)
            lp = torch_pl(a, ti)
            tg = torch_of(torch, grad[s])
            pl[s].impls["torch"] = functools.partial(torch_pl, tx, ti)
            plb[s].impls["torch (autograd)"] = functools.partial(torch.autograd.grad, lp, a, tg, retain_graph=True)
    if xp is not np:
        return cases
    npr = np.random.default_rng(1)

    def numpy_topk(s: int) -> Callable[[], Any]:
        def top():
            z = x + npr.gumbel(size=x.shape)
            part = np.argpartition(z, k - s, axis=-1)[:, k - s :]
            return np.take_along_axis(part, np.argsort(-np.take_along_axis(z, part, -1), axis=-1), -1)

        return top

    sub = max(1, min(rows, CHOICE_ROWS, CHOICE_ELEMENTS // k))
    p = np.exp(x[:sub].astype(np.float64) - x[:sub].max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)

    def numpy_choice(s: int) -> Callable[[], Any]:
        def loop():
            return [npr.choice(k, s, replace=False, p=row) for row in p]

        return loop

    choice = "numpy (Generator.choice row loop, scaled)"
    for s, c in tops.items():
        c.impls["numpy (argpartition)"] = numpy_topk(s)
        c.impls[choice] = numpy_choice(s)
        c.scale[choice] = rows / sub

    def numpy_parts(idx: Any) -> tuple[Any, Any, Any]:
        e = np.exp(x - x.max(-1, keepdims=True))
        c = np.take_along_axis(e, idx, -1)
        rest = e.sum(-1, keepdims=True) - np.cumsum(c, -1) + c
        return e, c, rest

    def numpy_pl(idx: Any) -> Callable[[], Any]:
        def log_prob():
            _, c, rest = numpy_parts(idx)
            return (np.log(c) - np.log(rest)).sum(-1)

        return log_prob

    def numpy_pl_backward(g: Any, idx: Any) -> Callable[[], Any]:
        def backward():
            # d/dx_j: [j chosen at q] - sum over the steps p that j is left at of e_j / rest_p.
            e, c, rest = numpy_parts(idx)
            acc = np.cumsum(1 / rest, -1)
            out = e * (-g[:, None] * acc[:, -1:])
            np.put_along_axis(out, idx, g[:, None] * (1 - c * acc), -1)
            return out

        return backward

    for s in pl:
        pl[s].impls["numpy"] = numpy_pl(index[s])
        plb[s].impls["numpy"] = numpy_pl_backward(grad[s], index[s])
    jax = found.get("jax")
    if jax is not None and "replace" in inspect.signature(jax.random.categorical).parameters:
        jx = jax.numpy.asarray(x)
        key = jax.random.PRNGKey(0)

        def jax_topk(s: int) -> Callable[[], Any]:
            # Samples first: the result is (s, rows).
            f = jax.jit(functools.partial(jax.random.categorical, axis=-1, shape=(s, rows), replace=False))
            return lambda: f(key, jx).block_until_ready()

        for s, c in tops.items():
            c.impls["jax.random.categorical"] = jax_topk(s)
    return cases


FAMILIES: dict[str, Callable[..., list[Case]]] = {
    "softmax": softmax_cases,
    "gumbel": gumbel_cases,
    "estimators": estimator_cases,
    "latency": latency_cases,
    "binary": binary_cases,
    "ranking": ranking_cases,
}


def family_sizes(family: str, sizes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The sizes ``family`` runs at in a run at ``sizes``: its own for the
    families that have them (``latency`` always; ``binary`` and ``ranking``
    in the standard runs, while sizes given by hand are taken as they are)."""
    if family == "latency":
        return LATENCY_SIZES
    if family == "ranking":
        own = {tuple(FULL_SIZES): RANKING_SIZES, tuple(QUICK_SIZES): RANKING_QUICK_SIZES}
        return own.get(tuple(sizes), sizes)
    if family == "binary":
        own = {
            tuple(FULL_SIZES): BINARY_SIZES,
            tuple(QUICK_SIZES): BINARY_QUICK_SIZES,
            tuple(GPU_SIZES): BINARY_GPU_SIZES,
            tuple(GPU_QUICK_SIZES): BINARY_SIZES,
        }
        return own.get(tuple(sizes), sizes)
    return sizes


def measure(case: Case, backend: str = "cpu", xp: Any = np, repeat: int = 20) -> list[Row]:
    """Time every implementation of a case and the copy floor (``repeat``:
    timed repetitions of each on the GPU)."""
    if backend == "cuda":
        times = {name: gpu_time(fn, repeat) * case.scale.get(name, 1.0) for name, fn in case.impls.items()}
        floor = gpu_time(_copy_fn(xp, case.nbytes), repeat)
    else:
        copy = _copy_fn(xp, case.nbytes)
        if case.calls > 1:  # each sample is a loop of calls already: a fixed number of rounds
            times = interleaved_medians({**case.impls, COPY: _repeated(copy, case.calls)}, min_time=0.0)
        else:
            times = interleaved_medians({**case.impls, COPY: copy})
        times = {name: t / case.calls * case.scale.get(name, 1.0) for name, t in times.items()}
        floor = times.pop(COPY)
    ours = times["gumbel_np"]
    size = "x".join(map(str, case.shape))
    rows = [
        Row(case.op, size, backend, name, t * 1e3, case.nbytes / t / 1e9, t / ours, t / floor)
        for name, t in times.items()
    ]
    rows.append(Row(case.op, size, backend, COPY, floor * 1e3, case.nbytes / floor / 1e9, floor / ours, 1.0))
    return rows


def plan(families: list[str], sizes: list[tuple[int, int]]) -> list[tuple[str, tuple[int, int]]]:
    """(family, size) pairs to run; the ranking, latency and binary families
    run at their own sizes (:func:`family_sizes`), after the others."""
    own = ("ranking", "latency", "binary")
    pairs = [(fam, shape) for shape in sizes for fam in families if fam not in own]
    for fam in own:
        if fam in families:
            pairs += [(fam, shape) for shape in family_sizes(fam, sizes)]
    return pairs


def run(
    families: list[str],
    sizes: list[tuple[int, int]],
    backend: str = "cpu",
    progress: Callable[[str], None] | None = None,
) -> list[Row]:
    """Build and measure the cases of ``families`` at ``sizes`` on one backend."""
    xp = np
    if backend == "cuda":
        import cupy as xp  # noqa: F811
    found = peers() if backend == "cpu" else gpu_peers()
    rows: list[Row] = []
    with np.errstate(divide="ignore"):
        for fam, shape in plan(families, sizes):
            for case in FAMILIES[fam](shape, xp, found):
                rows.extend(measure(case, backend, xp))
            if progress is not None:
                progress(f"{fam} {shape[0]}x{shape[1]} ({backend})")
    return rows


def table(rows: list[Row]) -> str:
    """A Markdown table of the rows."""
    head = (
        "| op | size | backend | implementation | median ms | GB/s | time / gumbel_np | time / copy |\n"
        "|---|---|---|---|---:|---:|---:|---:|\n"
    )
    return head + "".join(
        f"| {r.op} | {r.size} | {r.backend} | {r.impl} | {r.ms:.4g} | {r.gbps:.2f} | {r.vs_ours:.2f} | {r.vs_copy:.2f} |\n"
        for r in rows
    )


def plot(rows: list[Row], path: str) -> None:
    """Throughput against K per implementation, one panel per operation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ops = list(dict.fromkeys(r.op for r in rows))
    ncol = min(4, len(ops))
    nrow = (len(ops) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 3 * nrow), squeeze=False)
    for ax, op in zip(axes.ravel(), ops):
        sel = [r for r in rows if r.op == op]
        for label in dict.fromkeys(f"{r.impl} ({r.backend})" for r in sel):
            pts = sorted(
                (int(r.size.split("x")[1]), r.gbps) for r in sel if f"{r.impl} ({r.backend})" == label
            )
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(op, fontsize=9)
        ax.set_xlabel("K (row length)")
        ax.set_ylabel("GB/s")
        ax.legend(fontsize=6)
    for ax in axes.ravel()[len(ops) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
