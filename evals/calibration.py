"""Calibrated escalation: is the judge's confidence worth trusting, and where should the
line be drawn between pairs kept and pairs sent to people?

Fitted on human-labelled dev data, reported on test data:
- the reliability of the confidence: scikit-learn's `calibration_curve` per bin, and the
  expected calibration error (ECE), the bin-weighted gap between confidence and accuracy
  (scikit-learn has no ECE function; it is one line over the curve's bins);
- the risk–coverage curve: for every threshold, the share sent to people and the agreement
  of the pairs kept;
- the threshold for a stated target (kept agreement, or the largest review share a team can
  afford), written as a review-policy file that `raer judge --review-policy` reads;
- escalation quality: the judge's error rate among escalated vs kept pairs and the share of
  its errors that escalation catches. A pair escalated for another reason (cannot judge,
  ambiguous brand, planted instruction) counts as escalated whatever its confidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sklearn.calibration import calibration_curve

from raer.evals.agreement import load_items
from raer.store import Store


@dataclass(frozen=True)
class Scored:
    judgment_id: str
    query_id: str
    confidence: float
    correct: bool
    """The judge's label equals the human majority."""
    other_reason: bool
    """Escalated for a reason other than low confidence."""


def scored_items(store: Store, run_id: str, source: str = "", split: str = "",
                 ties: str = "median") -> list[Scored]:
    """The run's judged pairs with human labels and a confidence (pairs the judge could not
    judge, or that failed, always go to people and are left out of the fit)."""
    reasons = store.review_reasons(run_id)
    confidence = store.judgment_confidences(run_id)
    out = []
    for item in load_items(store, run_id, source, split, ties):
        if not item.judged or confidence.get(item.judgment_id) is None:
            continue
        others = [r for r in reasons.get(item.judgment_id, [])
                  if not r.startswith("low confidence")]
        out.append(Scored(item.judgment_id, item.query_id, float(confidence[item.judgment_id]),
                          item.judge == item.majority, bool(others)))
    return out


def reliability(items: list[Scored], bins: int = 10) -> dict[str, Any]:
    """Accuracy against mean confidence per bin (uniform bins), and the ECE."""
    if not items:
        raise ValueError("no judged pairs with human labels and a confidence")
    conf = np.array([i.confidence for i in items])
    correct = np.array([i.correct for i in items], dtype=int)
    accuracy, mean_conf = calibration_curve(correct, conf, n_bins=bins, strategy="uniform")
    # the same bins calibration_curve uses, to weigh each by its pairs
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], conf), minlength=bins)
    counts = counts[counts > 0]
    ece = float(np.sum(counts / len(items) * np.abs(accuracy - mean_conf)))
    return {"bins": [{"confidence": float(c), "accuracy": float(a), "pairs": int(n)}
                     for c, a, n in zip(mean_conf, accuracy, counts, strict=True)],
            "ece": ece, "pairs": len(items), "accuracy": float(correct.mean()),
            "mean_confidence": float(conf.mean())}


def escalation_at(items: list[Scored], threshold: float) -> dict[str, Any]:
    """What review_below = threshold does on these pairs."""
    conf = np.array([i.confidence for i in items])
    correct = np.array([i.correct for i in items])
    escalated = (conf < threshold) | np.array([i.other_reason for i in items])
    errors = ~correct
    kept = ~escalated
    base = float(errors.mean()) if len(items) else float("nan")
    escalated_error = float(errors[escalated].mean()) if escalated.any() else None
    return {"review_below": float(threshold), "pairs": len(items),
            "review_share": float(escalated.mean()),
            "kept_agreement": float(correct[kept].mean()) if kept.any() else None,
            "base_error": base, "escalated_error": escalated_error,
            "kept_error": float(errors[kept].mean()) if kept.any() else None,
            "errors_caught": float(errors[escalated].sum() / errors.sum())
            if errors.any() else None,
            "lift": escalated_error / base if escalated_error is not None and base else None}


def risk_coverage(items: list[Scored]) -> list[dict[str, Any]]:
    """One point per distinct threshold: 0 (only other reasons), each distinct confidence
    above the lowest, and just above the highest (everything to people)."""
    values = sorted({round(i.confidence, 6) for i in items})
    thresholds = [0.0, *values[1:]]
    if values and values[-1] + 1e-6 <= 1.0:  # review_below is at most 1
        thresholds.append(values[-1] + 1e-6)
    return [escalation_at(items, t) for t in thresholds]


def choose_threshold(points: list[dict[str, Any]], target_agreement: float | None = None,
                     max_review_share: float | None = None) -> dict[str, Any]:
    """The point that meets the target: the smallest review share whose kept agreement
    reaches `target_agreement`, or the best kept agreement within `max_review_share`.
    Says so ("met": False) when no threshold reaches the target."""
    if (target_agreement is None) == (max_review_share is None):
        raise ValueError("give exactly one of --target-agreement and --max-review-share")
    if target_agreement is not None:
        meeting = [p for p in points if p["kept_agreement"] is not None
                   and p["kept_agreement"] >= target_agreement]
        if meeting:
            return {**min(meeting, key=lambda p: (p["review_share"], p["review_below"])),
                    "met": True}
        best = max((p for p in points if p["kept_agreement"] is not None),
                   key=lambda p: p["kept_agreement"])
        return {**best, "met": False}
    within = [p for p in points if p["review_share"] <= max_review_share + 1e-12]
    if not within:
        return {**min(points, key=lambda p: p["review_share"]), "met": False}
    return {**max(within, key=lambda p: ((p["kept_agreement"] or 0.0), -p["review_share"])),
            "met": True}


def policy(chosen: dict[str, Any], run_id: str, source: str, split: str,
           target: dict[str, float]) -> dict[str, Any]:
    return {"review_below": round(chosen["review_below"], 6),
            "rule": "escalate when confidence < review_below (and for every other reason)",
            "fitted_on": {"run": run_id, "source": source, "split": split,
                          "pairs": chosen["pairs"], "target": target,
                          "target_met": chosen["met"],
                          "at": datetime.now(UTC).isoformat(timespec="seconds")},
            "expected": {k: chosen[k] for k in ("review_share", "kept_agreement",
                                                "errors_caught", "lift")}}
