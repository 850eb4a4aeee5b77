"""Gumbel-top-k sampling and the Plackett-Luce log-probability against their peers.

``categorical(..., num_samples=k, replace=False)`` for k = 1, 8 and 64 (at
most K) and ``plackett_luce_log_prob`` with its backward pass (rankings of
k = 1 and 8): gumbel_np against ``torch.multinomial(p, k,
replacement=False)``, ``jax.random.categorical(..., replace=False)`` when
installed, NumPy's ``argpartition`` + ``argsort`` of logits plus
``Generator.gumbel`` noise, ``Generator.choice(K, k, replace=False, p=row)``
in a row loop (on a few rows, scaled to the batch), and the textbook
Plackett-Luce formula in NumPy and PyTorch (autograd for the gradient), with
``categorical`` (one draw), ``logsumexp`` and its backward measured in the
same run, and a plain memory copy of the same bytes; float32 4096x1024,
256x50257, 1000000x10 (``--quick``: 512x1024, 16x50257, 50000x10).

    python bench/bench_ranking.py [--quick] [--threads 2] [--json FILE] [--markdown FILE]
"""

from _script import main

if __name__ == "__main__":
    main("ranking", __doc__.splitlines()[0])
