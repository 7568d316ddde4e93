"""Rebuilding a stored run: its settings, and the pairs it still has to (re)do.

`raer retry-failed RUN` uses this to redo only the failed pairs with exactly the settings
the run was made with (the run's id stays the same, so finished pairs are never touched).
"""

from __future__ import annotations

from typing import Any

from raer.nodes.context import Context
from raer.nodes.inputs import Pair
from raer.nodes.settings import for_stored_run
from raer.store import Store
from raer.store.store import product_of


def run_settings(store: Store, run_id: str, **operational: Any) -> Context:
    return for_stored_run(store.run_row(run_id), run_id, **operational)


def pairs_with_status(store: Store, run_id: str, statuses: tuple[str, ...]) -> list[Pair]:
    rows = store.pair_rows(run_id, statuses)
    return [Pair(query=r["text"], language=r["language"], query_type=r["query_type"] or "",
                 engine=r["engine"] or "", rank=r["rank"], **product_of(r)) for r in rows]
