"""The cost–agreement curve's runs: the same labelled pairs judged once per configuration,
each in its own fresh store (so no point rides on another's cache), then measured by
evals/cost_curve.py.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from raer.evals.cost_curve import _pair_key, configurations, summarise
from raer.evals.engines import Gains, effective_labels, qrels_of
from raer.evals.meta_eval import build_engines
from raer.nodes.context import Context
from raer.nodes.inputs import Pair
from raer.nodes.settings import for_curve_point
from raer.run.local import judge_pairs
from raer.store import open_store


def run_point(pairs: list[Pair], settings: Context) -> dict[str, Any]:
    started = time.monotonic()
    rows = asyncio.run(judge_pairs(pairs, settings))
    wall = time.monotonic() - started
    store = open_store(settings.db_path)
    calls = store.call_tokens(settings.run_id)
    return {"rows": rows, "wall_s": round(wall, 1), "calls": calls,
            "qrels": qrels_of(effective_labels(store, settings.run_id), Gains())}


def cost_curve(pairs: list[Pair], humans: dict[tuple[str, str], str], base: dict[str, Any],
               work_dir: Path, sizes: list[int], first_stage: str = "",
               price_as: str = "gpt-4o", on_point: Any = None) -> list[dict[str, Any]]:
    """Judge `pairs` once per configuration (fresh store each, in `work_dir`) and summarise.
    `humans`: the human majority label per (query id, product id); `base`: the Context
    fields every configuration shares (endpoints, models)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    candidates: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        qid, pid = _pair_key(pair)
        entry = candidates.setdefault(qid, {"text": pair.query, "products": {}})
        entry["products"][pid] = " ".join(filter(None, (
            pair.title, pair.brand, pair.description, *pair.attributes.values())))
    engines = build_engines(candidates)
    out, reference = [], None
    for name, extra in configurations(sizes, first_stage):
        db = work_dir / f"curve-{name.replace(' ', '').replace('+', '-').replace('=', '')}.db"
        for suffix in ("", "-wal", "-shm"):  # each point pays for everything it needs
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        settings = for_curve_point({**base, **extra}, str(db))
        point = run_point(pairs, settings)
        row = summarise(name, pairs, point, humans, price_as, engines, reference)
        if reference is None:
            reference = row["engine_ndcg10"]
        out.append(row)
        if on_point:
            on_point(row)
    return out
