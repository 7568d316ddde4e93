"""The SQLite store: every artefact and judgment, with the run, model and prompt that made it."""

from raer.store.store import Store, open_store

__all__ = ["Store", "open_store"]
