"""The estimators beyond straight-through: speed targets, as ratios measured
in interleaved pairs.

The machinery of ``topk_targets.py`` (each sample times a few calls of one
implementation and then as many of the other, the ratio is taken within the
pair; median and quartiles over 15 pairs), float32, 2 threads for every
library, at 4096x1024 and 65536x128:

* ``conditional_gumbel`` over ``gumbel`` noise of the same shape: target at
  most 1.5;
* ``gumbel_rao_backward`` with ``S`` = 1 and 10 samples over
  ``gumbel_softmax``'s forward (the same logits and temperature): target at
  most ``1.3 S``;
* the PyTorch port of the authors' Gumbel-Rao reference (Paulus et al.:
  the ``S`` conditional samples made under ``no_grad`` as a ``(S, rows, K)``
  tensor, ``softmax((logits + noise) / tau).mean(0)`` as the surrogate, its
  gradient by ``torch.autograd.grad``; the categorical sample given) over
  ``gumbel_rao_backward``: target at least 10 at ``S`` = 10, for
  information at ``S`` = 1; and the reference's ``conditional_gumbel`` (one
  sample) over ours, for information;
* ``reinmax_backward`` over ``softmax_backward`` (a gradient and a softmax of
  the same shape): target at most 1.5; the port of the authors'
  ``ReinMaxCore.backward`` over ours, for information;
* the floors, for information: each function over the library calls that
  make the passes it needs at least (``conditional_gumbel``: the noise and
  a ``logsumexp``; ``gumbel_rao_backward`` with one sample: a
  ``gumbel_softmax``, a ``logsumexp`` and a ``softmax_backward``;
  ``reinmax_backward``: two softmaxes and a ``softmax_backward``).

    python bench/conditional_targets.py [--readme] [--quick]

``--readme`` also writes the table into the README (between ``<!--
conditional-targets:start -->`` and ``<!-- conditional-targets:end -->``);
``--quick`` runs small sizes (a smoke run; no ``--readme``).
"""

from __future__ import annotations

import numpy as np
from topk_targets import table_lines, targets_main, torch_or_none

import gumbel_np as gnp
from gumbel_np import _bench

SIZES = [(4096, 1024), (65536, 128)]
QUICK_SIZES = [(256, 1024), (4096, 128)]
TAU = 0.5


def _torch_pairs(torch, x, i, g, k):
    tx, tg = torch.from_numpy(x), torch.from_numpy(g)
    d = torch.nn.functional.one_hot(torch.from_numpy(i), k).float()
    return [
        ("torch reference conditional_gumbel / conditional_gumbel",
         lambda: _bench.torch_conditional_gumbel(torch, tx, d, 1), lambda: gnp.conditional_gumbel(x, i, rng=1), "-"),
        ("torch reference Gumbel-Rao S=1 / gumbel_rao_backward S=1", _bench.torch_gumbel_rao(torch, tx, d, tg, TAU, 1),
         lambda: gnp.gumbel_rao_backward(g, x, i, tau=TAU, num_samples=1, rng=1), "-"),
        ("torch reference Gumbel-Rao S=10 / gumbel_rao_backward S=10",
         _bench.torch_gumbel_rao(torch, tx, d, tg, TAU, 10),
         lambda: gnp.gumbel_rao_backward(g, x, i, tau=TAU, num_samples=10, rng=1), ">= 10"),
        ("torch reference ReinMax backward / reinmax_backward", _bench.torch_reinmax_backward(torch, tx, d, tg, TAU),
         lambda: gnp.reinmax_backward(g, x, i, tau=TAU), "-"),
    ]


def rows_of(shape, torch):
    k = shape[1]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    i = gnp.categorical(x, rng=2)
    y = gnp.softmax(x)
    xt = x / np.float32(TAU)
    like = np.empty(1, np.float32)
    gs = lambda: gnp.gumbel_softmax(x, tau=TAU, rng=1)  # noqa: E731
    pairs = [
        ("conditional_gumbel / gumbel", lambda: gnp.conditional_gumbel(x, i, rng=1),
         lambda: gnp.gumbel(shape, rng=1, like=like), "<= 1.5"),
        ("gumbel_rao_backward S=1 / gumbel_softmax",
         lambda: gnp.gumbel_rao_backward(g, x, i, tau=TAU, num_samples=1, rng=1), gs, "<= 1.3"),
        ("gumbel_rao_backward S=10 / gumbel_softmax",
         lambda: gnp.gumbel_rao_backward(g, x, i, tau=TAU, num_samples=10, rng=1), gs, "<= 13"),
        ("reinmax_backward / softmax_backward", lambda: gnp.reinmax_backward(g, x, i, tau=TAU),
         lambda: gnp.softmax_backward(g, y), "<= 1.5"),
        # The floors: the passes each needs at least, as library calls.
        ("conditional_gumbel / (gumbel + logsumexp)", lambda: gnp.conditional_gumbel(x, i, rng=1),
         lambda: (gnp.gumbel(shape, rng=1, like=like), gnp.logsumexp(x)), "-"),
        ("gumbel_rao_backward S=1 / (gumbel_softmax + logsumexp + softmax_backward)",
         lambda: gnp.gumbel_rao_backward(g, x, i, tau=TAU, num_samples=1, rng=1),
         lambda: (gs(), gnp.logsumexp(x), gnp.softmax_backward(g, y)), "-"),
        ("reinmax_backward / (2 softmax + softmax_backward)", lambda: gnp.reinmax_backward(g, x, i, tau=TAU),
         lambda: (gnp.softmax(x), gnp.softmax(xt), gnp.softmax_backward(g, y)), "-"),
        ("softmax / softmax_backward", lambda: gnp.softmax(x), lambda: gnp.softmax_backward(g, y), "-"),
    ]
    if torch is not None:
        pairs += _torch_pairs(torch, x, i, g, k)
    return table_lines(shape, pairs)


def main(argv=None):
    targets_main(argv, __doc__, "conditional-targets", SIZES, QUICK_SIZES, rows_of, setup=torch_or_none, note=f"tau = {TAU}, ")


if __name__ == "__main__":
    main()
