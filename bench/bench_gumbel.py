"""Gumbel-Softmax (soft, hard, backward) and categorical sampling: gumbel_np
against NumPy, PyTorch and JAX (when installed) and a plain memory copy of the
same bytes, float32 4096x1024, 65536x128, 256x50257, 1000000x10.

    python bench/bench_gumbel.py [--quick] [--threads 2] [--json FILE] [--markdown FILE]
"""

from _script import main

if __name__ == "__main__":
    main("gumbel", __doc__.splitlines()[0])
