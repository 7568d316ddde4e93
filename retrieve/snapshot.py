"""Retrieve: ask every engine for every query, then keep what they returned as snapshots.

All engines are asked first, concurrently; only when every one has answered every query is
anything written (snapshots, their queries and products, in one transaction; then the
pairs file, through a temporary file renamed into place). An engine error, a timeout or a
bad answer therefore ends the command with the engine's message and nothing half-written.

A query an engine answers with no result is a result (it scores 0) and is listed; an engine
that answers no query at all is an error (a wrong index, collection or hit path looks
exactly like that). A product an engine returns with content other than the store's (the
catalogue changed) is refused, naming it, unless `update_products`: then the engine's
content wins, and the judge sees the new content (its cache is keyed by the content, so
the changed product is judged again and every unchanged one is answered from the store).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raer.nodes.inputs import InputError
from raer.retrieve import bm25, generic, search_engine, solr
from raer.retrieve.config import EngineFile
from raer.retrieve.http import EngineError
from raer.retrieve.query_set import Query
from raer.store import Store
from raer.store.ids import key, query_identity


@dataclass
class Retrieved:
    engine: EngineFile
    results: list[list[dict[str, Any]]]
    """Per query (in the query set's order), the products in rank order."""
    seconds: float

    @property
    def name(self) -> str:
        return self.engine.engine.name

    def empty(self, queries: list[Query]) -> list[str]:
        return [q.text for q, hits in zip(queries, self.results, strict=True) if not hits]


async def _ask(loaded: EngineFile, queries: list[Query]) -> Retrieved:
    start = time.perf_counter()
    engine = loaded.engine
    if engine.kind == "bm25":
        results = await bm25.search(loaded, queries)
    elif engine.kind == "solr":
        results = await solr.search(engine, queries)
    elif engine.kind == "http":
        results = await generic.search(engine, queries)
    else:
        results = await search_engine.search(engine, queries)
    return Retrieved(loaded, results, time.perf_counter() - start)


async def retrieve(engines: list[EngineFile], queries: list[Query]) -> list[Retrieved]:
    """Every engine's results; EngineError (the first engine's) when any could not answer."""
    answers = await asyncio.gather(*(_ask(e, queries) for e in engines),
                                   return_exceptions=True)
    failures = [a for a in answers if isinstance(a, BaseException)]
    if failures:
        errors = [f for f in failures if isinstance(f, EngineError)]
        if len(errors) < len(failures):
            raise next(f for f in failures if not isinstance(f, EngineError))
        raise EngineError("\n".join(str(e) for e in errors))
    for found in answers:
        if all(not hits for hits in found.results):
            raise EngineError(f"engine {found.name} returned no result for any of the "
                              f"{len(queries)} queries: check its index or collection, its "
                              f"query template and where its hits are")
    return list(answers)


def save(store: Store, retrieved: list[Retrieved], queries: list[Query], *, query_set: str,
         tag: str = "", experiment: str = "", update_products: bool = False,
         db_path: str = "") -> list[dict[str, Any]]:
    """Write the snapshots (one per engine); returns their rows."""
    identities = [query_identity(q.text, q.language) for q in queries]
    products: dict[str, dict[str, Any]] = {}
    clashes = []
    for found in retrieved:
        for hits in found.results:
            for product in hits:
                before = products.get(product["product_id"])
                if before is not None and _content(before) != _content(product):
                    clashes.append(f"{product['product_id']!r} (engines disagree on "
                                   f"{', '.join(_differs(before, product))})")
                products[product["product_id"]] = product
    conflicts = [] if update_products else store.product_conflicts(list(products.values()))
    if (clashes and not update_products) or conflicts:
        problems = [(db_path or store.path, None, "product_id",
                     f"{pid!r} is stored with other {', '.join(fields)}; the engine's content "
                     f"wins with --update-products") for pid, fields in conflicts]
        problems += [("(engines)", None, "product_id", c) for c in sorted(set(clashes))]
        raise InputError(problems)
    stamp = time.time_ns()
    snapshots, results = [], []
    for found in retrieved:
        engine = found.engine
        snapshot_id = "snap-" + key(found.name, engine.config_hash(), stamp)[:12]
        snapshots.append({"id": snapshot_id, "engine": found.name, "kind": engine.engine.kind,
                          "config_hash": engine.config_hash(),
                          "config": json.dumps(engine.identity(), sort_keys=True),
                          "query_set": query_set, "queries": len(queries),
                          "k": engine.engine.k, "tag": tag, "experiment": experiment})
        for identity, hits in zip(identities, found.results, strict=True):
            results += [{"snapshot_id": snapshot_id, "query_id": identity.id, "rank": rank,
                         "product_id": p["product_id"]} for rank, p in enumerate(hits, 1)]
    query_rows = {i.id: i.row(q.query_type) for i, q in zip(identities, queries, strict=True)}
    store.save_snapshots(snapshots, list(query_rows.values()), list(products.values()),
                         results, update_products=update_products)
    return snapshots


def _content(product: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in product.items() if k not in ("engine", "rank")}


def _differs(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return [k for k in _content(a) if a.get(k) != b.get(k)]


def pairs_of(store: Store, snapshot_ids: list[str], queries: list[Query] | None = None
             ) -> list[dict[str, Any]]:
    """Pairs rows for `raer judge` (query, language, query type, engine, rank, product),
    engine by engine, in the query set's order when it is given."""
    order = {query_identity(q.text, q.language).id: i for i, q in enumerate(queries or [])}
    out = []
    for snapshot_id in snapshot_ids:
        rows = store.snapshot_pairs(snapshot_id)
        rows.sort(key=lambda r: (order.get(r["query_id"], len(order)), r["rank"]))
        for r in rows:
            out.append({"query": r["query"], "language": r["language"],
                        "query_type": r["query_type"] or "", "engine": r["engine"],
                        "rank": r["rank"], "product_id": r["id"], "title": r["title"],
                        "brand": r["brand"] or "", "colour": r["colour"] or "",
                        "category": r["category"] or "",
                        "description": r["description"] or "",
                        "attributes": json.loads(r["attributes"] or "{}"),
                        "image": r["image"] or ""})
    return out


def write_pairs(path: Path, pairs: list[dict[str, Any]]) -> None:
    """The pairs as JSONL, whole or not at all; local packshots relative to the file's folder
    where they are inside it (the judge confines local packshots to that folder)."""
    folder = path.resolve().parent
    lines = []
    for pair in pairs:
        image = pair["image"]
        if image and os.path.isabs(image) and Path(image).is_relative_to(folder):
            pair = {**pair, "image": os.path.relpath(image, folder)}
        lines.append(json.dumps(pair, ensure_ascii=False))
    folder.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=folder, delete=False,
                                         prefix=f".{path.name}.", suffix=".tmp")
    try:
        with handle:
            handle.write("\n".join(lines) + ("\n" if lines else ""))
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
