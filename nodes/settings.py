"""The one place a run's settings (`Context`) are built, for each door that starts a run.

- `for_pairs_file`: a command that judges a pairs file (`raer judge`, `ablate`, `robustness`,
  `agree --categorise`). Local packshots are confined to the pairs file's folder unless the
  operator names another (`--images-root`): every command confines them the same way (ablate
  once read them from anywhere).
- `for_stored_run`: a stored run again, with the settings it was made with (retry-failed).
- `for_server`: a LangGraph server client's choice completed by the operator's configuration.
- `for_worker` / `for_shard`: a worker process's or a Ray task's copy of the driver's
  settings (its share of the limits; a shard's own store).

A Context is never made from nothing: `Context.coerce(None)` is refused, so a caller that
forgot its settings fails instead of judging on defaults into ./raer.db.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from raer.nodes.context import Context

__all__ = ["context_fields", "for_pairs_file", "for_server", "for_shard", "for_stored_run",
           "for_worker", "from_thread_state", "worker_share"]


def for_pairs_file(pairs_path: str | Path | None, *, db_path: str,
                   images_root: str | None = None, **options: Any) -> Context:
    """Settings for judging the pairs in `pairs_path`; its folder is the images root unless
    `images_root` names one (None: no pairs file, e.g. `agree --categorise`, which reads no
    packshot)."""
    if images_root:
        root = str(Path(images_root).resolve())
    elif pairs_path is not None:
        root = str(Path(pairs_path).resolve().parent)
    else:
        root = ""
    # no pairs file and no root: nothing reads a local packshot
    return Context(db_path=db_path, images_root=root, local_images=bool(root), **options)


def for_stored_run(row: dict[str, Any] | None, run_id: str, **operational: Any) -> Context:
    """A stored run's settings (its `runs` row) with the caller's operational ones (key
    variable, prices, limits: never stored); the run keeps the folder its local packshots
    were confined to."""
    if row is None:
        raise LookupError(f"no run {run_id!r}")
    stored = json.loads(row["settings"])
    if "baseline" in stored:
        raise LookupError(f"{run_id} is a baseline, not a judging run")
    fields = {f.name for f in dataclasses.fields(Context)}
    operational.setdefault("images_root", row["images_root"] or "")
    return Context(**{**{k: v for k, v in stored.items() if k in fields}, "run_name": run_id,
                      **operational})


def for_server(operator: dict[str, Any], profile: dict[str, Any], chosen: dict[str, Any],
               db_path: str, images_root: str) -> Context:
    """The operator's settings, then the profile, then the client's choices; the store and
    images root are the operator's alone."""
    return Context(**{**operator, **profile, **chosen, "db_path": db_path,
                      "images_root": images_root, "local_images": bool(images_root)})


def from_thread_state(fields: dict[str, Any]) -> Context:
    """The settings a script's or the CLI's graph thread stored in its state (never read on
    the LangGraph server, where a thread's state is a client's to write)."""
    return Context(**fields)


def context_fields(settings: Context) -> dict[str, Any]:
    """The settings as plain fields, to send to another process (the dataclass's cached
    endpoints do not pickle)."""
    return {f.name: getattr(settings, f.name) for f in dataclasses.fields(Context)}


def worker_share(settings: Context, workers: int) -> dict[str, Any]:
    """Each worker's share of the run's limits (identity fields untouched: same run id)."""
    share = {"max_concurrency": max(1, math.ceil(settings.max_concurrency / workers)),
             "query_concurrency": max(1, math.ceil(settings.query_concurrency / workers))}
    for name in ("requests_per_minute", "tokens_per_minute", "max_cost"):
        value = getattr(settings, name)
        if value:
            share[name] = value / workers
    return context_fields(settings) | share


def for_worker(fields: dict[str, Any]) -> Context:
    """A worker process's settings, from the fields `worker_share` sent it."""
    return Context(**fields)


def for_shard(fields: dict[str, Any], db_path: str) -> Context:
    """A Ray task's settings: the driver's, judging into the shard's own store."""
    return Context(**{**fields, "db_path": db_path})


def for_curve_point(fields: dict[str, Any], db_path: str) -> Context:
    """One point of `raer curve`: the shared endpoints plus the point's own settings,
    judging into its own fresh store."""
    return Context(**{**fields, "db_path": db_path})
