"""Ids the store owns: one query normalisation and identity, used by every writer.

A query is identified by its normalised text and its language; a pair given without a
language gets the detected one. Judging and `raer labels import` both name queries through
`query_identity`, so a German pair with no language column has one id whichever wrote it
first (label import once defaulted to "en" while judging detected "de": `raer agree` then
found no human label for the pair).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from typing import Any

LANGUAGE_NAMES = {"en": "English", "de": "German", "fr": "French", "it": "Italian",
                  "es": "Spanish", "nl": "Dutch", "pl": "Polish", "sv": "Swedish"}


def key(*parts: Any) -> str:
    """A stable hash of everything that changes an output."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def normalise_query(query: str) -> str:
    return " ".join(query.casefold().split())


def query_id(normalised: str, language: str) -> str:
    return "q-" + key(normalised, language)[:12]


def judgment_id(run_id: str, qid: str, engine: str, product_id: str) -> str:
    return "j-" + key(run_id, qid, engine, product_id)[:16]


@cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(LANGUAGE_NAMES))
    return identifier


def detect_language(text: str) -> str:
    """ISO code of the query's language among the shop languages raer names; "en" if unsure.

    Queries are short, so a guess below 0.5 probability falls back to English; give the
    language in the input when it matters.
    """
    lang, prob = _identifier().classify(text)
    return lang if prob >= 0.5 else "en"


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


@dataclass(frozen=True)
class QueryIdentity:
    id: str
    text: str
    normalised: str
    language: str

    def row(self, query_type: str = "") -> dict[str, Any]:
        """The queries table's row."""
        return {"id": self.id, "text": self.text, "normalised": self.normalised,
                "language": self.language, "query_type": query_type}


_DETECTED: dict[str, str] = {}


def query_language(text: str, language: str = "") -> str:
    """The given language, or the one detected on the query's text; detected once per
    normalised text, so every spelling of a query in a process gets the same language."""
    if language:
        return language
    normalised = normalise_query(text)
    if normalised not in _DETECTED:
        if len(_DETECTED) > 200_000:
            _DETECTED.clear()
        _DETECTED[normalised] = detect_language(text)
    return _DETECTED[normalised]


def query_identity(text: str, language: str = "") -> QueryIdentity:
    """The query's identity; with no language given, the detected one."""
    normalised = normalise_query(text)
    language = query_language(text, language)
    return QueryIdentity(query_id(normalised, language), text, normalised, language)
