"""The estimators' speed targets, as ratios measured in interleaved pairs.

The machine's speed drifts (a shared virtual machine: the same call varies by
2x within seconds), so a ratio between two medians taken at different times
(the table of ``python -m gumbel_np bench``) can be off by that much.  Here
each sample times a few calls of one implementation and then of the other,
and the ratio is taken within the pair; the median over 15 pairs and its
quartiles are printed, for the four standard float32 sizes, 2 threads, the
cases of ``gumbel_np._bench.estimator_cases`` (the benchmark's own inputs and
peers):

* ``reinforce`` (``out=``, S = 1 and 4) over ``softmax`` (``out=``): target
  at most 1.5;
* ``categorical_log_prob`` over ``logsumexp``: target at most 1.3;
* NumPy's and PyTorch's (``Categorical.log_prob`` and autograd) ``reinforce``
  over gumbel_np's: targets at least 5 and 3 for K >= 128.  Against NumPy
  also with ``out=``: on this virtual machine a page fault costs about 5 us,
  so an allocating call of 16 MB that follows NumPy's (which frees its
  temporaries back to the system) faults its result in for about 20 ms,
  five times its own run time; the ``out=`` row shows the kernels without
  that cost.

    python bench/estimator_targets.py [--readme]

``--readme`` also writes the table into the README (between ``<!--
targets:start -->`` and ``<!-- targets:end -->``).
"""

from __future__ import annotations

import argparse
import pathlib
import re
import statistics
import time

from gumbel_np import _bench

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
PAIRS = 15
MIN_TIME = 0.05
"""Seconds of calls per sample (at least one call)."""


def _timed(f, n):
    t = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - t) / n


def ratio(a, b):
    """Median and quartiles of ``time(a) / time(b)`` over interleaved pairs."""
    a(), b()
    n = max(1, int(MIN_TIME / max(_timed(a, 1), 1e-6)))
    r = []
    for _ in range(PAIRS):
        r.append(_timed(a, n) / _timed(b, n))
    q = statistics.quantiles(r, n=4)
    return statistics.median(r), q[0], q[2]


def rows_of(shape, found):
    cases = {c.op: c.impls for c in _bench.estimator_cases(shape, found=found)}
    out = _bench.OUT
    k = shape[1]
    pairs = [
        ("reinforce S=1 (out=) / softmax (out=)", cases["reinforce S=1"][out], cases["softmax"][out], "<= 1.5"),
        ("reinforce S=4 (out=) / softmax (out=)", cases["reinforce S=4"][out], cases["softmax"][out], "<= 1.5"),
        ("categorical_log_prob / logsumexp", cases["categorical_log_prob"]["gumbel_np"], cases["logsumexp"]["gumbel_np"], "<= 1.3"),
    ]
    for s in (1, 4):
        c = cases[f"reinforce S={s}"]
        pairs.append((f"numpy / reinforce S={s}", c["numpy"], c["gumbel_np"], ">= 5" if k >= 128 else "-"))
        pairs.append((f"numpy / reinforce S={s} (out=)", c["numpy"], c[out], ">= 5" if k >= 128 else "-"))
        if "torch (autograd)" in c:
            pairs.append((f"torch / reinforce S={s}", c["torch (autograd)"], c["gumbel_np"], ">= 3" if k >= 128 else "-"))
    out_rows = []
    for name, a, b, target in pairs:
        med, lo, hi = ratio(a, b)
        if target == "-":
            met = "-"
        else:
            bound = float(target.split()[1])
            met = "yes" if (med <= bound if target.startswith("<=") else med >= bound) else "no"
        out_rows.append(f"| {shape[0]}x{shape[1]} | {name} | {med:.2f} ({lo:.2f}-{hi:.2f}) | {target} | {met} |")
    return out_rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--readme", action="store_true", help="also write the table into the README")
    args = p.parse_args(argv)
    threads = _bench.set_threads(2)
    found = _bench.peers()
    lines = [
        f"float32, {threads} threads, median ratio over {PAIRS} interleaved pairs (quartiles)",
        "",
        "| size | ratio | median (quartiles) | target | met |",
        "|---|---|---:|---|---|",
    ]
    for shape in _bench.FULL_SIZES:
        lines += rows_of(shape, found)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.readme:
        block = "<!-- targets:start -->\n" + text + "<!-- targets:end -->"
        readme = README.read_text()
        if "<!-- targets:start -->" not in readme:
            raise SystemExit("estimator_targets: the README has no <!-- targets:start --> block")
        README.write_text(re.sub(r"<!-- targets:start -->.*?<!-- targets:end -->", lambda m: block, readme, flags=re.S))


if __name__ == "__main__":
    main()
