"""The log-space sample's and the Concrete densities' speed targets, as ratios
measured in interleaved pairs.

The machinery of ``topk_targets.py`` (each sample times a few calls of one
implementation and then as many of the other, the ratio is taken within the
pair; median and quartiles over 15 pairs), float32, 2 threads for every
library, at 4096x1024, 32768x128 and 1000000x10:

* ``log_gumbel_softmax`` over ``gumbel_softmax`` (the same logits, key and
  temperature): target at most 1.2;
* each log-density (``exp_concrete_log_prob``, ``concrete_log_prob``,
  ``binary_concrete_log_prob``) over ``logsumexp`` of the logits: target at
  most 1.5; and over a memory copy of the bytes it reads (the sample and the
  logits) and writes, the floor of a function that must read two arrays, for
  information;
* PyTorch over gumbel_np, target at least 5 for K >= 128: the samplers
  (``ExpRelaxedCategorical.rsample`` against ``log_gumbel_softmax``), the
  densities (``ExpRelaxedCategorical``, ``RelaxedOneHotCategorical``,
  ``RelaxedBernoulli`` ``log_prob`` on tensors made beforehand), and the
  densities' gradients (autograd of ``log_prob(...).sum()`` with respect to
  the sample, the logits and the temperature, against our backward pass with
  ``tau_grad=True``).  ``RelaxedBernoulli`` is element-wise: its target is
  taken at every size.

    python bench/concrete_targets.py [--readme] [--quick]

``--readme`` also writes the table into the README (between ``<!--
concrete-targets:start -->`` and ``<!-- concrete-targets:end -->``);
``--quick`` runs small sizes (a smoke run; no ``--readme``).
"""

from __future__ import annotations

import numpy as np
from topk_targets import table_lines, targets_main, torch_or_none

import gumbel_np as gnp
from gumbel_np import _bench

SIZES = [(4096, 1024), (32768, 128), (1_000_000, 10)]
QUICK_SIZES = [(256, 1024), (2048, 128), (50_000, 10)]
TAU = 0.5


def _torch_pairs(torch, x, z, y, yb, k):
    """(name, peer, ours, target) for PyTorch's samplers, densities and their gradients."""
    from torch.distributions.relaxed_bernoulli import RelaxedBernoulli
    from torch.distributions.relaxed_categorical import ExpRelaxedCategorical, RelaxedOneHotCategorical

    tx, tz, ty, tyb = (torch.from_numpy(a) for a in (x, z, y, yb))
    t = torch.tensor(TAU, dtype=torch.float32)
    target = ">= 5" if k >= 128 else "-"
    exp_d = ExpRelaxedCategorical(t, logits=tx)
    simplex_d = RelaxedOneHotCategorical(t, logits=tx)
    bern_d = RelaxedBernoulli(t, logits=tx)

    def grads(dist_cls, sample):
        def run():
            s = sample.clone().requires_grad_(True)
            lg = tx.clone().requires_grad_(True)
            tt = t.clone().requires_grad_(True)
            dist_cls(tt, logits=lg).log_prob(s).sum().backward()
            return s.grad, lg.grad, tt.grad

        return run

    ones_rows = np.ones(x.shape[0], np.float32)
    ones = np.ones(x.shape, np.float32)
    return [
        ("torch ExpRelaxedCategorical.rsample / log_gumbel_softmax", lambda: exp_d.rsample(),
         lambda: gnp.log_gumbel_softmax(x, tau=TAU, rng=1), target),
        ("torch ExpRelaxedCategorical.log_prob / exp_concrete_log_prob", lambda: exp_d.log_prob(tz),
         lambda: gnp.exp_concrete_log_prob(z, x, tau=TAU), target),
        ("torch RelaxedOneHotCategorical.log_prob / concrete_log_prob", lambda: simplex_d.log_prob(ty),
         lambda: gnp.concrete_log_prob(y, x, tau=TAU), target),
        ("torch RelaxedBernoulli.log_prob / binary_concrete_log_prob", lambda: bern_d.log_prob(tyb),
         lambda: gnp.binary_concrete_log_prob(yb, x, tau=TAU), ">= 5"),
        ("torch autograd / exp_concrete_log_prob_backward", grads(ExpRelaxedCategorical, tz),
         lambda: gnp.exp_concrete_log_prob_backward(ones_rows, z, x, tau=TAU, tau_grad=True), target),
        ("torch autograd / binary_concrete_log_prob_backward", grads(RelaxedBernoulli, tyb),
         lambda: gnp.binary_concrete_log_prob_backward(ones, yb, x, tau=TAU, tau_grad=True), ">= 5"),
    ]


def rows_of(shape, torch):
    k = shape[1]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    z = gnp.log_gumbel_softmax(x, tau=TAU, rng=1)
    y = np.exp(z)
    yb = np.clip(gnp.gumbel_sigmoid(x, tau=TAU, rng=2), 1e-6, 1 - 1e-6)  # inside (0, 1) for every peer
    copy2 = _bench._copy_fn(np, 2 * x.nbytes)
    lse = lambda: gnp.logsumexp(x)  # noqa: E731
    pairs = [
        ("log_gumbel_softmax / gumbel_softmax", lambda: gnp.log_gumbel_softmax(x, tau=TAU, rng=1),
         lambda: gnp.gumbel_softmax(x, tau=TAU, rng=1), "<= 1.2"),
        ("exp_concrete_log_prob / logsumexp", lambda: gnp.exp_concrete_log_prob(z, x, tau=TAU), lse, "<= 1.5"),
        ("concrete_log_prob / logsumexp", lambda: gnp.concrete_log_prob(y, x, tau=TAU), lse, "<= 1.5"),
        ("binary_concrete_log_prob / logsumexp", lambda: gnp.binary_concrete_log_prob(yb, x, tau=TAU), lse,
         "<= 1.5"),
        ("exp_concrete_log_prob / copy of its two inputs", lambda: gnp.exp_concrete_log_prob(z, x, tau=TAU),
         copy2, "-"),
        ("binary_concrete_log_prob / copy of its two inputs",
         lambda: gnp.binary_concrete_log_prob(yb, x, tau=TAU), copy2, "-"),
    ]
    if torch is not None:
        pairs += _torch_pairs(torch, x, z, y, yb, k)
    return table_lines(shape, pairs)


def main(argv=None):
    targets_main(argv, __doc__, "concrete-targets", SIZES, QUICK_SIZES, rows_of, setup=torch_or_none, note=f"tau = {TAU}, ")


if __name__ == "__main__":
    main()
