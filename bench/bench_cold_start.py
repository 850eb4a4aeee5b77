"""Cold start: wall time of a whole Python process that imports gumbel_np and
calls one function once on a 4x8 float32 array, interpreter start included.

For each public function: once with a new, empty kernel cache (everything
compiles) and then ``--repeat`` times with the cache that run filled (a
second process), against the same process calling PyTorch's
``F.gumbel_softmax`` where PyTorch is installed, and a bare ``python -c
pass``.  The kernel cache is a temporary folder (``GUMBEL_NP_CACHE_DIR``), so
the user's cache is left alone.

    python bench/bench_cold_start.py [--repeat 5] [--functions softmax,gumbel_softmax]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

CALLS = {
    "logsumexp": "gnp.logsumexp(x)",
    "softmax": "gnp.softmax(x)",
    "log_softmax": "gnp.log_softmax(x)",
    "logsumexp_backward": "gnp.logsumexp_backward(x[:, 0], x)",
    "softmax_backward": "gnp.softmax_backward(x, x)",
    "log_softmax_backward": "gnp.log_softmax_backward(x, x)",
    "gumbel": "gnp.gumbel((4, 8), rng=0)",
    "categorical": "gnp.categorical(x, rng=0)",
    "gumbel_softmax": "gnp.gumbel_softmax(x, rng=0)",
    "gumbel_softmax_backward": "gnp.gumbel_softmax_backward(x, x)",
}
PRELUDE = "import numpy as np, gumbel_np as gnp; x = np.ones((4, 8), np.float32); "
TORCH = "import torch, torch.nn.functional as F; F.gumbel_softmax(torch.ones(4, 8))"


def wall(code: str, env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="second-process runs per function (median)")
    ap.add_argument("--functions", default=",".join(CALLS), help="comma-separated subset")
    args = ap.parse_args()
    names = args.functions.split(",")
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "GUMBEL_NP_CACHE_DIR": cache}
        bare = statistics.median(wall("pass", env) for _ in range(args.repeat))
        print(f"python -c pass: {bare:.2f} s (median of {args.repeat})")
        try:
            torch = statistics.median(wall(TORCH, env) for _ in range(args.repeat))
            print(f"PyTorch import + F.gumbel_softmax: {torch:.2f} s")
        except subprocess.CalledProcessError:
            print("PyTorch: not installed")
        print(f"| function | first process (compiles) | second process, median of {args.repeat} (min-max) |")
        print("|---|---|---|")
        for name in names:
            code = PRELUDE + CALLS[name]
            first = wall(code, env)
            runs = [wall(code, env) for _ in range(args.repeat)]
            print(
                f"| `{name}` | {first:.2f} s | {statistics.median(runs):.2f} s "
                f"({min(runs):.2f}-{max(runs):.2f}) |",
                flush=True,
            )


if __name__ == "__main__":
    main()
