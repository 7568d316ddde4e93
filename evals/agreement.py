"""Agreement between the judge and people, the paper's evaluation, on stored runs.

Statistics come from scikit-learn (accuracy, Cohen's kappa plain / linear / quadratic,
confusion matrices, precision and recall) and krippendorff (ordinal alpha); confidence
intervals are percentile bootstraps that resample queries, not pairs, because pairs of one
query share requirements and guidelines and are not independent.

The majority vote of several annotators breaks ties with an annotator named "tiebreaker"
when there is one, else by a stated rule (`TIE_RULES`): by default the median of all the
annotators' labels (ratings 2, 3, 4 → the middle label, as the median rating says).

Interval arithmetic is done on per-query counts with numpy (`fast_bootstrap`): resampling
queries only reweights each query's 3×3 confusion matrix, so 1,000 resamples of 100,000
pairs take a matrix product instead of 1,000 passes through scikit-learn. Point figures
stay scikit-learn's and krippendorff's.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from itertools import combinations
from typing import Any

import krippendorff
import numpy as np
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    precision_recall_fscore_support,
)

from raer.evals.resampling import each_draw, query_draws
from raer.evals.rows import JudgedPair
from raer.nodes.schemas import TIE_RULES
from raer.store import Store
from raer.store.reviews import effective_label
from raer.store.scale import LABELS, ORDER, ORDERED

ESCI_RAW = ["E", "S", "C", "I"]


@dataclass
class Item(JudgedPair):
    """One judged pair with its human labels."""

    product_id: str
    title: str
    status: str
    judge: str | None
    reasoning: str = ""
    guidelines_key: str = ""
    humans: dict[str, str] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)
    ties: str = "median"
    loo_estimate: float | None = None

    @cached_property
    def majority(self) -> str:
        return majority_vote(self.humans, self.ties)

    @property
    def judged(self) -> bool:
        return self.judge in ORDER

    @property
    def distance(self) -> int:
        return abs(ORDER[self.judge] - ORDER[self.majority]) if self.judged else 0


def majority_vote(humans: dict[str, str], ties: str = "median") -> str:
    """The most common label; a tie goes to the "tiebreaker" annotator's label when it is
    among the tied ones, else by `ties`: "median" (the median of all the labels, the lower
    middle one for an even count of differing labels), "lower" or "higher" of the tied."""
    return _vote(tuple(sorted(humans.values())), humans.get("tiebreaker"), ties)


@lru_cache(maxsize=4096)
def _vote(labels: tuple[str, ...], tiebreaker: str | None, ties: str) -> str:
    counts = Counter(labels)
    best = max(counts.values())
    tied = [label for label, n in counts.items() if n == best]
    if len(tied) == 1:
        return tied[0]
    if tiebreaker in tied:
        return tiebreaker
    if ties == "lower":
        return min(tied, key=ORDER.__getitem__)
    if ties == "higher":
        return max(tied, key=ORDER.__getitem__)
    if ties != "median":
        raise ValueError(f"ties must be one of {TIE_RULES}, not {ties!r}")
    codes = sorted(ORDER[label] for label in labels)
    middle = len(codes) // 2
    median = codes[middle] if len(codes) % 2 else (codes[middle - 1] + codes[middle]) / 2
    return ORDERED[math.floor(median)]


def load_items(store: Store, run_id: str, source: str = "", split: str = "",
               ties: str = "median", labels: str = "judge") -> list[Item]:
    """The run's judgments that have human labels (optionally of one source and split).

    `labels`: "judge" scores the judge's own labels; "effective" scores what the pipeline
    hands on with people in the loop — a resolved review's label over the judge's
    (store/reviews.py)."""
    if labels not in ("judge", "effective"):
        raise ValueError(f"labels must be judge or effective, not {labels!r}")
    items: dict[str, Item] = {}
    for (jid, qid, text, language, query_type, engine, pid, title, status, label, reasoning,
         guidelines_key, annotator, human, raw, estimate, review_status,
         reviewed) in store.labelled_judgments(run_id, source, split):
        if labels == "effective":  # the one rule (store/reviews.py): a resolved review wins
            chosen = effective_label({"review_status": review_status, "human_label": reviewed,
                                      "status": status, "label": label})
            if chosen.provenance.startswith("reviewer"):
                status, label = "done", chosen.label
        item = items.get(jid)
        if item is None:
            item = items[jid] = Item(jid, qid, text, language, query_type or "", engine or "",
                                     pid, title, status, label, reasoning or "",
                                     guidelines_key or "", ties=ties)
        item.humans[annotator] = human
        item.raw[annotator] = raw
        if estimate is not None:
            item.loo_estimate = estimate
    return list(items.values())


# ------------------------------------------------------------------ point statistics

def _codes(labels: Iterable[str]) -> np.ndarray:
    return np.fromiter((ORDER[label] for label in labels), dtype=np.int64)


def _pairs(items: list[Item]) -> tuple[np.ndarray, np.ndarray]:
    """(human majority, judge) as codes 0/1/2 for the judged items; scikit-learn is much
    faster on small integers than on label strings, and gives the same figures."""
    judged = [i for i in items if i.judged]
    return _codes(i.majority for i in judged), _codes(i.judge for i in judged)


def _kappa(y_true: np.ndarray, y_pred: np.ndarray, weights: str | None) -> float:
    if not len(y_true) or len(np.union1d(y_true, y_pred)) < 2:
        return math.nan
    return float(cohen_kappa_score(y_true, y_pred, labels=[0, 1, 2], weights=weights))


def krippendorff_ordinal(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    if len(np.union1d(y_true, y_pred)) < 2:
        return math.nan
    data = np.array([y_true, y_pred], dtype=float)
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal",
                                    value_domain=[0, 1, 2]))


def agreement(items: list[Item]) -> float:
    y_true, y_pred = _pairs(items)
    return float(accuracy_score(y_true, y_pred)) if len(y_true) else math.nan


def matches_any(items: list[Item]) -> float:
    judged = [i for i in items if i.judged]
    return float(np.mean([i.judge in i.humans.values() for i in judged])) if judged else math.nan


def quadratic_kappa(items: list[Item]) -> float:
    return _kappa(*_pairs(items), "quadratic")


def human_pairwise(items: list[Item]) -> float:
    """Mean agreement over annotator pairs, on pairs with two or more annotators."""
    scores = []
    for item in items:
        labelled = [v for k, v in item.humans.items() if k != "tiebreaker"]
        scores += [a == b for a, b in combinations(labelled, 2)]
    return float(np.mean(scores)) if scores else math.nan


def human_leave_one_out(items: list[Item]) -> float:
    """Each rater against the majority of the other raters, on pairs with two or more.

    This is the ceiling comparable to the judge's score (the judge is scored against a
    majority too); rater-against-rater agreement (`human_pairwise`) is not."""
    hits = total = 0
    for item in items:
        labels = tuple(sorted(v for k, v in item.humans.items() if k != "tiebreaker"))
        if len(labels) >= 2:
            hit, count = _leave_one_out(labels, item.ties)
            hits, total = hits + hit, total + count
    return hits / total if total else math.nan


def human_ceiling(items: list[Item]) -> tuple[float, bool]:
    """(rater-vs-others agreement, estimated?): from individual ratings where a pair has
    them, else the import's estimate from aggregate and spread (evals/ceiling.py)."""
    observed = human_leave_one_out(items)
    if not math.isnan(observed):
        return observed, False
    estimates = [i.loo_estimate for i in items if i.loo_estimate is not None]
    return (float(np.mean(estimates)), True) if estimates else (math.nan, False)


@lru_cache(maxsize=4096)
def _leave_one_out(labels: tuple[str, ...], ties: str) -> tuple[int, int]:
    hits = sum(label == _vote(labels[:k] + labels[k + 1:], None, ties)
               for k, label in enumerate(labels))
    return hits, len(labels)


def _raw_order(raw: str, label: str) -> tuple:
    """Original labels sorted by the raer label they map to (best first), then ESCI's own
    order, then numerically (highest first), then as text: the same layout on every run."""
    try:
        number = -float(raw)
    except ValueError:
        number = 0.0
    return (-ORDER.get(label, -1), ESCI_RAW.index(raw) if raw in ESCI_RAW else 99, number, raw)


def raw_confusion(judged: list[Item]) -> dict[str, Any]:
    """Original labels × judge, every annotator's label counted once."""
    counts: Counter[tuple[str, str]] = Counter()
    mapped: dict[str, str] = {}
    for item in judged:
        for annotator, raw in item.raw.items():
            counts[(raw, item.judge)] += 1
            mapped.setdefault(raw, item.humans.get(annotator, ""))
    rows = sorted(mapped, key=lambda r: _raw_order(r, mapped[r]))
    annotators = sorted({a for i in judged for a in i.raw})
    return {"rows": rows, "columns": ORDERED, "annotators": annotators,
            "matrix": [[counts[(r, c)] for c in ORDERED] for r in rows]}


def point_metrics(items: list[Item]) -> dict[str, Any]:
    judged = [i for i in items if i.judged]
    y_true, y_pred = _pairs(items)
    precision, recall, _, support = (precision_recall_fscore_support(
        y_true, y_pred, labels=[0, 1, 2], zero_division=0) if judged else ([], [], [], []))
    kept = [i for i in judged if i.status != "escalated"]
    return {
        "pairs": len(items), "queries": len({i.query_id for i in items}),
        "judged": len(judged), "failed": sum(i.status == "failed" for i in items),
        "cannot_judge": sum(i.judge == "cannot judge" for i in items),
        "escalated": sum(i.status == "escalated" for i in items),
        "agreement": agreement(items), "matches_any": matches_any(items),
        "kappa": _kappa(y_true, y_pred, None), "kappa_linear": _kappa(y_true, y_pred, "linear"),
        "kappa_quadratic": _kappa(y_true, y_pred, "quadratic"),
        "alpha_ordinal": krippendorff_ordinal(y_true, y_pred) if judged else math.nan,
        "human_pairwise": human_pairwise(items),
        **dict(zip(("human_loo", "human_loo_estimated"), human_ceiling(items), strict=True)),
        "agreement_kept": agreement(kept), "kept": len(kept),
        "hard_disagreements": sum(i.distance == 2 for i in judged),
        "confusion": confusion_matrix(y_true, y_pred, labels=[0, 1, 2]).tolist() if judged
        else [[0] * 3 for _ in range(3)],
        "confusion_raw": raw_confusion(judged),
        "per_label": {label: {"precision": float(p), "recall": float(r), "support": int(s)}
                      for label, p, r, s in zip(ORDERED, precision, recall, support,
                                                strict=False)},
        "judge_labels": dict(Counter(i.judge or "failed" for i in items)),
        "human_labels": dict(Counter(i.majority for i in items)),
    }


# ------------------------------------------------------------------ bootstrap over queries

def bootstrap_distribution(items: list[Item], statistic: Callable[[list[Item]], float],
                           resamples: int = 1000, seed: int = 0) -> np.ndarray:
    by_query: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        by_query[item.query_id].append(item)
    queries = list(by_query)
    if not queries:
        return np.array([])
    values = []
    for drawn in each_draw(len(queries), resamples, seed):
        sample = [item for index in drawn for item in by_query[queries[index]]]
        values.append(statistic(sample))
    return np.array(values, dtype=float)


def bootstrap_ci(items: list[Item], statistic: Callable[[list[Item]], float],
                 resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    values = bootstrap_distribution(items, statistic, resamples, seed)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (math.nan, math.nan)
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def _query_counts(items: list[Item]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per query: the 3×3 confusion counts (human majority × judge, judged pairs), the pairs
    whose label some annotator gave, and the judged pairs."""
    index: dict[str, int] = {}
    rows, matches = [], []
    for item in items:
        q = index.setdefault(item.query_id, len(index))
        if item.judged:
            rows.append((q, ORDER[item.majority] * 3 + ORDER[item.judge]))
            matches.append((q, item.judge in item.humans.values()))
    confusion = np.zeros((len(index), 9))
    match = np.zeros(len(index))
    if rows:
        q_idx, cell = np.array(rows).T
        np.add.at(confusion, (q_idx, cell), 1)
        m_idx, hit = np.array(matches, dtype=int).T
        np.add.at(match, m_idx, hit)
    return confusion, match, confusion.sum(axis=1)


def _quadratic_kappa_from(confusion: np.ndarray) -> np.ndarray:
    """Cohen's quadratic κ of each row of (resamples × 9) confusion counts; NaN where it is
    undefined (one class), as scikit-learn's gives through `_kappa`."""
    matrix = confusion.reshape(-1, 3, 3)
    total = matrix.sum(axis=(1, 2))
    weights = np.array([[(i - j) ** 2 for j in range(3)] for i in range(3)], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.einsum("ri,rj->rij", matrix.sum(axis=2), matrix.sum(axis=1)) / total[
            :, None, None]
        observed_cost = (matrix * weights).sum(axis=(1, 2))
        expected_cost = (expected * weights).sum(axis=(1, 2))
        kappa = 1 - observed_cost / expected_cost
    return np.where(expected_cost > 0, kappa, np.nan)


def fast_bootstrap(items: list[Item], resamples: int = 1000,
                   seed: int = 0) -> dict[str, np.ndarray]:
    """Agreement, matches-any and quadratic κ under `resamples` draws of queries with
    replacement, from per-query counts (one matrix product, no per-resample Python)."""
    confusion, match, judged = _query_counts(items)
    n = len(confusion)
    if not n:
        return {name: np.array([]) for name in ("agreement", "matches_any", "kappa_quadratic")}
    weights = np.zeros((resamples, n))
    start = 0
    for drawn in query_draws(n, resamples, seed):  # in blocks: bounded memory
        flat = (drawn + n * np.arange(len(drawn))[:, None]).ravel()
        weights[start:start + len(drawn)] = np.bincount(
            flat, minlength=len(drawn) * n).reshape(len(drawn), n)
        start += len(drawn)
    sampled = weights @ confusion
    total = weights @ judged
    with np.errstate(divide="ignore", invalid="ignore"):
        agreement_values = sampled[:, [0, 4, 8]].sum(axis=1) / total
        matches_values = (weights @ match) / total
    return {"agreement": agreement_values, "matches_any": matches_values,
            "kappa_quadratic": _quadratic_kappa_from(sampled)}


def percentile_ci(values: np.ndarray) -> tuple[float, float]:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (math.nan, math.nan)
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def metrics_with_ci(items: list[Item], resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    result = point_metrics(items)
    for name, values in fast_bootstrap(items, resamples, seed).items():
        result[f"{name}_ci"] = percentile_ci(values)
    return result


def breakdown(items: list[Item], resamples: int = 1000) -> dict[str, dict[str, Any]]:
    """Overall, then per language, per query type and per engine (where there are several).

    A group holding every pair (one language, say) is not computed again: the overall
    figures carry its name in `same_as_overall`."""
    groups: dict[str, list[Item]] = {"overall": items}
    same: list[str] = []
    for attribute, prefix in (("language", "language"), ("query_type", "query type"),
                              ("engine", "engine")):
        values = sorted({getattr(i, attribute) for i in items})
        if len(values) == 1 and attribute == "language":
            same.append(f"{prefix}: {values[0] or '-'}")
        elif len(values) > 1:
            for value in values:
                groups[f"{prefix}: {value or '-'}"] = [
                    i for i in items if getattr(i, attribute) == value]
    results = {name: metrics_with_ci(group, resamples) for name, group in groups.items()}
    results["overall"]["same_as_overall"] = same
    return results


def hard_disagreements(items: list[Item]) -> list[Item]:
    return [i for i in items if i.judged and i.distance == 2]


__all__ = ["LABELS", "TIE_RULES", "Item", "agreement", "bootstrap_ci", "bootstrap_distribution",
           "breakdown", "fast_bootstrap", "hard_disagreements", "human_leave_one_out",
           "load_items", "majority_vote", "point_metrics"]
