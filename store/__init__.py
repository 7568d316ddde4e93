"""The SQLite store: every artefact and judgment, with the run, model and prompt that made it."""

from raer.store.store import Store, StoreUnusable, open_store

__all__ = ["Store", "StoreUnusable", "open_store"]
