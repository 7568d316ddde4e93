"""Fitting and measuring the cascade's first stage (nodes/models/first_stage.py) on human labels.

`fit_first_stage` fits on one split only (dev): the threshold is chosen on out-of-fold
predictions (GroupKFold by query, so no query is scored by a model that saw it) with
`raer calibrate`'s own functions — `risk_coverage` and `choose_threshold`, where "sent to
people" reads "sent onward to the LLM" — and the final model is then fitted on all of dev.
`cascade_report` measures it on another split (test) beside the lexical baseline used as a
first stage the same way (fitted on the same split, its threshold chosen by the same rule),
and, given an LLM run over those pairs, the cascade as a whole.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import cohen_kappa_score
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from raer.evals.baselines import (
    _pairs_of,
    _write_run,
    fit_lexical,
    lexical_label,
    overlap,
    score_confidence,
)
from raer.evals.calibration import Scored, choose_threshold, escalation_at, risk_coverage
from raer.nodes.models.first_stage import FEATURES, FORMAT, MODEL_NAME, FirstStage, feature_rows
from raer.store import Store

FOLDS = 5


def _scored(pairs: list[dict[str, Any]], labels: list[str],
            confidences: list[float]) -> list[Scored]:
    return [Scored(f"{p['query_id']}/{p['product_id']}", p["query_id"], float(c),
                   label == p["majority"], False)
            for p, label, c in zip(pairs, labels, confidences, strict=True)]


def _threshold(items: list[Scored], target_agreement: float | None,
               max_onward_share: float | None) -> dict[str, Any]:
    chosen = choose_threshold(risk_coverage(items), target_agreement, max_onward_share)
    return {"keep_at_or_above": round(chosen["review_below"], 6), "met": chosen["met"],
            "onward_share": chosen["review_share"], "kept_agreement": chosen["kept_agreement"]}


def fit_first_stage(store: Store, source: str, fit_split: str = "dev", ties: str = "median",
                    target_agreement: float | None = None,
                    max_onward_share: float | None = None) -> FirstStage:
    pairs = _pairs_of(store, source, fit_split, ties, "--fit-split")
    x = np.array(feature_rows([(p["query"], p) for p in pairs]))
    y = np.array([p["majority"] for p in pairs])
    groups = [p["query_id"] for p in pairs]
    if len(set(groups)) < 2 or len(set(y)) < 2:
        raise ValueError(f"split {fit_split!r} of {source!r} has {len(set(groups))} "
                         f"queries and {len(set(y))} labels: a first stage needs at least 2 "
                         f"of each to fit and to choose its threshold out of fold")

    def pipeline() -> Any:
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))

    folds = GroupKFold(n_splits=min(FOLDS, len(set(groups))))
    out_of_fold = cross_val_predict(pipeline(), x, y, groups=groups, cv=folds,
                                    method="predict_proba")
    fitted = pipeline().fit(x, y)
    classes = [str(c) for c in fitted.classes_]
    chosen = _threshold(_scored(pairs, [classes[i] for i in out_of_fold.argmax(1)],
                                list(out_of_fold.max(1))), target_agreement, max_onward_share)
    scaler, regression = fitted[0], fitted[1]
    target = ({"target_agreement": target_agreement} if target_agreement is not None
              else {"max_onward_share": max_onward_share})
    data = {"format": FORMAT, "features": list(FEATURES), "labels": classes,
            "coef": regression.coef_.tolist(), "intercept": regression.intercept_.tolist(),
            "mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist(),
            "keep_at_or_above": chosen["keep_at_or_above"],
            "fitted_on": {"source": source, "split": fit_split, "ties": ties,
                          "pairs": len(pairs), "queries": len(set(groups)), **target,
                          "target_met": chosen["met"],
                          "out_of_fold": {"folds": folds.n_splits,
                                          "onward_share": round(chosen["onward_share"], 4),
                                          "kept_agreement": _round(chosen["kept_agreement"])}}}
    return FirstStage.from_json(data, "the fitted model")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def first_stage_run(store: Store, model: FirstStage, source: str, split: str,
                    ties: str = "median") -> str:
    """Write the model's labels for a split's labelled pairs as a run (as the baselines
    do), so `raer agree` and `raer calibrate` read it like any judge; returns its id."""
    pairs = _pairs_of(store, source, split, ties, "--split")
    settings = {"baseline": MODEL_NAME, "model": model.digest, "source": source,
                "split": split, "ties": ties, "keep_at_or_above": model.keep_at_or_above,
                "explain": f"first-stage classifier {model.digest}; kept when confidence >= "
                           f"{model.keep_at_or_above}, otherwise sent onward"}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    predictions = model.predict([(p["query"], p) for p in pairs])
    return _write_run(store, f"{MODEL_NAME}-{digest}", settings, MODEL_NAME,
                      [(p, label, c) for p, (label, c) in zip(pairs, predictions, strict=True)])


def _stage_row(name: str, pairs: list[dict[str, Any]], labels: list[str],
               confidences: list[float], threshold: float) -> dict[str, Any]:
    human = [p["majority"] for p in pairs]
    kept = [c >= threshold for c in confidences]
    at = escalation_at(_scored(pairs, labels, confidences), threshold)
    kept_h = [h for h, k in zip(human, kept, strict=True) if k]
    kept_l = [x for x, k in zip(labels, kept, strict=True) if k]
    return {"first_stage": name, "pairs": len(pairs), "keep_at_or_above": threshold,
            "kept": sum(kept), "onward_share": round(at["review_share"], 4),
            "kept_agreement": _round(at["kept_agreement"]),
            "kept_kappa": _kappa(kept_h, kept_l),
            "agreement_all": round(float(np.mean([a == b for a, b in zip(
                labels, human, strict=True)])), 4) if pairs else None,
            "kappa_all": _kappa(human, labels)}


def _kappa(a: list[str], b: list[str]) -> float | None:
    if len(a) < 2 or len(set(a) | set(b)) < 2:
        return None
    return round(float(cohen_kappa_score(a, b)), 4)


def cascade_report(store: Store, model: FirstStage, source: str, split: str = "test",
                   llm_run: str = "") -> dict[str, Any]:
    """The first stage on `split` against the lexical baseline as a first stage; with
    `llm_run`, the cascade (first stage where kept, the LLM's label elsewhere)."""
    fit_split = str(model.fitted_on.get("split", "dev"))
    if split == fit_split:
        raise ValueError(f"the model was fitted on split {fit_split!r}: report on another "
                         f"split (no pair used for fitting is scored)")
    ties = str(model.fitted_on.get("ties", "median"))
    pairs = _pairs_of(store, source, split, ties, "--split")
    predictions = model.predict([(p["query"], p) for p in pairs])
    rows = [_stage_row(f"classifier {model.digest}", pairs, [x for x, _ in predictions],
                       [c for _, c in predictions], model.keep_at_or_above)]
    rows.append(_lexical_row(store, model, source, fit_split, ties, pairs))
    report: dict[str, Any] = {"source": source, "split": split, "fit_split": fit_split,
                              "target": {k: model.fitted_on[k] for k in (
                                  "target_agreement", "max_onward_share")
                                  if k in model.fitted_on}, "stages": rows}
    if llm_run:
        report["cascade"] = _with_llm(store, llm_run, pairs, predictions,
                                      model.keep_at_or_above)
    return report


def _lexical_row(store: Store, model: FirstStage, source: str, fit_split: str, ties: str,
                 pairs: list[dict[str, Any]]) -> dict[str, Any]:
    fit_pairs = _pairs_of(store, source, fit_split, ties, "--fit-split")
    low, high, _ = fit_lexical(fit_pairs)
    confidence = score_confidence(fit_pairs, low, high)

    def predict(some: list[dict[str, Any]]) -> tuple[list[str], list[float]]:
        scores = [overlap(p["query"], p) for p in some]
        return [lexical_label(s, low, high) for s in scores], [confidence(s) for s in scores]

    fit_labels, fit_conf = predict(fit_pairs)
    target = model.fitted_on
    chosen = _threshold(_scored(fit_pairs, fit_labels, fit_conf),
                        target.get("target_agreement"), target.get("max_onward_share"))
    labels, confidences = predict(pairs)
    return _stage_row("lexical baseline", pairs, labels, confidences,
                      chosen["keep_at_or_above"])


def _with_llm(store: Store, llm_run: str, pairs: list[dict[str, Any]],
              predictions: list[tuple[str, float]], threshold: float) -> dict[str, Any]:
    judged = {(r["query_id"], r["product_id"]): r for r in store.run_judgments(
        llm_run).values() if r["status"] in ("done", "escalated") and r["label"]}
    both = [(p, pred) for p, pred in zip(pairs, predictions, strict=True)
            if (p["query_id"], p["product_id"]) in judged]
    human = [p["majority"] for p, _ in both]
    llm = [judged[(p["query_id"], p["product_id"])] for p, _ in both]
    cascade = [label if c >= threshold else r["label"]
               for (_, (label, c)), r in zip(both, llm, strict=True)]
    onward = [c < threshold for _, (_, c) in both]
    to_people = sum(1 for r, o in zip(llm, onward, strict=True)
                    if o and r["status"] == "escalated")
    n = len(both)
    return {"llm_run": llm_run, "pairs": n, "pairs_without_llm_label": len(pairs) - n,
            "llm_calls_saved_share": round(1 - sum(onward) / n, 4) if n else None,
            "to_people_share": round(to_people / n, 4) if n else None,
            "agreement": round(float(np.mean([a == b for a, b in zip(
                cascade, human, strict=True)])), 4) if n else None,
            "kappa": _kappa(human, cascade),
            "llm_alone_agreement": round(float(np.mean([r["label"] == h for r, h in zip(
                llm, human, strict=True)])), 4) if n else None,
            "llm_alone_kappa": _kappa(human, [r["label"] for r in llm])}
