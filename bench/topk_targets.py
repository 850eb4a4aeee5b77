"""The ranking family's speed targets, as ratios measured in interleaved pairs.

The machinery of ``estimator_targets.py`` (each sample times a few calls of
one implementation and then as many of the other, the ratio is taken within
the pair; median and quartiles over 15 pairs), on the cases of
``gumbel_np._bench.ranking_cases`` (the benchmark's own inputs and peers),
float32, 2 threads for every library, at the family's sizes
(``_bench.RANKING_SIZES``: 4096x1024, 256x50257 and 1000000x10), for
``k`` = 1, 8 and 64 samples per row (1, 8 and 10 at K = 10):

* ``categorical(..., num_samples=k, replace=False)`` over ``categorical``
  (one draw, the same logits): target at most 1.5 for k <= 8;
* ``torch.multinomial(p, k, replacement=False)`` over gumbel_np: target at
  least 10 (``p``, the softmax probabilities as a tensor, is made beforehand:
  only the draw is timed, with PyTorch's thread count equal to ours);
* NumPy's Gumbel-top-k as a user writes it (``logits +
  Generator.gumbel(size=...)``, float64, then ``argpartition`` and an
  ``argsort`` of the k) over gumbel_np: target at least 5;
* ``jax.random.categorical(key, logits, shape=(k, rows), replace=False)``
  (jitted; only when JAX is installed) and ``Generator.choice(K, k,
  replace=False, p=row)`` in a Python row loop over gumbel_np, for
  information.  The row loop runs on the first ``min(rows, 256, 65536 //
  K)`` rows only (``_bench.CHOICE_ROWS``, ``CHOICE_ELEMENTS``), and its
  ratio is scaled by rows / rows timed, i.e. per-row cost times the batch;
* gumbel_np over a memory copy of the logits' bytes (read once, written
  once), the hardware floor, for information;
* ``plackett_luce_log_prob`` of rankings of k = 1 and 8 over ``logsumexp``:
  target at most 2; its backward over ``logsumexp_backward``, for
  information.

The columns ``a ms`` and ``b ms`` are the medians of the two sides of the
pairs (per call; the row loop's scaled to the batch).

    python bench/topk_targets.py [--readme] [--quick]

``--readme`` also writes the table into the README (between ``<!--
topk-targets:start -->`` and ``<!-- topk-targets:end -->``); ``--quick``
runs at the quick run's sizes (``_bench.RANKING_QUICK_SIZES``; a smoke
run, no ``--readme``).
"""

from __future__ import annotations

import argparse
import pathlib
import re
import statistics
import time

import numpy as np
from estimator_targets import MIN_TIME, PAIRS

from gumbel_np import _bench

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
CHOICE = "numpy (Generator.choice row loop, scaled)"
PEERS = {
    "torch.multinomial": ">= 10",
    "numpy (argpartition)": ">= 5",
    "jax.random.categorical": "-",
    CHOICE: "-",
}


def _timed(f, n):
    t = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - t) / n


def paired(a, b):
    """Median and quartiles of ``time(a) / time(b)`` over interleaved pairs,
    and the median times of ``a`` and ``b`` in seconds."""
    a(), b()
    n = max(1, int(MIN_TIME / max(_timed(a, 1), 1e-6)))
    ta, tb = [], []
    for _ in range(PAIRS):
        ta.append(_timed(a, n))
        tb.append(_timed(b, n))
    r = [x / y for x, y in zip(ta, tb)]
    q = statistics.quantiles(r, n=4)
    return statistics.median(r), q[0], q[2], statistics.median(ta), statistics.median(tb)


def met(value: float, target: str) -> str:
    if target == "-":
        return "-"
    bound = float(target.split()[1])
    return "yes" if (value <= bound if target.startswith("<=") else value >= bound) else "no"


def pairs_of(shape, found):
    """(name, a, b, scale of a, target) of every ratio at ``shape``."""
    cases = {c.op: c for c in _bench.ranking_cases(shape, found=found)}
    cat = cases["categorical"].impls["gumbel_np"]
    (x,) = cat.arrays
    copy = _bench._copy_fn(np, 2 * x.nbytes)
    pairs = []
    for s in _bench.ranking_samples(shape[1]):
        c = cases[f"categorical replace=False k={s}"]
        ours = c.impls["gumbel_np"]
        pairs.append((f"top-k k={s} / categorical", ours, cat, 1.0, "<= 1.5" if s <= 8 else "-"))
        for peer, target in PEERS.items():
            if peer in c.impls:
                pairs.append((f"{peer} / top-k k={s}", c.impls[peer], ours, c.scale.get(peer, 1.0), target))
        pairs.append((f"top-k k={s} / copy of the logits", ours, copy, 1.0, "-"))
    pairs.append(("categorical / copy of the logits", cat, copy, 1.0, "-"))
    lse = cases["logsumexp"].impls["gumbel_np"]
    lse_b = cases["logsumexp_backward"].impls["gumbel_np"]
    for s in _bench.ranking_samples(shape[1], _bench.RANKING_PL_SAMPLES):
        pl = cases[f"plackett_luce_log_prob k={s}"].impls["gumbel_np"]
        plb = cases[f"plackett_luce_log_prob_backward k={s}"].impls["gumbel_np"]
        pairs.append((f"plackett_luce_log_prob k={s} / logsumexp", pl, lse, 1.0, "<= 2"))
        pairs.append((f"plackett_luce_log_prob_backward k={s} / logsumexp_backward", plb, lse_b, 1.0, "-"))
    return pairs


def table_lines(shape, pairs):
    """The table rows of ``pairs``, each ``(name, a, b, target)`` or ``(name,
    a, b, scale of a, target)``, timed by :func:`paired` (each printed as it
    is measured)."""
    lines = []
    size = f"{shape[0]}x{shape[1]}"
    with np.errstate(divide="ignore"):
        for pair in pairs:
            name, a, b, *scale, target = pair
            scale = scale[0] if scale else 1.0
            med, lo, hi, ta, tb = paired(a, b)
            med, lo, hi, ta = med * scale, lo * scale, hi * scale, ta * scale
            lines.append(
                f"| {size} | {name} | {ta * 1e3:.3g} | {tb * 1e3:.3g} | {med:.2f} ({lo:.2f}-{hi:.2f}) | "
                f"{target} | {met(med, target)} |"
            )
            print(lines[-1], flush=True)
    return lines


def torch_or_none(threads):
    """PyTorch at ``threads`` threads, or None where it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def targets_main(argv, doc, block, sizes, quick_sizes, rows_of, setup=lambda threads: None, note=""):
    """The command line of a targets script: its table at ``sizes`` (or
    ``quick_sizes`` with ``--quick``), printed and with ``--readme`` written
    into the README between ``<!-- block:start -->`` and ``<!-- block:end
    -->``.  ``setup(threads)`` returns what ``rows_of(shape, found)`` takes
    as ``found``; ``note`` ends the header line."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--readme", action="store_true", help="also write the table into the README")
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke run; no --readme)")
    args = p.parse_args(argv)
    if args.quick and args.readme:
        p.error("--readme takes the full sizes")
    threads = _bench.set_threads(2)
    found = setup(threads)
    head = [
        f"float32, {threads} threads for every library, {note}median ratio a / b over {PAIRS} interleaved "
        "pairs (quartiles); a ms, b ms: medians per call",
        "",
        "| size | ratio a / b | a ms | b ms | median (quartiles) | target | met |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    print("\n".join(head), flush=True)
    lines = list(head)
    for shape in quick_sizes if args.quick else sizes:
        lines += rows_of(shape, found)
    if args.readme:
        write_readme(block, "\n".join(lines))


def write_readme(block, text):
    """Put ``text`` into the README between ``<!-- block:start -->`` and
    ``<!-- block:end -->`` (which must be there)."""
    start, end = f"<!-- {block}:start -->", f"<!-- {block}:end -->"
    text = start + "\n" + text + "\n" + end
    readme = README.read_text()
    if start not in readme or end not in readme:
        raise SystemExit(f"{block}: the README has no {start} ... {end} block")
    README.write_text(re.sub(re.escape(start) + ".*?" + re.escape(end), lambda m: text, readme, flags=re.S))


def main(argv=None):
    targets_main(
        argv, __doc__, "topk-targets", _bench.RANKING_SIZES, _bench.RANKING_QUICK_SIZES,
        lambda shape, found: table_lines(shape, pairs_of(shape, found)), setup=lambda threads: _bench.peers(),
    )


if __name__ == "__main__":
    main()
