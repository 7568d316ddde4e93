"""Agreement between the judge and people, the paper's evaluation, on stored runs.

Statistics come from scikit-learn (accuracy, Cohen's kappa plain / linear / quadratic,
confusion matrices, precision and recall) and krippendorff (ordinal alpha); confidence
intervals are percentile bootstraps that resample queries, not pairs, because pairs of one
query share requirements and guidelines and are not independent.

The majority vote of several annotators breaks ties with an annotator named "tiebreaker"
when there is one, else with the lower (more conservative) label.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
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

from raer.nodes.schemas import LABELS
from raer.store import Store

ORDER = {"irrelevant": 0, "acceptable substitute": 1, "highly relevant": 2}
ORDERED = ["irrelevant", "acceptable substitute", "highly relevant"]
ESCI_RAW = ["E", "S", "C", "I"]


@dataclass
class Item:
    """One judged pair with its human labels."""

    judgment_id: str
    query_id: str
    query: str
    language: str
    query_type: str
    engine: str
    product_id: str
    title: str
    status: str
    judge: str | None
    reasoning: str = ""
    guidelines_key: str = ""
    humans: dict[str, str] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def majority(self) -> str:
        return majority_vote(self.humans)

    @property
    def judged(self) -> bool:
        return self.judge in ORDER

    @property
    def distance(self) -> int:
        return abs(ORDER[self.judge] - ORDER[self.majority]) if self.judged else 0


def majority_vote(humans: dict[str, str]) -> str:
    counts = Counter(humans.values())
    best = max(counts.values())
    tied = [label for label, n in counts.items() if n == best]
    if len(tied) == 1:
        return tied[0]
    if humans.get("tiebreaker") in tied:
        return humans["tiebreaker"]
    return min(tied, key=ORDER.__getitem__)


def load_items(store: Store, run_id: str, source: str = "", split: str = "") -> list[Item]:
    """The run's judgments that have human labels (optionally of one source and split)."""
    sql = """select j.id, j.query_id, q.text, q.language, q.query_type, j.engine,
                    j.product_id, p.title, j.status, j.label, j.reasoning, j.guidelines_key,
                    h.annotator, h.label as human, h.raw_label
             from judgments j join human_labels h
               on h.query_id = j.query_id and h.product_id = j.product_id
             join queries q on q.id = j.query_id join products p on p.id = j.product_id
             where j.run_id = ?"""
    params: list[Any] = [run_id]
    if source:
        sql += " and h.source = ?"
        params.append(source)
    if split:
        sql += " and h.split = ?"
        params.append(split)
    items: dict[str, Item] = {}
    for r in store.rows(sql, params):
        item = items.get(r["id"])
        if item is None:
            item = items[r["id"]] = Item(
                r["id"], r["query_id"], r["text"], r["language"], r["query_type"] or "",
                r["engine"] or "", r["product_id"], r["title"], r["status"], r["label"],
                r["reasoning"] or "", r["guidelines_key"] or "")
        item.humans[r["annotator"]] = r["human"]
        item.raw[r["annotator"]] = r["raw_label"]
    return list(items.values())


# ------------------------------------------------------------------ point statistics

def _codes(labels: Iterable[str]) -> list[int]:
    return [ORDER[label] for label in labels]


def _kappa(y_true: list[str], y_pred: list[str], weights: str | None) -> float:
    if not y_true or len(set(y_true) | set(y_pred)) < 2:
        return math.nan
    return float(cohen_kappa_score(_codes(y_true), _codes(y_pred), labels=[0, 1, 2],
                                   weights=weights))


def krippendorff_ordinal(y_true: list[str], y_pred: list[str]) -> float:
    if len(set(y_true) | set(y_pred)) < 2:
        return math.nan
    data = np.array([_codes(y_true), _codes(y_pred)], dtype=float)
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal",
                                    value_domain=[0, 1, 2]))


def agreement(items: list[Item]) -> float:
    judged = [i for i in items if i.judged]
    if not judged:
        return math.nan
    return float(accuracy_score([i.majority for i in judged], [i.judge for i in judged]))


def matches_any(items: list[Item]) -> float:
    judged = [i for i in items if i.judged]
    return float(np.mean([i.judge in i.humans.values() for i in judged])) if judged else math.nan


def quadratic_kappa(items: list[Item]) -> float:
    judged = [i for i in items if i.judged]
    return _kappa([i.majority for i in judged], [i.judge for i in judged], "quadratic")


def human_pairwise(items: list[Item]) -> float:
    """Mean agreement over annotator pairs, on pairs with two or more annotators."""
    scores = []
    for item in items:
        labelled = [v for k, v in item.humans.items() if k != "tiebreaker"]
        scores += [a == b for a, b in combinations(labelled, 2)]
    return float(np.mean(scores)) if scores else math.nan


def point_metrics(items: list[Item]) -> dict[str, Any]:
    judged = [i for i in items if i.judged]
    y_true, y_pred = [i.majority for i in judged], [i.judge for i in judged]
    precision, recall, _, support = (precision_recall_fscore_support(
        y_true, y_pred, labels=ORDERED, zero_division=0) if judged else ([], [], [], []))
    kept = [i for i in judged if i.status != "escalated"]
    raw_rows = sorted({r for i in judged for r in i.raw.values()},
                      key=lambda r: ESCI_RAW.index(r) if r in ESCI_RAW else 99)
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
        "agreement_kept": agreement(kept), "kept": len(kept),
        "hard_disagreements": sum(i.distance == 2 for i in judged),
        "confusion": confusion_matrix(y_true, y_pred, labels=ORDERED).tolist() if judged
        else [[0] * 3 for _ in range(3)],
        "confusion_raw": {"rows": raw_rows, "columns": ORDERED, "matrix": [
            [sum(1 for i in judged if next(iter(i.raw.values())) == r and i.judge == c)
             for c in ORDERED] for r in raw_rows]},
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
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        drawn = rng.integers(0, len(queries), size=len(queries))
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


def metrics_with_ci(items: list[Item], resamples: int = 1000) -> dict[str, Any]:
    result = point_metrics(items)
    for name, statistic in (("agreement", agreement), ("matches_any", matches_any),
                            ("kappa_quadratic", quadratic_kappa)):
        result[f"{name}_ci"] = bootstrap_ci(items, statistic, resamples)
    return result


def breakdown(items: list[Item], resamples: int = 1000) -> dict[str, dict[str, Any]]:
    """Overall, then per language, per query type and per engine (where there are several)."""
    groups: dict[str, list[Item]] = {"overall": items}
    for attribute, prefix in (("language", "language"), ("query_type", "query type"),
                              ("engine", "engine")):
        values = sorted({getattr(i, attribute) for i in items})
        if len(values) > 1 or (attribute == "language" and values):
            for value in values:
                groups[f"{prefix}: {value or '-'}"] = [
                    i for i in items if getattr(i, attribute) == value]
    return {name: metrics_with_ci(group, resamples) for name, group in groups.items()}


def hard_disagreements(items: list[Item]) -> list[Item]:
    return [i for i in items if i.judged and i.distance == 2]


__all__ = ["LABELS", "Item", "agreement", "bootstrap_ci", "bootstrap_distribution",
           "breakdown", "hard_disagreements", "load_items", "majority_vote", "point_metrics"]
