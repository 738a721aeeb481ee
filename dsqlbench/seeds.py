"""Every random draw in a simulated run comes from here.

One run seed derives one independent ``numpy.random.Generator`` per named stream
(``stream(seed, "network/cross_az")``). The name is turned into numbers with SHA-256,
never with ``hash()``, which is salted per process. Streams are independent, so adding
a draw to one component does not shift the draws of another.

Drawing one value at a time from numpy costs about a microsecond, so hot paths draw in
blocks through ``BufferedDraws``; the sequence of values is the same whatever the block
size, as long as the consumer consumes in the same order.
"""

from __future__ import annotations

import hashlib
import itertools
from typing import Callable

import numpy as np

BLOCK_SIZE = 4096


def stream_key(name: str) -> tuple[int, int]:
    """Two stable 32-bit words naming a stream (independent of PYTHONHASHSEED)."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "little"), int.from_bytes(digest[4:8], "little")


def stream(seed: int, name: str) -> np.random.Generator:
    """The generator for stream ``name`` of run ``seed``."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    sequence = np.random.SeedSequence(entropy=seed, spawn_key=stream_key(name))
    return np.random.Generator(np.random.PCG64(sequence))


class BufferedDraws:
    """Hands out values one by one from blocks drawn by ``draw_block(n)``.

    ``draw_block`` must return a numpy array of length ``n``; values are returned as
    Python scalars (``tolist`` once per block is far cheaper than indexing numpy), or
    as lists for a 2-D block's rows. ``next`` is a C-level iterator's ``__next__``
    over the blocks chained end to end: the hottest call of the lab costs no Python
    frame.
    """

    __slots__ = ("next",)

    def __init__(self, draw_block: Callable[[int], np.ndarray], block_size: int = BLOCK_SIZE):
        assert block_size > 0
        blocks = iter(lambda: draw_block(block_size).tolist(), None)  # never None: endless
        self.next: Callable[[], object] = itertools.chain.from_iterable(blocks).__next__
