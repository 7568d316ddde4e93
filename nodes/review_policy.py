"""The escalation policy as pure functions: when does a person look at a judgment?

Reasons: the judge could not judge; its confidence is below the run's threshold; the brand
is ambiguous (a query term that may be a brand or a plain word, the paper's "On Vacation"
case, or a brand the product data and image cannot confirm); or the seller text looks like
it tries to instruct the judge.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from raer.nodes.seller_text import instruction_in


def suspicious_seller_text(product: dict[str, Any],
                           description: dict[str, Any] | None = None) -> str:
    """The first instruction-like phrase in the product's text fields or in the text read
    off its packshot, or '' (nodes/seller_text.py says how it looks)."""
    fields = [product.get(k, "") for k in ("title", "brand", "colour", "category",
                                            "description")]
    fields += [f"{k} {v}" for k, v in (product.get("attributes") or {}).items()]
    fields.append((description or {}).get("visible_text", ""))
    return instruction_in(*fields)


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^\w]+", " ", text.casefold()).split())


def query_terms(values: list[str], query: str) -> list[str]:
    """The values that are words of the query (whole words, case and punctuation aside),
    each once, in the query's spelling as normalised. A reason names only these: the
    requirements step of a small model flags words such as "must" or "on-vacation, on
    vacation" that are not terms of the query, and a reason is raer's sentence, not the
    model's text."""
    words = f" {_words(query)} "
    found: list[str] = []
    for value in values:
        term = _words(value)
        if term and f" {term} " in words:
            spelled = _as_in_query(term, query)
            if spelled not in found:
                found.append(spelled)
    return found


def _as_in_query(term: str, query: str) -> str:
    """The query's own spelling of a term found in it (case and apostrophes as typed)."""
    tokens = query.split()
    size = len(term.split())
    for start in range(len(tokens)):
        for end in range(start + 1, min(len(tokens), start + size + 2) + 1):
            if _words(" ".join(tokens[start:end])) == term:
                return " ".join(tokens[start:end]).strip(".,;:!?()[]\"")
    return term


def escalation_reasons(judgment: dict[str, Any] | None, requirements: dict[str, Any] | None,
                       product: dict[str, Any], description: dict[str, Any] | None,
                       review_below: float, query: str) -> list[str]:
    """Why a person should look at the judgment (none: it is recorded as done). Every
    reason is written by raer from the structured result: fixed words, numbers, and terms
    of the query or product data, never free text of the model."""
    if judgment is None:
        return []  # a failed call is recorded as failed, not sent to review
    reasons = []
    if judgment["label"] == "cannot judge":
        reasons.append("the judge could not judge")
    if judgment["confidence"] < review_below:
        reasons.append(f"low confidence {judgment['confidence']:.1f} < {review_below:.1f}")
    requirements = requirements or {}
    ambiguous = query_terms([r["value"] for r in requirements.get("requirements", [])
                             if r.get("brand_or_literal")], query)
    if ambiguous:
        reasons.append("ambiguous brand-or-word term in the query: "
                       + ", ".join(f"'{term}'" for term in ambiguous[:3]))
    # a brand the query names (one the model inferred from nothing in the query, such as
    # "on-vacation" for a t-shirt query, is not a reason anyone can act on)
    asked_brands = query_terms([r["value"] for r in requirements.get("requirements", [])
                                if r.get("kind") == "brand"], query)
    if asked_brands and judgment.get("brand_check") == "cannot confirm":
        seen = " ".join([product.get("brand", ""), product.get("title", ""),
                         (description or {}).get("visible_text", "")]).casefold()
        unconfirmed = [b for b in asked_brands if f" {_words(b)} " not in f" {_words(seen)} "]
        if unconfirmed:
            reasons.append("brand not confirmed by product data or image: "
                           + ", ".join(f"'{b}'" for b in unconfirmed[:3]))
    injected = suspicious_seller_text(product, description)
    if injected:
        reasons.append(f"seller text looks like an instruction: {injected!r}")
    return reasons


Outcome = Literal["done", "escalated", "failed"]


def outcome(state: dict[str, Any]) -> Outcome:
    """A product branch's fate, decided once: failed when there is no judgment (its step or
    an upstream step failed), escalated when the policy gave reasons or a person answered,
    else done. The router branches on it and `record` stores it as the status."""
    judge = state.get("judge") or {}
    if state.get("upstream_error") or judge.get("judgment") is None:
        return "failed"
    if judge.get("review_reasons") or state.get("human_label"):
        return "escalated"
    return "done"


# ------------------------------------------------------------------ review-policy files

POLICY_KEYS = {"review_below", "rule", "fitted_on", "expected"}


class PolicyError(ValueError):
    """A review-policy file that cannot be used; the message names the file and field."""


def read_policy(path: str | Path) -> float:
    """review_below from a review-policy file written by `raer calibrate`."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PolicyError(f"{path}: not a readable review-policy file ({exc})") from exc
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: a review policy is a JSON object")
    unknown = set(data) - POLICY_KEYS
    if unknown:
        raise PolicyError(f"{path}: unknown fields {sorted(unknown)}")
    value = data.get("review_below")
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
        raise PolicyError(f"{path}: field review_below must be a number from 0 to 1, "
                          f"not {value!r}")
    return float(value)
