"""Gumbel-Softmax (soft, hard, backward) and categorical sampling: gumbel_np
against NumPy, PyTorch and JAX (when installed) and a plain memory copy of the
same bytes.

    python bench/bench_gumbel.py [--quick] [--threads 2] [--markdown FILE]
"""

from __future__ import annotations

import numpy as np
from _common import QUICK_SIZES, SIZES, finish, jax_module, measure, optional, parser, set_threads

import gumbel_np as gnp

TAU = 0.5


def _numpy_peers(x, rng):
    """The best plain-NumPy versions: noise drawn in place, no extra copies."""
    buf = np.empty_like(x)

    def noise():
        rng.random(dtype=np.float32, out=buf)
        np.log(buf, out=buf)
        np.negative(buf, out=buf)
        np.log(buf, out=buf)
        np.negative(buf, out=buf)
        return buf

    def gumbel_softmax():
        z = noise()
        z += x
        z /= TAU
        z -= z.max(-1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(-1, keepdims=True)
        return z

    def gumbel_max():
        z = noise()
        z += x
        return z.argmax(-1)

    def cumsum_categorical():
        p = np.exp(x - x.max(-1, keepdims=True))
        np.cumsum(p, axis=-1, out=p)
        u = rng.random(len(x), dtype=np.float32)[:, None] * p[:, -1:]
        return (p < u).sum(-1)

    return gumbel_softmax, gumbel_max, cumsum_categorical


def run(sizes, rows=None):
    rows = [] if rows is None else rows
    torch = optional("torch")
    jax = jax_module()
    for shape in sizes:
        rng = np.random.default_rng(0)
        x = rng.normal(size=shape).astype(np.float32)
        g = rng.normal(size=shape).astype(np.float32)
        n = x.nbytes
        np_gs, np_gmax, np_cumsum = _numpy_peers(x, rng)
        y_soft = gnp.gumbel_softmax(x, tau=TAU, rng=1)

        soft = {"gumbel_np": lambda: gnp.gumbel_softmax(x, tau=TAU, rng=1), "numpy": np_gs}
        hard = {"gumbel_np": lambda: gnp.gumbel_softmax(x, tau=TAU, rng=1, hard=True)}
        bwd = {"gumbel_np": lambda: gnp.gumbel_softmax_backward(g, y_soft, tau=TAU)}
        cat = {"gumbel_np": lambda: gnp.categorical(x, rng=1), "numpy (cumsum)": np_cumsum, "numpy (gumbel-max)": np_gmax}
        if torch is not None:
            F = torch.nn.functional
            tx = torch.from_numpy(x)
            txg = tx.clone().requires_grad_(True)
            ty = F.gumbel_softmax(txg, tau=TAU)
            tg = torch.from_numpy(g)
            soft["torch"] = lambda: F.gumbel_softmax(tx, tau=TAU)
            hard["torch"] = lambda: F.gumbel_softmax(tx, tau=TAU, hard=True)
            bwd["torch (autograd)"] = lambda: torch.autograd.grad(ty, txg, tg, retain_graph=True)
            cat["torch.multinomial"] = lambda: torch.multinomial(torch.softmax(tx, -1), 1)
        if jax is not None:
            jnp = jax.numpy
            jx = jnp.asarray(x)
            key = jax.random.PRNGKey(0)

            @jax.jit
            def jax_gs(k, a):
                return jax.nn.softmax((a + jax.random.gumbel(k, a.shape, a.dtype)) / TAU, axis=-1)

            jcat = jax.jit(lambda k, a: jax.random.categorical(k, a, axis=-1))
            soft["jax (jit)"] = lambda: jax_gs(key, jx).block_until_ready()
            cat["jax.random.categorical"] = lambda: jcat(key, jx).block_until_ready()
        measure("gumbel_softmax", shape, 2 * n, soft, rows=rows)
        measure("gumbel_softmax hard", shape, 2 * n, hard, rows=rows)
        measure("gumbel_softmax_backward", shape, 3 * n, bwd, rows=rows)
        measure("categorical", shape, n + 8 * shape[0], cat, rows=rows)
    return rows


def main(argv=None):
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    set_threads(args.threads)
    with np.errstate(divide="ignore"):
        rows = run(QUICK_SIZES if args.quick else SIZES)
    finish(args, rows, f"Gumbel-Softmax and categorical, float32, {args.threads} threads")


if __name__ == "__main__":
    main()
