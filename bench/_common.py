"""Shared benchmark machinery: timing, the memory-copy floor, peers, tables.

Every figure is the median of repeated calls after a warm-up (which also
compiles the Numba kernels), on inputs made once per size.  Every library
runs with the same thread count.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

SIZES = [(4096, 1024), (65536, 128), (256, 50257), (1_000_000, 10)]
QUICK_SIZES = [(1024, 1024), (16384, 128), (64, 50257), (200_000, 10)]


@dataclass
class Row:
    op: str
    size: str
    impl: str
    ms: float
    gbps: float
    vs_ours: float  # this implementation's time over gumbel_np's (>1: gumbel_np faster)
    vs_copy: float  # this implementation's time over the copy floor


def median_time(fn, repeat=7, warmup=2, min_time=0.2):
    """Median wall time of ``fn()`` in seconds (at least ``repeat`` calls)."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < repeat or (time.perf_counter() - start < min_time and len(times) < 50):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def copy_floor(nbytes):
    """Median time of a plain memory copy that reads and writes ``nbytes`` in all."""
    n = max(1, nbytes // 8)  # a copy of n float32 reads 4n and writes 4n bytes
    src = np.random.default_rng(0).random(n, dtype=np.float32)
    dst = np.empty_like(src)
    return median_time(lambda: np.copyto(dst, src))


def set_threads(n):
    import numba

    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    torch = optional("torch")
    if torch is not None:
        torch.set_num_threads(n)


def optional(name):
    try:
        return __import__(name)
    except ImportError:
        return None


def jax_module():
    """JAX on the CPU with float32 defaults, or None."""
    jax = optional("jax")
    if jax is None:
        return None
    jax.config.update("jax_platforms", "cpu")
    return jax


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    p.add_argument("--threads", type=int, default=2, help="threads for every library (default 2)")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    p.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown")
    return p


def size_label(shape):
    return "x".join(str(s) for s in shape)


def measure(op, shape, nbytes, impls, floor=None, rows=None):
    """Time every implementation of one operation at one size.

    ``impls`` maps a name to a zero-argument callable; the first is gumbel_np.
    """
    rows = [] if rows is None else rows
    floor = copy_floor(nbytes) if floor is None else floor
    times = {name: median_time(fn) for name, fn in impls.items()}
    ours = next(iter(times.values()))
    for name, t in times.items():
        rows.append(Row(op, size_label(shape), name, t * 1e3, nbytes / t / 1e9, t / ours, t / floor))
    rows.append(Row(op, size_label(shape), "memory copy", floor * 1e3, nbytes / floor / 1e9, floor / ours, 1.0))
    return rows


def table(rows):
    head = "| op | size | implementation | median ms | GB/s | time / gumbel_np | time / copy |\n|---|---|---|---:|---:|---:|---:|\n"
    body = "".join(
        f"| {r.op} | {r.size} | {r.impl} | {r.ms:.3f} | {r.gbps:.1f} | {r.vs_ours:.2f} | {r.vs_copy:.2f} |\n" for r in rows
    )
    return head + body


def finish(args, rows, title):
    text = f"### {title}\n\n" + table(rows)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump([asdict(r) for r in rows], f, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)


def machine():
    import platform

    import numba

    return f"{platform.processor() or platform.machine()}, {numba.get_num_threads()} Numba threads, Python {sys.version.split()[0]}"
