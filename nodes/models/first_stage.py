"""The cheap first-stage judge of a cascade: a small classifier that labels the pairs it is
sure of, so only the rest reach the LLM (and the LLM's doubtful remainder reaches people).

It reads what a pair already carries — the query and the product's text — and nothing else:
query-token overlap with each product field (title, brand, colour, category, description and
attributes), matched numbers, a negation in the query, and two cosine similarities from the
static embedding model that ships inside the wordllama wheel (no download, ~1 ms a pair).
A multinomial logistic regression (scikit-learn) over them gives each label a probability;
the largest is the confidence. A pair is kept when that confidence reaches the model file's
`keep_at_or_above`, the threshold `raer cascade fit` chooses with `raer calibrate`'s own
functions on predictions for dev queries the model was not fitted on.

The fitted model is a JSON file (weights, scaler, threshold, what it was fitted on), not a
pickle: a model file is read by `raer judge --first-stage` and must not be able to run code.
Its content digest is part of the run's identity, so another model is another run.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

FORMAT = "raer-first-stage/1"
MODEL_NAME = "first-stage"
_TOKEN = re.compile(r"[0-9a-zà-ÿß]+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
NEGATIONS = frozenset({"without", "no", "not", "non", "except", "excluding", "free"})
FIELDS = ("title", "brand", "colour", "category", "description")
FEATURES = (*(f"overlap_{f}" for f in FIELDS), "overlap_any", "query_tokens",
            "numbers_matched", "query_has_number", "query_negates", "title_tokens",
            "cosine_title", "cosine_all")


class FirstStageError(ValueError):
    """A first-stage model file that cannot be used (named, with the reason)."""


def _tokens(text: str) -> set[str]:
    return set(_TOKEN.findall((text or "").casefold()))


def product_text(product: dict[str, Any], field: str) -> str:
    if field != "description":
        return str(product.get(field) or "")
    attributes = product.get("attributes") or {}
    if isinstance(attributes, str):  # as the store keeps it
        try:
            attributes = json.loads(attributes) or {}
        except ValueError:
            attributes = {}
    extra = " ".join(f"{k} {v}" for k, v in attributes.items()) if isinstance(
        attributes, dict) else ""
    return f"{product.get('description') or ''} {extra}"


def lexical_features(query: str, product: dict[str, Any]) -> list[float]:
    wanted = _tokens(query)
    n = len(wanted) or 1
    per_field = [len(wanted & _tokens(product_text(product, f))) / n for f in FIELDS]
    every = set().union(*(_tokens(product_text(product, f)) for f in FIELDS))
    numbers = set(_NUMBER.findall(query))
    title = str(product.get("title") or "")
    matched = (len(numbers & set(_NUMBER.findall(" ".join(
        product_text(product, f) for f in FIELDS)))) / len(numbers)) if numbers else 0.0
    return [*per_field, len(wanted & every) / n, math.log1p(len(wanted)), matched,
            float(bool(numbers)), float(bool(wanted & NEGATIONS)),
            math.log1p(len(_tokens(title)))]


@lru_cache(maxsize=1)
def _embedder() -> Any:
    try:
        import wordllama
        from wordllama import WordLlama
    except ImportError as exc:  # the evals extra
        raise FirstStageError("the first-stage judge needs the evals extra: "
                              "pip install 'raer[evals]'") from exc
    # the wheel ships the model; its loader looks for the tokenizer in a folder named
    # "tokenizer" but the wheel calls it "tokenizers": point the cache at the package
    return WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)


def feature_rows(pairs: list[tuple[str, dict[str, Any]]]) -> list[list[float]]:
    """One feature row per (query, product), in FEATURES order."""
    if not pairs:
        return []
    model = _embedder()
    queries = sorted({q for q, _ in pairs})
    qvec = dict(zip(queries, model.embed(queries, norm=True), strict=True))
    titles = model.embed([str(p.get("title") or "") for _, p in pairs], norm=True)
    alls = model.embed([" ".join(product_text(p, f) for f in FIELDS)[:2000]
                        for _, p in pairs], norm=True)
    return [[*lexical_features(q, p), float(t @ qvec[q]), float(a @ qvec[q])]
            for (q, p), t, a in zip(pairs, titles, alls, strict=True)]


@dataclass(frozen=True)
class FirstStage:
    """A fitted first-stage judge, as read from its JSON file."""

    labels: list[str]
    coef: list[list[float]]
    intercept: list[float]
    mean: list[float]
    scale: list[float]
    keep_at_or_above: float
    fitted_on: dict[str, Any]
    digest: str

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "features": list(FEATURES), "labels": self.labels,
                "coef": self.coef, "intercept": self.intercept, "mean": self.mean,
                "scale": self.scale, "keep_at_or_above": self.keep_at_or_above,
                "fitted_on": self.fitted_on}

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str) -> FirstStage:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise FirstStageError(f"{where}: not a first-stage model file (format "
                                  f"{FORMAT!r} expected; make one with `raer cascade fit`)")
        if data.get("features") != list(FEATURES):
            raise FirstStageError(f"{where}: features {data.get('features')} differ from this "
                                  f"version's {list(FEATURES)}: fit the model again")
        try:
            model = cls(labels=[str(x) for x in data["labels"]],
                        coef=[[float(v) for v in row] for row in data["coef"]],
                        intercept=[float(v) for v in data["intercept"]],
                        mean=[float(v) for v in data["mean"]],
                        scale=[float(v) for v in data["scale"]],
                        keep_at_or_above=float(data["keep_at_or_above"]),
                        fitted_on=dict(data.get("fitted_on") or {}),
                        digest=_digest(data))
        except (KeyError, TypeError, ValueError) as exc:
            raise FirstStageError(f"{where}: field {exc} is missing or not a number") from exc
        width = len(FEATURES)
        if (len(model.coef) != len(model.labels) or any(len(r) != width for r in model.coef)
                or len(model.intercept) != len(model.labels)
                or len(model.mean) != width or len(model.scale) != width):
            raise FirstStageError(f"{where}: weights do not match {len(model.labels)} labels "
                                  f"× {width} features")
        if not 0.0 <= model.keep_at_or_above <= 1.0 + 1e-6:
            raise FirstStageError(f"{where}: keep_at_or_above must be within 0..1")
        return model

    def classifier(self) -> Any:
        """The scikit-learn pipeline these weights are (fitted attributes set, no refit)."""
        import numpy as np
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler()
        scaler.mean_, scaler.scale_ = np.array(self.mean), np.array(self.scale)
        scaler.var_ = scaler.scale_ ** 2
        scaler.n_features_in_ = len(FEATURES)
        scaler.n_samples_seen_ = 1
        regression = LogisticRegression()
        regression.classes_ = np.array(self.labels)
        regression.coef_ = np.array(self.coef)
        regression.intercept_ = np.array(self.intercept)
        regression.n_features_in_ = len(FEATURES)
        regression.n_iter_ = np.array([0])
        return make_pipeline(scaler, regression)

    def predict(self, pairs: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, float]]:
        """(label, confidence) per (query, product)."""
        if not pairs:
            return []
        import numpy as np

        proba = self.classifier().predict_proba(np.array(feature_rows(pairs)))
        return [(self.labels[int(row.argmax())], round(float(row.max()), 6)) for row in proba]


def _digest(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def load_first_stage(path: str) -> FirstStage:
    """The model in `path`, or a FirstStageError naming the file and what is wrong."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise FirstStageError(f"{path}: cannot read the first-stage model: "
                              f"{exc.strerror}") from exc
    except ValueError as exc:
        raise FirstStageError(f"{path}: not JSON: {exc}") from exc
    return FirstStage.from_json(data, path)

