"""The score-function estimator (reinforce, S = 1 and 4, with and without
the leave-one-out baseline), categorical_log_prob, categorical_entropy and
categorical_kl: gumbel_np against NumPy (softmax + take_along_axis / one-hot)
and PyTorch (torch.distributions.Categorical, autograd for the gradients),
with softmax (out=) and logsumexp measured in the same run, and a plain
memory copy of the same bytes; float32 4096x1024, 65536x128, 256x50257,
1000000x10.

    python bench/bench_estimators.py [--quick] [--threads 2] [--json FILE] [--markdown FILE]
"""

from _script import main

if __name__ == "__main__":
    main("estimators", __doc__.splitlines()[0])
