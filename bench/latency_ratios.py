"""Per-call latency of the small-call targets, as ratios to PyTorch measured
in interleaved pairs.

On a shared virtual machine the speed of the machine drifts from one second
to the next (the same call varies by 2x), which a table of separate medians
(``python -m gumbel_np bench --family latency``) carries into its ratios.
Here each sample times 1000 calls of gumbel_np and then 1000 of its peer,
and the ratio is taken within the pair; the median ratio over 41 pairs (and
its quartiles) is printed, for float32 1x10 and 2 threads:

* ``softmax`` against ``torch.softmax``;
* ``gumbel_softmax`` and ``gumbel_softmax_backward`` against
  ``torch.nn.functional.gumbel_softmax``.

    python bench/latency_ratios.py
"""

from __future__ import annotations

import statistics
import time

import numpy as np

import gumbel_np as gnp
from gumbel_np import _bench

PAIRS = 41
CALLS = 1000


def _per_call(f, n=CALLS):
    t = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - t) / n * 1e6


def main() -> None:
    torch = _bench.optional("torch")
    if torch is None:
        raise SystemExit("latency_ratios: PyTorch is not installed (pip install torch==2.13.0)")
    F = torch.nn.functional
    _bench.set_threads(2)
    x = np.random.default_rng(0).standard_normal((1, 10)).astype(np.float32)
    y, g = gnp.softmax(x), np.ones_like(x)
    tx = torch.from_numpy(x)
    pairs = {
        "softmax / torch.softmax": (lambda: gnp.softmax(x), lambda: torch.softmax(tx, -1)),
        "gumbel_softmax / F.gumbel_softmax": (
            lambda: gnp.gumbel_softmax(x, rng=1),
            lambda: F.gumbel_softmax(tx, tau=1.0),
        ),
        "gumbel_softmax_backward / F.gumbel_softmax": (
            lambda: gnp.gumbel_softmax_backward(g, y),
            lambda: F.gumbel_softmax(tx, tau=1.0),
        ),
    }
    print("| pair (1x10 float32) | ours, us | peer, us | ours / peer (quartiles) |\n|---|---:|---:|---|")
    for name, (ours, peer) in pairs.items():
        ours(), peer()
        a, b, r = [], [], []
        for _ in range(PAIRS):
            ta, tb = _per_call(ours), _per_call(peer)
            a.append(ta), b.append(tb), r.append(ta / tb)
        q = statistics.quantiles(r, n=4)
        print(
            f"| {name} | {statistics.median(a):.2f} | {statistics.median(b):.2f} | "
            f"{statistics.median(r):.2f} ({q[0]:.2f}-{q[2]:.2f}) |"
        )


if __name__ == "__main__":
    main()
