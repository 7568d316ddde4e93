"""Which pairs should people label under a budget? A stratified, uncertainty-weighted sample
with known inclusion probabilities.

Strata are (query, engine): the budget is split across them in proportion to their pairs
(largest remainders, at least one pair per stratum while the budget lasts), so every query
and engine is represented. Within a stratum, pairs are drawn by systematic sampling with
probability proportional to size (Madow's method), the size being the judge's uncertainty:
1 − confidence, plus a floor so confident pairs can still be drawn, and the most for pairs
the judge could not judge or that were escalated. Each drawn pair carries its exact
inclusion probability π (capped at 1, the rest re-spread), so estimates from the labelled
sample can be reweighted by 1/π (Horvitz–Thompson) — what bias-corrected estimates need.
Sampling libraries on PyPI either draw without inclusion probabilities (numpy's choice) or
pull in survey frameworks far larger than these forty lines.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from raer.store import Store
from raer.store.scale import LABELS

FLOOR = 0.1  # the weight of a pair the judge is sure of, so it can still be drawn


@dataclass(frozen=True)
class Drawn:
    judgment_id: str
    query_id: str
    engine: str
    inclusion: float
    weight: float


def uncertainty(row: dict[str, Any]) -> float:
    if row["status"] == "escalated" or row["label"] not in LABELS:
        return 1.0 + FLOOR
    return max(0.0, 1.0 - float(row["confidence"] or 0.0)) + FLOOR


def inclusion_probabilities(sizes: np.ndarray, n: int) -> np.ndarray:
    """π_i = n·s_i/Σs, with pairs whose π would reach 1 taken for certain and the rest of n
    re-spread over the others."""
    pi = np.zeros(len(sizes))
    certain = np.zeros(len(sizes), dtype=bool)
    n = min(n, len(sizes))
    while True:
        left = n - certain.sum()
        rest = ~certain
        total = sizes[rest].sum()
        pi[rest] = left * sizes[rest] / total if total > 0 else left / rest.sum()
        over = rest & (pi >= 1.0)
        if not over.any():
            break
        certain |= over
    pi[certain] = 1.0
    return pi


def systematic(pi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices drawn with inclusion probabilities pi (which sum to a whole number)."""
    order = rng.permutation(len(pi))
    cumulative = np.concatenate([[0.0], np.cumsum(pi[order])])
    points = rng.uniform() + np.arange(round(cumulative[-1]))
    hits = np.searchsorted(cumulative, points, side="right") - 1
    return np.sort(order[np.unique(hits)])


def allocate(sizes: dict[Any, int], budget: int) -> dict[Any, int]:
    total = sum(sizes.values())
    if budget >= total:
        return dict(sizes)
    shares = {k: budget * v / total for k, v in sizes.items()}
    out = {k: min(sizes[k], int(s)) for k, s in shares.items()}
    if budget >= len(sizes):  # every stratum at least once
        out = {k: max(1, v) for k, v in out.items()}
    by_remainder = sorted(sizes, key=lambda k: (shares[k] - int(shares[k]), sizes[k]),
                          reverse=True)
    while sum(out.values()) > budget:  # the floor of one overshot: take from the largest
        largest = max((k for k in out if out[k] > 1), key=lambda k: out[k] - shares[k])
        out[largest] -= 1
    for k in by_remainder:
        if sum(out.values()) >= budget:
            break
        if out[k] < sizes[k]:
            out[k] += 1
    return out


def sample_for_people(store: Store, run_id: str, budget: int, seed: int = 0) -> list[Drawn]:
    rows = store.judged_for_sampling(run_id)
    strata: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        strata[(row["query_id"], row["engine"] or "")].append(row)
    plan = allocate({k: len(v) for k, v in strata.items()}, budget)
    rng = np.random.default_rng(seed)
    drawn = []
    for key in sorted(strata):
        members, n = strata[key], plan.get(key, 0)
        if n == 0:
            continue
        pi = inclusion_probabilities(np.array([uncertainty(r) for r in members]), n)
        for i in systematic(pi, rng):
            r = members[i]
            drawn.append(Drawn(r["id"], r["query_id"], r["engine"] or "", float(pi[i]),
                               1.0 / float(pi[i])))
    return drawn
