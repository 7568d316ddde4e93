"""Rebuilding a stored run: its settings, and the pairs it still has to (re)do.

`raer retry-failed RUN` uses this to redo only the failed pairs with exactly the settings
the run was made with (the run's id stays the same, so finished pairs are never touched).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from raer.nodes.context import Context
from raer.nodes.inputs import Pair
from raer.store import Store


def run_settings(store: Store, run_id: str, **operational: Any) -> Context:
    row = store.run_row(run_id)
    if row is None:
        raise LookupError(f"no run {run_id!r}")
    stored = json.loads(row["settings"])
    if "baseline" in stored:
        raise LookupError(f"{run_id} is a baseline, not a judging run")
    fields = {f.name for f in dataclasses.fields(Context)}
    # the run keeps the folder its local packshots were confined to
    operational.setdefault("images_root", row["images_root"] or "")
    # operational settings (key variable, prices, limits) are the caller's, never stored
    return Context(**{**{k: v for k, v in stored.items() if k in fields}, "run_name": run_id,
                      **operational})


def pairs_with_status(store: Store, run_id: str, statuses: tuple[str, ...]) -> list[Pair]:
    rows = store.pair_rows(run_id, statuses)
    return [Pair(query=r["text"], language=r["language"], query_type=r["query_type"] or "",
                 engine=r["engine"] or "", rank=r["rank"], product_id=r["id"],
                 title=r["title"], brand=r["brand"] or "", colour=r["colour"] or "",
                 category=r["category"] or "", description=r["description"] or "",
                 attributes=json.loads(r["attributes"] or "{}"), image=r["image"] or "")
            for r in rows]
