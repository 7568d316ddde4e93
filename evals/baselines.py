"""Baselines that give every agreement number a floor, stored as ordinary runs.

- majority: always the most common human label of the fitting split;
- lexical: token overlap between the query and the product's title, brand, colour and
  category, with two thresholds (substitute, highly relevant) fitted on the fitting split.
Their predictions are written as judgments of a run named after the baseline and its fit,
so `raer agree` and reports treat them exactly like model runs.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from raer.evals.agreement import ORDERED, majority_vote
from raer.nodes.common import judgment_id
from raer.store import Store

_TOKEN = re.compile(r"[0-9a-zà-ÿß]+")


def tokens(text: str) -> set[str]:
    return set(_TOKEN.findall((text or "").casefold()))


def overlap(query: str, product: dict[str, Any]) -> float:
    wanted = tokens(query)
    if not wanted:
        return 0.0
    have = tokens(" ".join(product.get(k) or "" for k in ("title", "brand", "colour",
                                                           "category")))
    return len(wanted & have) / len(wanted)


def labelled_pairs(store: Store, source: str, split: str = "",
                   ties: str = "median") -> list[dict[str, Any]]:
    """One row per labelled (query, product) with the human labels gathered."""
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    for r in store.human_label_rows(source, split):
        pair = pairs.setdefault((r["query_id"], r["product_id"]), {**r, "humans": {}})
        pair["humans"][r["annotator"]] = r["label"]
    for pair in pairs.values():
        pair["majority"] = majority_vote(pair["humans"], ties)
    return list(pairs.values())


def lexical_label(score: float, low: float, high: float) -> str:
    return ORDERED[2] if score >= high else ORDERED[1] if score >= low else ORDERED[0]


def fit_lexical(pairs: list[dict[str, Any]]) -> tuple[float, float, float]:
    """(low, high, accuracy) maximising agreement with the majority label on these pairs."""
    scores = [(overlap(p["query"], p), p["majority"]) for p in pairs]
    grid = [i / 20 for i in range(21)] + [1.01]
    best = (0.0, 0.0, -1.0)
    for low in grid:
        for high in grid:
            if high < low:
                continue
            hits = sum(lexical_label(s, low, high) == m for s, m in scores)
            accuracy = hits / len(scores) if scores else 0.0
            if accuracy > best[2]:
                best = (low, high, accuracy)
    return best


def score_confidence(fit_pairs: list[dict[str, Any]], low: float, high: float,
                     min_pairs: int = 10) -> Callable[[float], float]:
    """A calibrated confidence for the lexical baseline: the share of fitting pairs with the
    same overlap score (two decimals) whose human majority is the label predicted for that
    score; scores seen fewer than `min_pairs` times use the predicted label's share."""
    by_score: dict[float, list[bool]] = defaultdict(list)
    by_label: dict[str, list[bool]] = defaultdict(list)
    for p in fit_pairs:
        score = overlap(p["query"], p)
        label = lexical_label(score, low, high)
        by_score[round(score, 2)].append(label == p["majority"])
        by_label[label].append(label == p["majority"])

    def confidence(score: float) -> float:
        hits = by_score.get(round(score, 2), [])
        if len(hits) < min_pairs:
            hits = by_label.get(lexical_label(score, low, high), []) or [False]
        return round(sum(hits) / len(hits), 4)

    return confidence


def _write_run(store: Store, run_id: str, settings: dict[str, Any], model: str,
               predictions: list[tuple[dict[str, Any], str, float]]) -> str:
    store.ensure_run(run_id, settings, {"judge": model}, {})
    store.write_baseline_judgments([{
        "id": judgment_id(run_id, pair["query_id"], "", pair["product_id"]), "run_id": run_id,
        "query_id": pair["query_id"], "product_id": pair["product_id"], "engine": "",
        "status": "done", "label": label, "confidence": confidence, "model": model,
        "prompt_hash": None, "reasoning": settings.get("explain", "")}
        for pair, label, confidence in predictions])
    return run_id


def _run_name(kind: str, settings: dict[str, Any]) -> str:
    """Named by everything that changes the baseline's output: its fit, the source, the
    split it fits on and the split it predicts, the tie rule (so dev and test predictions
    never share a run)."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    return f"baseline-{kind}-{digest}"


def _pairs_of(store: Store, source: str, split: str, ties: str, option: str
              ) -> list[dict[str, Any]]:
    pairs = labelled_pairs(store, source, split, ties)
    if pairs:
        return pairs
    splits = store.human_splits(source)
    if not splits:
        raise ValueError(f"no human labels of source {source!r} (see `raer labels import`)")
    shown = ", ".join(repr(s) for s in splits)
    raise ValueError(f"source {source!r} has no split {split!r} (it has: {shown}); pass "
                     f"{option} one of those, {option} '' for all labels, or re-import "
                     f"with --split-by-query 0.6")


def run_majority_baseline(store: Store, source: str, fit_split: str, split: str,
                          ties: str = "median") -> str:
    fitted = Counter(p["majority"]
                     for p in _pairs_of(store, source, fit_split, ties, "--fit-split"))
    label, count = fitted.most_common(1)[0]
    share = round(count / sum(fitted.values()), 4)  # its one confidence: how often it holds
    settings = {"baseline": "majority", "source": source, "fit_split": fit_split,
                "split": split, "ties": ties,
                "label": label, "explain": f"always {label!r}, the most common human label "
                                           f"of {fit_split or 'all'}"}
    targets = _pairs_of(store, source, split, ties, "--split")
    return _write_run(store, _run_name("majority", settings), settings, "baseline-majority",
                      [(p, label, share) for p in targets])


def run_lexical_baseline(store: Store, source: str, fit_split: str, split: str,
                         ties: str = "median") -> str:
    fit_pairs = _pairs_of(store, source, fit_split, ties, "--fit-split")
    low, high, fit_accuracy = fit_lexical(fit_pairs)
    settings = {"baseline": "lexical", "source": source, "fit_split": fit_split,
                "split": split, "ties": ties, "low": low,
                "high": high, "fit_accuracy": round(fit_accuracy, 4),
                "explain": f"query-token overlap with title/brand/colour/category; "
                           f">= {high} highly relevant, >= {low} substitute"}
    targets = _pairs_of(store, source, split, ties, "--split")
    confidence = score_confidence(fit_pairs, low, high)
    scores = [(p, overlap(p["query"], p)) for p in targets]
    return _write_run(store, _run_name("lexical", settings), settings, "baseline-lexical",
                      [(p, lexical_label(s, low, high), confidence(s)) for p, s in scores])
