"""The binary family's speed targets, as ratios measured in interleaved pairs.

The machinery of ``estimator_targets.py`` (each sample times a few calls of
one implementation and then as many of the other, the ratio is taken within
the pair; median and quartiles over 15 pairs), on the cases of
``gumbel_np._bench.binary_cases`` (the benchmark's own inputs and peers),
float32, 2 threads, at the sizes of the ``binary`` family in a full run,
4096x4096 and 16777216x1 (16 M elements each):

* ``logistic`` and ``gumbel_sigmoid`` over ``gumbel`` noise of the same
  size: target at most 1.3; ``bernoulli`` over ``gumbel``: at most 1 (all
  with ``out=``: the three kernels, without the allocator);
* NumPy and PyTorch over gumbel_np, for every forward (``logistic``,
  ``bernoulli``, ``gumbel_sigmoid`` soft and hard, ``hard_concrete``,
  ``hard_concrete_l0``): targets at least 5 and 20.  NumPy's peers are in
  place in preallocated buffers (``bernoulli``'s allocates, as
  ``rng.random(n) < expit(logits)`` does), PyTorch's allocate, as their
  usual code does; each ratio is taken against gumbel_np's plain call and
  against its ``out=`` call.  A plain call's 64 MB result is fresh memory
  from the operating system, whose page faults cost about as much as
  writing it (on this virtual machine ``np.ones`` of 64 MB takes 13 ms,
  filling 64 MB already faulted in 5.6 ms); the ``out=`` row shows the
  kernel without that cost;
* each backward pass over a memory copy of the same number of bytes (its
  two inputs read and its result written; the copy writes into a
  preallocated array), timed in the same pairs: target at most 1.5, for
  the plain and the ``out=`` call.

    python bench/binary_targets.py [--readme]

A second table gives each forward's floor, measured in the same run: the
Philox4x32-10 words its noise needs (:func:`philox_words`, the words alone,
nothing computed from them; the noise is a pure function of element ``j``
of the row's counter block ``j // 4``, so a row of one element costs a whole
block) or, without noise, a memory copy of its bytes; and each peer's time
over that floor, the largest ratio any implementation of the randomness
contract could show against that peer here.

``--readme`` also writes the tables into the README (between ``<!--
binary-targets:start -->`` and ``<!-- binary-targets:end -->``).
"""

from __future__ import annotations

import argparse
import pathlib
import re

import numba
import numpy as np
from estimator_targets import PAIRS, ratio

from gumbel_np import _bench
from gumbel_np.kernels._jit import JIT_OPTIONS
from gumbel_np.kernels.gumbel import SHORT_ROW, philox_columns_f32, philox_words_f32

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- binary-targets:start -->", "<!-- binary-targets:end -->"
FORWARDS = ("logistic", "bernoulli", "gumbel_sigmoid", "gumbel_sigmoid hard", "hard_concrete", "hard_concrete_l0")
BACKWARDS = ("gumbel_sigmoid_backward", "hard_concrete_backward", "hard_concrete_l0_backward")
PEER_TARGETS = {"numpy": ">= 5", "torch": ">= 20"}


def _peer(impls: dict, lib: str):
    """The implementation of ``lib`` among a case's, or None."""
    return next((fn for name, fn in impls.items() if name.split()[0] == lib), None)


def pairs_of(shape, found):
    """(name, a, b, target) of every ratio ``time(a) / time(b)`` at ``shape``."""
    cases = {c.op: c for c in _bench.binary_cases(shape, found=found)}
    impls = {op: c.impls for op, c in cases.items()}
    out = _bench.OUT
    gumbel = impls["gumbel noise"][out]
    pairs = [
        ("logistic (out=) / gumbel (out=)", impls["logistic"][out], gumbel, "<= 1.3"),
        ("gumbel_sigmoid (out=) / gumbel (out=)", impls["gumbel_sigmoid"][out], gumbel, "<= 1.3"),
        ("bernoulli (out=) / gumbel (out=)", impls["bernoulli"][out], gumbel, "<= 1"),
    ]
    for op in FORWARDS:
        for lib, target in PEER_TARGETS.items():
            peer = _peer(impls[op], lib)
            if peer is not None:
                pairs.append((f"{lib} / {op}", peer, impls[op]["gumbel_np"], target))
                pairs.append((f"{lib} / {op} (out=)", peer, impls[op][out], target))
    for op in BACKWARDS:
        copy = _bench._copy_fn(np, cases[op].nbytes)
        pairs.append((f"{op} / copy", impls[op]["gumbel_np"], copy, "<= 1.5"))
        pairs.append((f"{op} (out=) / copy", impls[op][out], copy, "<= 1.5"))
    return pairs


@numba.njit(parallel=True, **JIT_OPTIONS)
def _words(folded, k, rows, chunk):
    for c in numba.prange(folded.size):
        r0 = c * chunk
        r1 = min(r0 + chunk, rows)
        w = np.empty((r1 - r0) * (k + 3) + 3, np.uint32)
        if k < SHORT_ROW:  # across rows, as the kernels draw short rows
            philox_columns_f32(w, k, r0, r1, np.uint64(1), np.uint64(2), np.uint64(0), np.empty(0, np.int64))
        else:
            for r in range(r0, r1):
                philox_words_f32(w, (r - r0) * k, k, np.uint64(1), np.uint64(2), np.uint64(0), r)
        x = np.uint32(0)
        for i in range((r1 - r0) * k):
            x ^= w[i]
        folded[c] = x  # kept, so the words are computed


def philox_words(shape):
    """A call that computes the float32 Philox words of a ``shape`` batch (one
    4-word block per 4 elements of a row, at least one per row) and nothing
    else, in parallel chunks of rows, in the order the kernels draw them
    (row by row, or across rows for rows shorter than ``SHORT_ROW``)."""
    rows, k = shape
    chunk = max(1, 2048 // k)
    folded = np.empty(-(-rows // chunk), np.uint32)
    return lambda: _words(folded, k, rows, chunk)


def floor_rows(shape, found):
    """The floor table's rows at ``shape`` (medians of interleaved rounds)."""
    cases = {c.op: c for c in _bench.binary_cases(shape, found=found)}
    fns = {"philox": philox_words(shape)}
    for op in FORWARDS:
        fns[f"{op} copy"] = _bench._copy_fn(np, cases[op].nbytes)
        fns[f"{op} ours"] = cases[op].impls[_bench.OUT]
        for lib in PEER_TARGETS:
            peer = _peer(cases[op].impls, lib)
            if peer is not None:
                fns[f"{op} {lib}"] = peer
    t = _bench.interleaved_medians(fns)
    lines = []
    size = f"{shape[0]}x{shape[1]}"
    for op in FORWARDS:
        noisy = op != "hard_concrete_l0"
        floor = max(t["philox"], t[f"{op} copy"]) if noisy else t[f"{op} copy"]
        what = "Philox words" if noisy and t["philox"] >= t[f"{op} copy"] else "memory copy"
        for lib, target in PEER_TARGETS.items():
            if f"{op} {lib}" not in t:
                continue
            lines.append(
                f"| {size} | {op} | {t[f'{op} ours'] * 1e3:.1f} | {floor * 1e3:.1f} ({what}) | "
                f"{lib} {t[f'{op} {lib}'] * 1e3:.1f} | {t[f'{op} {lib}'] / floor:.1f} | {target} |"
            )
            print(lines[-1], flush=True)
    return lines


def met(value: float, target: str) -> str:
    bound = float(target.split()[1])
    return "PASS" if (value <= bound if target.startswith("<=") else value >= bound) else "FAIL"


def rows_of(shape, found):
    lines = []
    with np.errstate(divide="ignore"):
        for name, a, b, target in pairs_of(shape, found):
            med, lo, hi = ratio(a, b)
            size = f"{shape[0]}x{shape[1]}"
            lines.append(f"| {size} | {name} | {med:.2f} ({lo:.2f}-{hi:.2f}) | {target} | {met(med, target)} |")
            print(lines[-1], flush=True)
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--readme", action="store_true", help="also write the table into the README")
    p.add_argument("--quick", action="store_true", help="the quick run's sizes (a smoke run; no --readme)")
    args = p.parse_args(argv)
    if args.quick and args.readme:
        p.error("--readme takes the full sizes")
    threads = _bench.set_threads(2)
    found = _bench.peers()
    head = [
        f"float32, {threads} threads, median ratio over {PAIRS} interleaved pairs (quartiles)",
        "",
        "| size | ratio | median (quartiles) | target | met |",
        "|---|---|---:|---|---|",
    ]
    print("\n".join(head), flush=True)
    lines = list(head)
    sizes = _bench.BINARY_QUICK_SIZES if args.quick else _bench.BINARY_SIZES
    for shape in sizes:
        lines += rows_of(shape, found)
    head = [
        "",
        "Floors, same run (medians, ms): the Philox words of the noise alone, or a memory copy of the "
        "call's bytes, whichever is larger (no noise: the copy); a peer's time over the floor is the "
        "largest ratio possible against it.",
        "",
        "| size | forward | gumbel_np (out=) | floor | peer | peer / floor | target |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    print("\n".join(head), flush=True)
    lines += head
    for shape in sizes:
        lines += floor_rows(shape, found)
    if args.readme:
        block = START + "\n" + "\n".join(lines) + "\n" + END
        readme = README.read_text()
        if START not in readme or END not in readme:
            raise SystemExit(f"binary_targets: the README has no {START} ... {END} block")
        README.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), lambda m: block, readme, flags=re.S))


if __name__ == "__main__":
    main()
