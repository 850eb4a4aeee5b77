"""Softmax, log_softmax, logsumexp, their backward passes and Gumbel noise:
gumbel_np against NumPy/SciPy (and PyTorch when installed) and a plain memory
copy of the same bytes, float32 4096x1024, 65536x128, 256x50257, 1000000x10.

    python bench/bench_softmax.py [--quick] [--threads 2] [--json FILE] [--markdown FILE]
"""

from _script import main

if __name__ == "__main__":
    main("softmax", __doc__.splitlines()[0])
