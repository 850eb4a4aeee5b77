"""Softmax family and Gumbel noise: gumbel_np against NumPy/SciPy (and
PyTorch when installed) and a plain memory copy of the same bytes.

    python bench/bench_softmax.py [--quick] [--threads 2] [--markdown FILE]
"""

from __future__ import annotations

import numpy as np
import scipy.special as sp
from _common import QUICK_SIZES, SIZES, finish, measure, optional, parser, set_threads

import gumbel_np as gnp


def run(sizes, rows=None):
    rows = [] if rows is None else rows
    torch = optional("torch")
    for shape in sizes:
        rng = np.random.default_rng(0)
        x = rng.normal(size=shape).astype(np.float32)
        g = rng.normal(size=shape).astype(np.float32)
        y = gnp.softmax(x)
        ly = gnp.log_softmax(x)
        gr = g[:, 0].copy()
        n = x.nbytes
        nr = gr.nbytes
        tx = ty = tg = None
        if torch is not None:
            tx = torch.from_numpy(x).requires_grad_(True)
            tg = torch.from_numpy(g)
            ty = torch.softmax(tx, -1)
            tly = torch.log_softmax(tx, -1)
            tlse = torch.logsumexp(tx, -1)
        fwd = {
            "softmax": (2 * n, lambda: gnp.softmax(x), lambda: sp.softmax(x, axis=-1),
                        (lambda: torch.softmax(tx.detach(), -1)) if torch else None),
            "log_softmax": (2 * n, lambda: gnp.log_softmax(x), lambda: sp.log_softmax(x, axis=-1),
                            (lambda: torch.log_softmax(tx.detach(), -1)) if torch else None),
            "logsumexp": (n + nr, lambda: gnp.logsumexp(x), lambda: sp.logsumexp(x, axis=-1),
                          (lambda: torch.logsumexp(tx.detach(), -1)) if torch else None),
        }
        for op, (nbytes, ours, scipy_fn, torch_fn) in fwd.items():
            impls = {"gumbel_np": ours, "scipy.special": scipy_fn}
            if torch_fn:
                impls["torch"] = torch_fn
            measure(op, shape, nbytes, impls, rows=rows)

        def np_softmax_bwd():
            return y * (g - (g * y).sum(-1, keepdims=True))

        def np_log_softmax_bwd():
            return g - np.exp(ly) * g.sum(-1, keepdims=True)

        def np_lse_bwd():
            return gr[:, None] * sp.softmax(x, axis=-1)

        bwd = {
            "softmax_backward": (3 * n, lambda: gnp.softmax_backward(g, y), np_softmax_bwd,
                                 (lambda: torch.autograd.grad(ty, tx, tg, retain_graph=True)) if torch else None),
            "log_softmax_backward": (3 * n, lambda: gnp.log_softmax_backward(g, ly), np_log_softmax_bwd,
                                     (lambda: torch.autograd.grad(tly, tx, tg, retain_graph=True)) if torch else None),
            "logsumexp_backward": (2 * n + nr, lambda: gnp.logsumexp_backward(gr, x), np_lse_bwd,
                                   (lambda: torch.autograd.grad(tlse, tx, torch.from_numpy(gr), retain_graph=True)) if torch else None),
        }
        for op, (nbytes, ours, np_fn, torch_fn) in bwd.items():
            impls = {"gumbel_np": ours, "numpy": np_fn}
            if torch_fn:
                impls["torch (autograd)"] = torch_fn
            measure(op, shape, nbytes, impls, rows=rows)

        buf = np.empty(shape, np.float32)
        npr = np.random.default_rng(1)

        def numpy_noise():
            npr.random(dtype=np.float32, out=buf)
            np.log(buf, out=buf)
            np.negative(buf, out=buf)
            np.log(buf, out=buf)
            np.negative(buf, out=buf)
            return buf

        impls = {"gumbel_np": lambda: gnp.gumbel(shape, rng=1), "numpy (in place)": numpy_noise}
        if torch is not None:
            impls["torch"] = lambda: -torch.empty(shape).exponential_().log()
        measure("gumbel noise", shape, n, impls, rows=rows)
    return rows


def main(argv=None):
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    set_threads(args.threads)
    with np.errstate(divide="ignore"):
        rows = run(QUICK_SIZES if args.quick else SIZES)
    finish(args, rows, f"Softmax family and noise, float32, {args.threads} threads")


if __name__ == "__main__":
    main()
