"""Pairs grouped by query, and their judgment ids: what a run's driver needs before it
decides whether there is any work (no graph, no model client: a no-op rerun stays fast)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from raer.nodes.inputs import Pair
from raer.store.ids import judgment_id, normalise_query, query_id, query_identity, query_language


@dataclass
class QueryGroup:
    query: str
    language: str
    query_type: str
    pairs: list[Pair]

    @cached_property
    def query_id(self) -> str:
        return query_id(normalise_query(self.query), self.language)

    def judgment_ids(self, run_id: str) -> list[str]:
        """Its pairs' judgment ids in a run (made once: a 20,000-pair rerun needs each
        twice, and each is a hash)."""
        cached = self.__dict__.setdefault("_judgment_ids", {})
        if run_id not in cached:
            cached[run_id] = [judgment_id(run_id, self.query_id, p.engine, p.product_id)
                              for p in self.pairs]
        return cached[run_id]


def group_by_query(pairs: Iterable[Pair]) -> list[QueryGroup]:
    """One group per (normalised query, language); the language is detected when absent."""
    groups: dict[tuple[str, str], QueryGroup] = {}
    for pair in pairs:
        normalised = normalise_query(pair.query)
        language = query_language(pair.query, pair.language)  # as a label import names it
        group = groups.get((normalised, language))
        if group is None:
            group = groups[(normalised, language)] = QueryGroup(
                pair.query, language, pair.query_type, [])
        group.pairs.append(pair)
    return list(groups.values())


def pair_judgment_id(run_id: str, group: QueryGroup, pair: Pair) -> str:
    return judgment_id(run_id, group.query_id, pair.engine, pair.product_id)


def unfinished(groups: list[QueryGroup], run_id: str,
               finished: set[str]) -> list[tuple[QueryGroup, list[Pair]]]:
    """Each group with its pairs not yet finished in the run (a rerun skips the rest)."""
    return [(g, [p for p, jid in zip(g.pairs, g.judgment_ids(run_id), strict=True)
                 if jid not in finished]) for g in groups]


def in_input_order(pairs: list[Pair], groups: list[QueryGroup], run_id: str,
                   rows: dict[str, dict[str, Any]]) -> list[dict[str, Any] | None]:
    """The store's row for each pair, in the order the pairs were given (None: no row)."""
    by_pair = {id(p): rows.get(jid) for g in groups
               for p, jid in zip(g.pairs, g.judgment_ids(run_id), strict=True)}
    return [by_pair[id(p)] for p in pairs]


def mark_pairs(store: Any, run_id: str, work: list[tuple[QueryGroup, list[Pair]]], status: str,
               error: str | None = None) -> None:
    """Pair rows for `work` with a status: "pending" before judging, "failed" on a crash."""
    queries, products, judgments = [], [], []
    for group, todo in work:
        identity = query_identity(group.query, group.language)
        qid = identity.id
        queries.append(identity.row(group.query_type))
        for pair in todo:
            products.append(pair.product().model_dump())
            judgments.append({"id": judgment_id(run_id, qid, pair.engine, pair.product_id),
                              "run_id": run_id, "query_id": qid, "product_id": pair.product_id,
                              "engine": pair.engine, "rank": pair.rank, "status": status,
                              "error": error})
    if judgments:
        store.mark_pairs(queries, products, judgments)
