"""The SQLite store: every artefact and judgment, with the run, model and prompt that made it."""

import raer.store.lean_imports  # noqa: F401  (first: sqlite-utils without pandas)
from raer.store.store import (
    DatabaseError,
    Store,
    StoreFull,
    StoreUnusable,
    already_open,
    is_disk_full,
    open_store,
)

__all__ = ["DatabaseError", "Store", "StoreFull", "StoreUnusable", "already_open", "is_disk_full",
           "open_store"]
