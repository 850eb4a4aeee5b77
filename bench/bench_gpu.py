"""GPU benchmark: every public function on CuPy arrays against the hardware floor and PyTorch.

The cases are the CLI benchmark's (``gumbel_np._bench``, families
``softmax``, ``gumbel``, ``estimators``, ``binary`` and ``ranking``) built on CuPy arrays:
one case table for the CPU and the GPU.  For each float32 shape (default:
65536x1024, 16384x32000, 4000000x16; the binary family, element-wise, at its
own 8192x8192 and 67108864x1, 64 M elements as a square and as one column,
unless ``--shapes`` is given) it prints the median GPU time of each case
measured with ``cupyx.profiler.benchmark`` (CUDA events, after warm-up), the
bytes the operation must move divided by that time, the fraction of the
bandwidth of a device-to-device copy moving the same number of bytes (timed
in the same run), and, when PyTorch with CUDA is installed, PyTorch's time
for the same operation and the ratio ``torch time / our time`` (above 1:
faster than PyTorch).

PyTorch peers (the cases' own): ``torch.logsumexp``, ``torch.softmax``,
``torch.log_softmax``, their autograd backward (``torch.autograd.grad`` on a
retained graph, so only the backward runs), ``-log(Exponential(1))`` noise as
inside ``F.gumbel_softmax``, ``F.gumbel_softmax`` (soft and hard) and its
backward, ``torch.multinomial`` for the categorical sampler, and
``torch.distributions.Categorical`` (``log_prob``, ``entropy``,
``kl_divergence``, autograd of the REINFORCE surrogate) for the estimators;
for the binary family ``torch.rand`` with ``log`` / ``log1p`` (logistic
noise), ``torch.bernoulli(torch.sigmoid(logits))``,
``torch.distributions.RelaxedBernoulli(tau, logits=...).rsample()`` (soft,
thresholded for hard, stretched and clamped for the hard-concrete gate) and
autograd through it, and ``torch.sigmoid`` for the L0 norm; for the ranking
family ``torch.multinomial(p, k, replacement=False)`` (the probabilities made
beforehand) for the top-k sampler, and the textbook Plackett-Luce formula
(each normaliser the total less the mass chosen so far) and autograd through
it for ``plackett_luce_log_prob`` and its backward.

Usage::

    python bench/bench_gpu.py [--shapes 65536x1024,4000000x16] [--ops softmax,categorical,...]
                              [--repeat 20] [--no-torch]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from gumbel_np import _bench

DEFAULT_SHAPES = _bench.GPU_SIZES
FAMILIES = ("softmax", "gumbel", "estimators", "binary", "ranking")


def _import_gpu():
    """CuPy, or exit with the reason the GPU cannot be benchmarked."""
    reason = _bench.gpu_skip_reason()
    if reason is not None:
        sys.exit(f"bench_gpu: {reason}; nothing to time")
    import cupy

    return cupy


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

    cupy = _import_gpu()
    found = {} if args.no_torch else _bench.gpu_peers()
    if not args.no_torch and not found:
        print("PyTorch with CUDA is not installed here: no PyTorch column")
    wanted = set(args.ops.split(",")) if args.ops else None
    dev = cupy.cuda.Device()
    props = cupy.cuda.runtime.getDeviceProperties(dev.id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    torch = found.get("torch")
    print(
        f"device {dev.id}: {name}, CuPy {cupy.__version__}"
        + (f", PyTorch {torch.__version__}" if torch else "")
    )

    header = (
        f"{'operation':<36} {'shape':>14} {'ms':>9} {'GB/s':>8} {'x copy':>7}"
        f" {'torch ms':>9} {'torch/ours':>10}"
    )
    print(header)
    print("-" * len(header))
    # Shape by shape; the binary family at its own shapes (after the others)
    # unless shapes are given.
    for family, shape in _bench.plan(list(FAMILIES), _parse_shapes(args.shapes)):
        for case in _bench.FAMILIES[family](shape, cupy, found):
            if wanted is not None and case.op not in wanted:
                continue
            case.impls = {k: v for k, v in case.impls.items() if k != _bench.OUT}
            rows = {r.impl: r for r in _bench.measure(case, "cuda", cupy, repeat=args.repeat)}
            ours = rows["gumbel_np"]
            line = (
                f"{case.op:<36} {f'{shape[0]}x{shape[1]}':>14} {ours.ms:9.3f} {ours.gbps:8.0f}"
                f" {1 / ours.vs_copy:7.2f}"
            )
            peer = next((r for impl, r in rows.items() if impl.startswith("torch")), None)
            if peer is not None:
                line += f" {peer.ms:9.3f} {peer.vs_ours:10.2f}"
            print(line, flush=True)
        cupy.get_default_memory_pool().free_all_blocks()
        if torch is not None:
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    with np.errstate(divide="ignore"):
        sys.exit(main())
