"""Per-purpose random generators, so that seed i's numbers never depend on its neighbours.

Every random draw of the benchmark (teacher initialization, data order, the student's random
parts, evaluation noise) comes from a generator derived from the tuple
(suite seed, scenario, seed index, purpose). Draws are made one seed at a time, outside any
vmapped function, and stacked; seed i therefore draws the same numbers whether it runs among
4 or 256 seeds, alone or in chunks.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import torch


def _text_key(text: str) -> int:
    # Python's hash() is salted per process, so a stable checksum is used instead.
    return zlib.crc32(text.encode("utf-8"))


def derive_seed(suite_seed: int, scenario: str, seed_index: int, purpose: str) -> int:
    """Return a 63-bit integer seed for one (suite seed, scenario, seed index, purpose).

    `numpy.random.SeedSequence` mixes the four entries so that nearby tuples give
    unrelated streams.
    """
    entropy = [int(suite_seed), _text_key(scenario), int(seed_index), _text_key(purpose)]
    state = np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def generator(suite_seed: int, scenario: str, seed_index: int, purpose: str) -> torch.Generator:
    """Return a CPU `torch.Generator` for one seed and purpose."""
    return torch.Generator().manual_seed(derive_seed(suite_seed, scenario, seed_index, purpose))


def generators(
    suite_seed: int, scenario: str, seed_indices: Sequence[int], purpose: str
) -> list[torch.Generator]:
    """Return one generator per seed index, in the order given."""
    return [generator(suite_seed, scenario, i, purpose) for i in seed_indices]
