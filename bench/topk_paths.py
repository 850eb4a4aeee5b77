"""Where ``categorical_topk_fwd`` should switch from the sorted buffer to the partition.

``kernels/ranking.py`` picks, for rows of ``SHORT_ROW`` or more categories,
``_topk_buffer`` (one scan keeping the ``s`` best in a sorted buffer) up to
``s = SMALL_TOP`` samples per row and ``_topk_partition`` (``np.partition``
for the ``s``-th value, then a stable sort of the ``s`` candidates) above.
This script times both paths on the same rows, one thread, float32, for each
``s`` and ``K``: each path is called over the batch in the blocks the row
driver uses (about ``BLOCK_ELEMENTS`` elements, at least one row), from a
compiled loop, so no Python call is timed.  The two paths are timed in
interleaved pairs after a warm-up (which compiles them); the table gives the
median time per row of each and the median of the ratios taken within the
pairs, then the crossover: the smallest ``s`` from which the partition is
faster at every larger ``s`` measured.  Both paths' samples are checked to be
identical before timing.

The logits are ``3 * N(0, 1)``, as the benchmark cases (``gumbel_np._cases``),
in random order.  The buffer's cost depends on the order: a candidate enters
only when it beats the current ``s``-th, about ``s log(K / s)`` times per row
in random order; ``--order ascending`` sorts every row of logits increasingly
(the worst order, most candidates enter), to see how far the crossover moves.

    python bench/topk_paths.py [--order random|ascending] [--pairs 11]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numba
import numpy as np

from gumbel_np.kernels import ranking
from gumbel_np.kernels._jit import BLOCK_ELEMENTS, JIT_OPTIONS

SAMPLES = (1, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 512, 1024)
"""Samples per row (those up to K)."""
ROW_LENGTHS = (128, 1024, 50257)
ELEMENTS = 1 << 21
"""Elements per timed call (rows = ELEMENTS // K, at least 8)."""
MIN_TIME = 0.02
"""Seconds of calls per sample (at least one call)."""


def _driver(part):
    """A compiled loop calling ``part`` over the rows in blocks of
    ``rows_per_block`` (as the row kernels' serial driver does)."""

    @numba.njit(**JIT_OPTIONS)
    def run(rows, rows_per_block, x, out, k, s, k0, k1, row_ids):
        for r0 in range(0, rows, rows_per_block):
            part(r0, min(r0 + rows_per_block, rows), x, out, k, s, k0, k1, row_ids)

    return run


BUFFER = _driver(ranking._topk_buffer)
PARTITION = _driver(ranking._topk_partition)


def _timed(f, n):
    t = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - t) / n


def measure(k, s, order, pairs):
    """(buffer s/row, partition s/row, median and quartiles of buffer / partition)."""
    rows = max(8, ELEMENTS // k)
    rng = np.random.default_rng(k)
    x = (3 * rng.standard_normal((rows, k))).astype(np.float32)
    if order == "ascending":
        x.sort(axis=1)
    x = x.ravel()
    rpb = max(1, BLOCK_ELEMENTS // k)
    keys = (np.uint64(0x9E3779B97F4A7C15), np.uint64(7))
    none = np.empty(0, np.int64)
    ob = np.empty(rows * s, np.int64)
    op = np.empty(rows * s, np.int64)

    def buffer():
        BUFFER(rows, rpb, x, ob, k, s, *keys, none)

    def partition():
        PARTITION(rows, rpb, x, op, k, s, *keys, none)

    buffer(), partition()
    if not np.array_equal(ob, op):
        raise SystemExit(f"topk_paths: the paths disagree at K={k}, s={s}")
    n = max(1, int(MIN_TIME / max(_timed(buffer, 1), _timed(partition, 1), 1e-6)))
    tb, tp, r = [], [], []
    for _ in range(pairs):
        b, p = _timed(buffer, n), _timed(partition, n)
        tb.append(b)
        tp.append(p)
        r.append(b / p)
    q = statistics.quantiles(r, n=4)
    return statistics.median(tb) / rows, statistics.median(tp) / rows, (statistics.median(r), q[0], q[2])


def crossover(ratios):
    """The smallest s from which the partition is faster (ratio > 1) at every
    larger s measured, or None."""
    best = None
    for s, r in reversed(ratios):
        if r <= 1:
            break
        best = s
    return best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--order", choices=("random", "ascending"), default="random", help="order of each row's logits")
    p.add_argument("--pairs", type=int, default=11, help="interleaved pairs per point (default 11)")
    args = p.parse_args(argv)
    numba.set_num_threads(1)
    print(
        f"float32, 1 thread, logits 3 N(0, 1) in {args.order} order; SMALL_TOP = {ranking.SMALL_TOP}; "
        f"median over {args.pairs} interleaved pairs (quartiles)\n"
    )
    print("| K | s | buffer, us/row | partition, us/row | buffer / partition |\n|---:|---:|---:|---:|---|")
    found = {}
    for k in ROW_LENGTHS:
        ratios = []
        for s in SAMPLES:
            if s > k:
                continue
            tb, tp, (med, lo, hi) = measure(k, s, args.order, args.pairs)
            ratios.append((s, med))
            print(f"| {k} | {s} | {tb * 1e6:.3f} | {tp * 1e6:.3f} | {med:.2f} ({lo:.2f}-{hi:.2f}) |", flush=True)
        found[k] = crossover(ratios)
    print()
    for k, s in found.items():
        where = f"s >= {s}" if s is not None else "never (the buffer is faster at every s measured)"
        print(f"K = {k}: the partition is faster from {where}")


if __name__ == "__main__":
    main()
