"""The files other relevance tools read and write, field for field as their documents say.

Writers (`raer export`), each checked in tests/test_interop.py against the document cited:
- OpenSearch Search Relevance Workbench judgment list (JSON): `name`, `description`, `type`
  IMPORT_JUDGMENT, `judgmentRatings[{query, ratings[{docId, rating}], failures[{docId}]}]`,
  `rating` a string with three decimals ("2.000") as in the documented example; `failures`
  lists the documents that could not be rated, as SRW's own judgment lists do
  (docs.opensearch.org/latest/search-plugins/search-relevance/judgments/).
- SRW CSV judgments and Quepid's ratings CSV: `query,docid,rating` (RFC 4180 quoting).
- Quepid book (JSON): `name`, `show_rank`, `support_implicit_judgements`, `scale`,
  `query_doc_pairs[{query_text, doc_id, position, document_fields, judgements[{rating,
  unrateable, judge_later, user_email, explanation}]}]` — what Quepid's book export writes and
  its BookImporter reads (github.com/o19s/quepid: app/views/api/v1/export/books/*.jbuilder,
  app/services/book_importer.rb). It is the one Quepid format that says who judged and why:
  the judge's reasoning or the reviewer's note is the `explanation`.
- Elasticsearch / OpenSearch `_rank_eval` request bodies: `requests[{id, request, ratings[{
  _index, _id, rating}]}]` and `metric` (dcg with normalize, precision, mean_reciprocal_rank,
  expected_reciprocal_rank) (elastic.co/docs/api/doc/elasticsearch/operation/
  operation-rank-eval; docs.opensearch.org/latest/api-reference/search-apis/rank-eval/).

Every CSV cell raer writes is spreadsheet-safe by the OWASP CSV-injection rule: a cell that
starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, so a seller
title such as `=HYPERLINK(…)` stays text in Excel or LibreOffice; readers here take the `'`
off again, so nothing is lost on a round trip
(owasp.org/www-community/attacks/CSV_Injection).
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raer.nodes.inputs import InputError

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> str:
    """One cell, neutralised by the OWASP rule (numbers stay numbers)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_unsafe(text: str) -> str:
    """What csv_safe wrote, read back."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_START) else text


def write_csv(rows: Iterable[list[Any]], header: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_safe(v) for v in row])
    return buffer.getvalue()


@dataclass(frozen=True)
class Rated:
    """One labelled (query, document) pair as the receiving tools see it."""

    query_id: str
    query: str
    doc_id: str
    grade: int | None  # None: could not be rated (a failure, unrateable)
    position: int | None = None
    explanation: str = ""
    rater: str = ""  # a reviewer's name or e-mail; "" for the judge
    fields: dict[str, Any] | None = None


def srw_judgments(rated: list[Rated], name: str, description: str) -> dict[str, Any]:
    by_query: dict[str, dict[str, list]] = {}
    for r in rated:
        entry = by_query.setdefault(r.query, {"ratings": [], "failures": []})
        if r.grade is None:
            entry["failures"].append({"docId": r.doc_id})
        else:
            entry["ratings"].append({"docId": r.doc_id, "rating": f"{r.grade:.3f}"})
    return {"name": name, "description": description, "type": "IMPORT_JUDGMENT",
            "judgmentRatings": [{"query": q, "ratings": e["ratings"],
                                 **({"failures": e["failures"]} if e["failures"] else {})}
                                for q, e in by_query.items()]}


def ratings_csv(rated: list[Rated]) -> str:
    """`query,docid,rating`: Quepid's ratings CSV and SRW's CSV judgments."""
    return write_csv(([r.query, r.doc_id, r.grade] for r in rated if r.grade is not None),
                     ["query", "docid", "rating"])


def quepid_book(rated: list[Rated], name: str, scale: list[int],
                judge_email: str = "") -> dict[str, Any]:
    pairs = []
    for r in rated:
        email = r.rater if "@" in r.rater else ("" if r.rater else judge_email)
        judgement: dict[str, Any] = {"rating": None if r.grade is None else float(r.grade),
                                     "unrateable": r.grade is None, "judge_later": False,
                                     "explanation": r.explanation}
        if email:
            judgement["user_email"] = email
        pairs.append({"query_text": r.query, "doc_id": r.doc_id, "position": r.position,
                      "document_fields": json.dumps(r.fields or {}, ensure_ascii=False),
                      "judgements": [judgement]})
    return {"name": name, "show_rank": False, "support_implicit_judgements": False,
            "scale": scale, "query_doc_pairs": pairs}


RANK_EVAL_METRICS = ("dcg", "precision", "mean_reciprocal_rank", "expected_reciprocal_rank")


def rank_eval(rated: list[Rated], index: str, requests: dict[str, dict[str, Any]],
              metric: str, k: int, relevant_at: int, max_grade: int) -> dict[str, Any]:
    """One `_rank_eval` body: each query's search request and its ratings, and the metric
    with raer's conventions said in its parameters."""
    by_query: dict[str, list[Rated]] = defaultdict(list)
    for r in rated:
        if r.grade is not None:
            by_query[r.query_id].append(r)
    params: dict[str, Any] = {"k": k}
    if metric == "dcg":
        params["normalize"] = True
    elif metric in ("precision", "mean_reciprocal_rank"):
        params["relevant_rating_threshold"] = relevant_at
        if metric == "precision":
            params["ignore_unlabeled"] = False
    else:
        params["maximum_relevance"] = max_grade
    return {"requests": [{"id": q, "request": requests[q],
                          "ratings": [{"_index": index, "_id": r.doc_id, "rating": r.grade}
                                      for r in items]}
                         for q, items in by_query.items()],
            "metric": {metric: params}}


# ------------------------------------------------------------------ readers


@dataclass(frozen=True)
class Imported:
    line: int | None
    query: str
    doc_id: str
    rating: str
    rater: str = ""
    explanation: str = ""
    fields: dict[str, Any] | None = None
    where: str = ""
    """Where in a JSON file the rating is (a CSV names its line instead)."""


def read_ratings(path: str | Path) -> list[Imported]:
    """A Quepid ratings CSV or an SRW CSV (`query,docid,rating`, header optional) or an SRW
    judgment list (JSON); every bad line named, nothing returned on any."""
    path = Path(path)
    if not path.is_file():
        raise InputError([(str(path), None, "(file)", "no such file")])
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        return _srw_json(path, text)
    problems, out = [], []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not any(c.strip() for c in row):
            continue
        if number == 1 and [c.strip().lower() for c in row] == ["query", "docid", "rating"]:
            continue
        if len(row) != 3:
            problems.append((str(path), number, "(line)",
                             f"expected 3 fields query,docid,rating, found {len(row)}"))
            continue
        query, doc_id, rating = (csv_unsafe(c.strip()) for c in row)
        for field, value in (("query", query), ("docid", doc_id), ("rating", rating)):
            if not value:
                problems.append((str(path), number, field, "empty"))
        if rating and not _is_number(rating):
            problems.append((str(path), number, "rating", f"{rating!r} is not a number"))
        out.append(Imported(number, query, doc_id, rating))
    if problems:
        raise InputError(problems)
    return out


def _srw_json(path: Path, text: str) -> list[Imported]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InputError([(str(path), None, "(file)", f"not JSON: {exc}")]) from None
    groups = data.get("judgmentRatings") if isinstance(data, dict) else None
    if not isinstance(groups, list):
        raise InputError([(str(path), None, "judgmentRatings", "a list of {query, ratings} "
                           "is needed (an SRW judgment list)")])
    problems, out = [], []
    for i, group in enumerate(groups):
        where = f"judgmentRatings[{i}]"
        if not isinstance(group, dict) or not str(group.get("query") or "").strip():
            problems.append((str(path), None, f"{where}.query", "missing"))
            continue
        for j, rating in enumerate(group.get("ratings") or []):
            at = f"{where}.ratings[{j}]"
            doc = str((rating or {}).get("docId") or "").strip()
            value = str((rating or {}).get("rating") or "").strip()
            if not doc:
                problems.append((str(path), None, f"{at}.docId", "missing"))
            if not _is_number(value):
                problems.append((str(path), None, f"{at}.rating",
                                 f"{value!r} is not a number"))
            out.append(Imported(None, group["query"].strip(), doc, value, where=at))
    if problems:
        raise InputError(problems)
    return out


def read_quepid_book(path: str | Path) -> list[Imported]:
    """A Quepid book's judgements, one per rater, with their explanation and e-mail."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise InputError([(str(path), None, "(file)", f"cannot read the book: {exc}")]) from None
    pairs = data.get("query_doc_pairs") if isinstance(data, dict) else None
    if not isinstance(pairs, list):
        raise InputError([(str(path), None, "query_doc_pairs", "a Quepid book has a list "
                           "of query_doc_pairs")])
    problems, out = [], []
    for i, pair in enumerate(pairs):
        where = f"query_doc_pairs[{i}]"
        if not isinstance(pair, dict):
            problems.append((str(path), None, where, "expected an object"))
            continue
        query, doc = str(pair.get("query_text") or "").strip(), str(pair.get("doc_id") or "")
        if not query or not doc.strip():
            problems.append((str(path), None, f"{where}.query_text/doc_id", "both needed"))
            continue
        fields = pair.get("document_fields") or {}
        if isinstance(fields, str):
            try:
                fields = json.loads(fields) if fields.strip() else {}
            except ValueError:
                problems.append((str(path), None, f"{where}.document_fields",
                                 "not JSON text"))
                continue
        for j, judgement in enumerate(pair.get("judgements") or []):
            if judgement.get("unrateable") or judgement.get("judge_later"):
                continue  # no rating to import: not a label
            value = judgement.get("rating")
            if not _is_number(str(value)):
                problems.append((str(path), None, f"{where}.judgements[{j}].rating",
                                 f"{value!r} is not a number"))
                continue
            out.append(Imported(None, query, doc.strip(), _plain(value),
                                str(judgement.get("user_email") or ""),
                                str(judgement.get("explanation") or ""), fields,
                                where=where))
    if problems:
        raise InputError(problems)
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip().lower() not in ("nan", "inf", "-inf", "infinity")


def _plain(value: Any) -> str:
    """3.0 → "3", 2.5 → "2.5": the raw label as a mapping rule reads it."""
    number = float(value)
    return str(int(number)) if number.is_integer() else str(number)
