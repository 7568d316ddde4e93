"""Merging a shard's store into the main one (a Ray task's results, run/ray.py).

One transaction per shard, so a merge is all or nothing. Queries, products and the run
are the same rows in both stores (keyed by content-derived ids); model calls get new ids in
the main store, and every artefact and judgment that points at a call is rewritten to the
new id; cached artefacts are kept where the main store already has them; judgments replace
the driver's "pending" rows (same judgment ids: the same run settings, queries and
products); review entries are added where missing.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from raer.store.store import Store

ARTEFACTS = ("requirements", "guidelines", "descriptions")


def _rows(conn: sqlite3.Connection, table: str) -> list[dict[str, Any]]:
    conn.row_factory = sqlite3.Row
    return [dict(r) for r in conn.execute(f"select * from {table}")]  # noqa: S608


def _open_shard(shard: str | Path | bytes) -> sqlite3.Connection:
    """A shard as a read-only connection. Bytes are opened in memory: a driver killed
    mid-merge leaves no shard file behind. A WAL-mode file's header (bytes 18–19 = 2) is
    set to the rollback journal's (1), which an in-memory database needs."""
    if not isinstance(shard, bytes):
        return sqlite3.connect(f"file:{shard}?mode=ro", uri=True)
    data = bytearray(shard)
    if data[:16] != b"SQLite format 3\x00":
        raise ValueError("a shard's result is not an SQLite database")
    data[18:20] = b"\x01\x01"
    conn = sqlite3.connect(":memory:")
    conn.deserialize(bytes(data))
    return conn


def merge_store(store: Store, shard: str | Path | bytes) -> dict[str, int]:
    """Merge a shard's store (a path, or the file's bytes as a Ray task returns them)
    into `store`; returns rows written per table."""
    conn = _open_shard(shard)
    try:
        data = {t: _rows(conn, t) for t in ("runs", "queries", "products", "llm_calls",
                                            *ARTEFACTS, "judgments", "reviews")}
    finally:
        conn.close()
    written: dict[str, int] = {}
    with store.atomic():
        db = store.db
        for row in data["runs"]:
            db["runs"].insert(row, pk="id", ignore=True)
        db["queries"].upsert_all(data["queries"], pk="id") if data["queries"] else None
        db["products"].upsert_all(data["products"], pk="id") if data["products"] else None
        new_id: dict[int, int] = {}
        for row in data["llm_calls"]:
            old = row.pop("id")
            new_id[old] = db["llm_calls"].insert(row).last_pk
        written["llm_calls"] = len(new_id)

        def remap(row: dict[str, Any]) -> dict[str, Any]:
            call = row.get("call_id")
            return {**row, "call_id": new_id.get(call, call) if call is not None else None}

        for table in ARTEFACTS:
            rows = [remap(r) for r in data[table]]
            if rows:
                db[table].insert_all(rows, pk="cache_key", ignore=True)
            written[table] = len(rows)
        judgments = [remap(r) for r in data["judgments"] if r["status"] != "pending"]
        if judgments:
            db["judgments"].upsert_all(judgments, pk="id")
        written["judgments"] = len(judgments)
        if data["reviews"]:
            db["reviews"].insert_all(data["reviews"], pk="judgment_id", ignore=True)
        written["reviews"] = len(data["reviews"])
    return written
