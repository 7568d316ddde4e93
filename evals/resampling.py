"""The one resampling of raer's statistics: queries drawn with replacement, and the
percentile interval of what was computed on each draw.

Pairs of one query are not independent (same requirements, guidelines, judge prompt), so
every interval resamples queries, not pairs: agreement with people, an ablation's difference,
an engine's mean measure and a comparison's delta. They had four implementations; they now
draw here. The draws are the same stream whatever the chunking (numpy's generator fills an
(m × n) block as m draws of n), so intervals are unchanged by it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

CHUNK = 256  # draws at a time: bounded memory for large query sets


def query_draws(queries: int, resamples: int, seed: int = 0) -> Iterator[np.ndarray]:
    """Blocks (at most CHUNK × `queries`) of query indices, `resamples` draws in all, each
    draw `queries` indices with replacement."""
    rng = np.random.default_rng(seed)
    for start in range(0, resamples, CHUNK):
        yield rng.integers(0, queries, size=(min(CHUNK, resamples - start), queries))


def each_draw(queries: int, resamples: int, seed: int = 0) -> Iterator[np.ndarray]:
    """The draws one by one (for a statistic computed in Python per draw)."""
    for block in query_draws(queries, resamples, seed):
        yield from block


def all_draws(queries: int, resamples: int, seed: int = 0) -> np.ndarray:
    """Every draw as one (resamples × queries) array (for a vectorised statistic)."""
    return np.concatenate(list(query_draws(queries, resamples, seed)))


def percentile_interval(values: np.ndarray | list[float]) -> tuple[float, float]:
    """The 95% percentile interval (2.5th, 97.5th)."""
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)
