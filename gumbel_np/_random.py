"""Philox keys from the ``rng`` argument (Scientific Python convention)."""

from __future__ import annotations

import functools
import numbers
from typing import Union

import numpy as np

RNGLike = Union[None, int, np.integer, np.random.SeedSequence, np.random.Generator]


def philox_key(rng: RNGLike, func: str) -> tuple[int, int]:
    """The two 32-bit Philox key words selected by ``rng``.

    * ``None``: fresh entropy from the operating system;
    * an ``int`` (>= 0) or a ``SeedSequence``: a fixed key, the same at every
      call (``SeedSequence(seed).generate_state(2, uint32)``);
    * a ``Generator``: a 64-bit key drawn from it, so successive calls differ
      and the generator advances.
    """
    if type(rng) is int and rng >= 0:
        return _seed_key(rng)  # the common case first (isinstance on an ABC is slow)
    if isinstance(rng, np.random.Generator):
        word = int(rng.integers(0, 2**64, dtype=np.uint64))
        return word & 0xFFFFFFFF, word >> 32
    if rng is None:
        seq = np.random.SeedSequence()
    elif isinstance(rng, np.random.SeedSequence):
        seq = rng
    elif isinstance(rng, (numbers.Integral, np.integer)) and not isinstance(rng, (bool, np.bool_)):
        if int(rng) < 0:
            raise ValueError(f"{func}: an integer rng seed must be non-negative, got {rng}")
        return _seed_key(int(rng))
    else:
        raise TypeError(
            f"{func}: rng must be None, a non-negative int, a numpy.random.SeedSequence or a "
            f"numpy.random.Generator, not {type(rng).__module__}.{type(rng).__name__} ({rng!r})"
        )
    k0, k1 = seq.generate_state(2, np.uint32)
    return int(k0), int(k1)


@functools.lru_cache(maxsize=256)
def _seed_key(seed: int) -> tuple[int, int]:
    """The key of an integer seed (a pure function of it, cached: building a
    ``SeedSequence`` costs several microseconds, most of a small call)."""
    k0, k1 = np.random.SeedSequence(seed).generate_state(2, np.uint32)
    return int(k0), int(k1)
