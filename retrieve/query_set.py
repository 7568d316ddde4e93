"""The query set: a text file (one query a line), or CSV/TSV/JSONL/Parquet with `query` and
optionally `language`, `query_type`, `weight`; or a sample of a search log.

The same query given twice (same words, case and spacing aside, same language) is one
query; its weights add up. `sample` draws queries stratified by query type (or language when
the file has no types), in proportion to each stratum's size with at least one query per
stratum while the budget lasts, with a recorded seed — the paper samples its queries so that
query types are covered; a uniform draw from a log is almost all head queries.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from raer.nodes.inputs import InputError, read_records
from raer.store.ids import normalise_query


class QueryLine(BaseModel):
    model_config = ConfigDict(extra="ignore")

    query: str = Field(min_length=1, max_length=1000)
    language: str = ""
    query_type: str = ""
    weight: float = Field(1.0, gt=0)

    @field_validator("query", "language", "query_type", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        if value is None:
            return ""
        return value.strip() if isinstance(value, str) else value


@dataclass(frozen=True)
class Query:
    text: str
    language: str = ""
    query_type: str = ""
    weight: float = 1.0

    def values(self, k: int) -> dict[str, Any]:
        """What a template's placeholders become."""
        return {"query": self.text, "k": k, "language": self.language,
                "query_type": self.query_type}


def read_queries(path: str | Path) -> list[Query]:
    path = Path(path)
    if path.suffix.lower() == ".txt":
        if not path.is_file():
            raise InputError([(str(path), None, "(file)", "no such file")])
        records = [(n, {"query": line}) for n, line in enumerate(
            path.read_text(encoding="utf-8-sig").splitlines(), start=1) if line.strip()]
    else:
        records = read_records(path)
    problems, found = [], {}
    for number, record in records:
        if not isinstance(record, dict):
            problems.append((str(path), number, "(line)", "expected an object"))
            continue
        try:
            line = QueryLine.model_validate(record)
        except ValidationError as exc:
            for error in exc.errors():
                field = ".".join(str(p) for p in error["loc"]) or "(line)"
                problems.append((str(path), number, field, error["msg"]))
            continue
        key = (normalise_query(line.query), line.language.lower())
        if key in found:
            before = found[key]
            found[key] = Query(before.text, before.language, before.query_type,
                               before.weight + line.weight)
        else:
            found[key] = Query(line.query, line.language.lower(), line.query_type, line.weight)
    if problems:
        raise InputError(problems)
    if not found:
        raise InputError([(str(path), None, "query", "no query in the file")])
    return list(found.values())


def sample(queries: list[Query], size: int, seed: int) -> list[Query]:
    """`size` queries stratified by type (or language), proportional, largest remainders."""
    if size >= len(queries):
        return list(queries)
    by_type = any(q.query_type for q in queries)
    strata: dict[str, list[Query]] = {}
    for q in queries:
        strata.setdefault(q.query_type if by_type else q.language, []).append(q)
    names = sorted(strata)
    share = {n: size * len(strata[n]) / len(queries) for n in names}
    take = {n: min(len(strata[n]), max(1, int(share[n]))) for n in names}
    while sum(take.values()) > size:  # more strata than the budget: the largest keep one
        smallest = min((n for n in names if take[n] > 0), key=lambda n: (len(strata[n]), n))
        take[smallest] -= 1
    for n in sorted(names, key=lambda n: (-(share[n] - int(share[n])), n)):
        if sum(take.values()) >= size:
            break
        if take[n] < len(strata[n]):
            take[n] += 1
    rng = random.Random(seed)
    chosen = {id(q) for n in names for q in rng.sample(strata[n], take[n])}
    return [q for q in queries if id(q) in chosen]
