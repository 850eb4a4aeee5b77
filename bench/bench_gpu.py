"""GPU benchmark: every CUDA backend function against the hardware floor and PyTorch.

For each float32 shape (default: 65536x1024, 16384x32000, 4000000x16) and
each entry point of ``gumbel_np.kernels.cuda``, prints the median kernel time
measured with ``cupyx.profiler.benchmark`` (CUDA events, after warm-up), the
bytes the operation must move divided by that time, the fraction of the
bandwidth of a device-to-device copy moving the same number of bytes (timed
in the same run), and, when PyTorch with CUDA is installed, PyTorch's time for
the same operation and the ratio ``torch time / our time`` (above 1: faster
than PyTorch).

PyTorch peers: ``torch.logsumexp``, ``torch.softmax``, ``torch.log_softmax``,
their autograd backward (``torch.autograd.grad`` on a retained graph, so only
the backward runs), ``-log(Exponential(1))`` noise as inside
``F.gumbel_softmax``, ``F.gumbel_softmax`` (soft and hard) and its backward,
and ``torch.multinomial`` on precomputed probabilities for the categorical
sampler.

Usage::

    python bench/bench_gpu.py [--shapes 65536x1024,4000000x16] [--ops softmax_fwd,...]
                              [--repeat 20] [--no-torch]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_SHAPES = ((65536, 1024), (16384, 32000), (4000000, 16))
KEY = (0x2545F491, 0x4F6CDD1D)


@dataclass
class Case:
    """One benchmarked operation on one shape."""

    op: str
    ours: Callable[[], Any]
    nbytes: int
    torch: Callable[[], Any] | None = None


def _gpu_ms(benchmark: Callable[..., Any], fn: Callable[[], Any], repeat: int) -> float:
    res = benchmark(fn, n_repeat=repeat, n_warmup=3)
    return float(np.median(res.gpu_times[0])) * 1e3


def _import_gpu() -> tuple[Any, Any]:
    """CuPy and ``cupyx.profiler.benchmark``, or exit with the reason."""
    try:
        import cupy
        from cupyx.profiler import benchmark
    except ImportError:
        sys.exit(
            "bench_gpu: CuPy is not installed (pip install cupy-cuda12x or cupy-cuda13x); "
            "nothing to time"
        )
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except (RuntimeError, OSError) as exc:  # CUDARuntimeError, or no driver library
        sys.exit(f"bench_gpu: CuPy is installed but no CUDA device is usable ({exc})")
    if count < 1:
        sys.exit("bench_gpu: CuPy is installed but no CUDA device is usable")
    return cupy, benchmark


def _import_torch(cupy: Any, wanted: bool) -> Any:
    if not wanted:
        return None
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: no PyTorch column")
        return None
    if not torch.cuda.is_available():
        print("PyTorch has no CUDA support here: no PyTorch column")
        return None
    return torch


def _cases(cupy: Any, torch: Any, rows: int, k: int) -> list[Case]:
    from gumbel_np.kernels import cuda as backend

    f32 = np.float32
    n = rows * k
    item = np.dtype(f32).itemsize
    rng = cupy.random.default_rng(0)
    x = rng.standard_normal((rows, k), dtype=f32)
    g = rng.standard_normal((rows, k), dtype=f32)
    g_rows = rng.standard_normal((rows,), dtype=f32)
    out = cupy.empty((rows, k), f32)
    out2 = cupy.empty((rows, k), f32)
    out_rows = cupy.empty((rows,), f32)
    y = cupy.empty((rows, k), f32)
    backend.softmax_fwd(x, y)
    ly = cupy.empty((rows, k), f32)
    backend.log_softmax_fwd(x, ly)
    tau = cupy.ones((1,), f32)
    dtau = cupy.empty((rows,), f32)
    samples = cupy.empty((rows, 1), np.int64)

    cases = [
        Case("logsumexp_fwd", lambda: backend.logsumexp_fwd(x, out_rows), item * (n + rows)),
        Case("softmax_fwd", lambda: backend.softmax_fwd(x, out), item * 2 * n),
        Case("log_softmax_fwd", lambda: backend.log_softmax_fwd(x, out), item * 2 * n),
        Case("logsumexp_bwd", lambda: backend.logsumexp_bwd(g_rows, x, out), item * (2 * n + rows)),
        Case("softmax_bwd", lambda: backend.softmax_bwd(g, y, out), item * 3 * n),
        Case("log_softmax_bwd", lambda: backend.log_softmax_bwd(g, ly, out), item * 3 * n),
        Case("gumbel_fwd", lambda: backend.gumbel_fwd(out, KEY), item * n),
        Case(
            "gumbel_softmax_fwd",
            lambda: backend.gumbel_softmax_fwd(x, out, KEY, None, tau, None, None, False),
            item * 2 * n,
        ),
        Case(
            "gumbel_softmax_fwd hard",
            lambda: backend.gumbel_softmax_fwd(x, out, KEY, None, tau, None, out2, True),
            item * 3 * n,
        ),
        Case(
            "gumbel_softmax_bwd",
            lambda: backend.gumbel_softmax_bwd(g, y, tau, out, dtau),
            item * (3 * n + rows),
        ),
        Case(
            "categorical_fwd",
            lambda: backend.categorical_fwd(x, samples, KEY, None),
            item * n + 8 * rows,
        ),
    ]
    if torch is not None:
        _add_torch(torch, cases, x, g, g_rows)
    return cases


def _add_torch(torch: Any, cases: list[Case], x: Any, g: Any, g_rows: Any) -> None:
    import torch.nn.functional as F

    tx = torch.from_dlpack(x)
    tg = torch.from_dlpack(g)
    tg_rows = torch.from_dlpack(g_rows)

    def grad_of(forward: Callable[[Any], Any], grad: Any) -> Callable[[], Any]:
        leaf = tx.detach().clone().requires_grad_(True)
        result = forward(leaf)
        return lambda: torch.autograd.grad(result, leaf, grad, retain_graph=True)

    probs = torch.softmax(tx, -1)
    peers = {
        "logsumexp_fwd": lambda: torch.logsumexp(tx, -1),
        "softmax_fwd": lambda: torch.softmax(tx, -1),
        "log_softmax_fwd": lambda: torch.log_softmax(tx, -1),
        "logsumexp_bwd": grad_of(lambda t: torch.logsumexp(t, -1), tg_rows),
        "softmax_bwd": grad_of(lambda t: torch.softmax(t, -1), tg),
        "log_softmax_bwd": grad_of(lambda t: torch.log_softmax(t, -1), tg),
        "gumbel_fwd": lambda: -torch.empty_like(tx).exponential_().log(),
        "gumbel_softmax_fwd": lambda: F.gumbel_softmax(tx, tau=1.0, hard=False),
        "gumbel_softmax_fwd hard": lambda: F.gumbel_softmax(tx, tau=1.0, hard=True),
        "gumbel_softmax_bwd": grad_of(lambda t: F.gumbel_softmax(t, tau=1.0, hard=False), tg),
        "categorical_fwd": lambda: torch.multinomial(probs, 1, replacement=True),
    }
    for case in cases:
        case.torch = peers.get(case.op)


def _copy_ms(cupy: Any, benchmark: Any, nbytes: int, repeat: int, cache: dict[int, float]) -> float:
    """Time of a device-to-device copy moving ``nbytes`` (reading and writing half each)."""
    half = max(nbytes // 2, 1)
    if half not in cache:
        src = cupy.empty(half, np.uint8)
        dst = cupy.empty(half, np.uint8)
        src.fill(1)
        cache[half] = _gpu_ms(
            benchmark, lambda: dst.data.copy_from_device_async(src.data, half), repeat
        )
        del src, dst
    return cache[half]


def _parse_shapes(text: str | None) -> list[tuple[int, int]]:
    if not text:
        return list(DEFAULT_SHAPES)
    shapes = []
    for part in text.split(","):
        rows, k = part.lower().split("x")
        shapes.append((int(rows), int(k)))
    return shapes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", help="comma-separated ROWSxK list (float32)")
    parser.add_argument("--ops", help="comma-separated operation names (default: all)")
    parser.add_argument("--repeat", type=int, default=20, help="timed repetitions per case")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch column")
    args = parser.parse_args(argv)

    cupy, benchmark = _import_gpu()
    torch = _import_torch(cupy, not args.no_torch)
    wanted = set(args.ops.split(",")) if args.ops else None
    dev = cupy.cuda.Device()
    props = cupy.cuda.runtime.getDeviceProperties(dev.id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    print(
        f"device {dev.id}: {name}, CuPy {cupy.__version__}"
        + (f", PyTorch {torch.__version__}" if torch else "")
    )

    header = (
        f"{'operation':<24} {'shape':>14} {'ms':>9} {'GB/s':>8} {'x copy':>7}"
        f" {'torch ms':>9} {'torch/ours':>10}"
    )
    print(header)
    print("-" * len(header))
    copies: dict[int, float] = {}
    for rows, k in _parse_shapes(args.shapes):
        cases = _cases(cupy, torch, rows, k)
        for case in cases:
            if wanted is not None and case.op not in wanted:
                continue
            ours = _gpu_ms(benchmark, case.ours, args.repeat)
            copy = _copy_ms(cupy, benchmark, case.nbytes, args.repeat, copies)
            gbs = case.nbytes / ours / 1e6
            frac = copy / ours
            line = f"{case.op:<24} {f'{rows}x{k}':>14} {ours:9.3f} {gbs:8.0f} {frac:7.2f}"
            if case.torch is not None:
                theirs = _gpu_ms(benchmark, case.torch, args.repeat)
                line += f" {theirs:9.3f} {theirs / ours:10.2f}"
            print(line, flush=True)
        del cases
        cupy.get_default_memory_pool().free_all_blocks()
        if torch is not None:
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
