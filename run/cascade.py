"""The cascade's step in the run plan: the pairs the first stage (nodes/models/first_stage.py)
is sure of are recorded as judged before any model call; the rest stay as work.

Every door's plan calls `split_work` (run/plan.py), so a kept pair costs no model call under
one process, `--workers` or `--ray` alike.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from raer.nodes.models.first_stage import (
    MODEL_NAME,
    FirstStage,
    FirstStageError,
    load_first_stage,
)
from raer.store.ids import judgment_id, query_identity


@lru_cache(maxsize=4)
def _model_at(path: str, digest: str) -> FirstStage:
    model = load_first_stage(path)
    if model.digest != digest:
        raise FirstStageError(f"{path}: the first-stage model changed since the run's settings "
                              f"were made ({digest} then, {model.digest} now): start again")
    return model


def split_work(settings: Any, run_id: str, work: list[tuple[Any, list[Any]]]
               ) -> tuple[list[dict[str, Any]], list[tuple[Any, list[Any]]]]:
    """(judgment rows for the pairs the first stage keeps, the work left for the judge). A
    product two engines returned is one prediction per engine's pair (the same features,
    the same label)."""
    if not settings.first_stage or not work:
        return [], work
    model = _model_at(settings.first_stage, settings.first_stage_digest)
    flat = [(group, pair) for group, todo in work for pair in todo]
    predictions = model.predict([(group.query, pair.product().model_dump())
                                 for group, pair in flat])
    kept_rows: list[dict[str, Any]] = []
    kept_ids: set[int] = set()
    for (group, pair), (label, confidence) in zip(flat, predictions, strict=True):
        if confidence < model.keep_at_or_above:
            continue
        kept_ids.add(id(pair))
        qid = query_identity(group.query, group.language).id
        kept_rows.append({
            "id": judgment_id(run_id, qid, pair.engine, pair.product_id), "run_id": run_id,
            "query_id": qid, "product_id": pair.product_id, "engine": pair.engine,
            "rank": pair.rank, "status": "done", "label": label, "confidence": confidence,
            "reasoning": f"first stage {model.digest}: confidence {confidence:.3f} >= "
                         f"{model.keep_at_or_above:.3f}, kept without a model call",
            "model": f"{MODEL_NAME}:{model.digest}", "error": None})
    left = [(group, [p for p in todo if id(p) not in kept_ids]) for group, todo in work]
    return kept_rows, [(group, todo) for group, todo in left if todo]


def record_kept(store: Any, work: list[tuple[Any, list[Any]]],
                rows: list[dict[str, Any]]) -> None:
    """Write the kept pairs' queries, products and judgments in one transaction."""
    if not rows:
        return
    kept = {(r["query_id"], r["engine"], r["product_id"]) for r in rows}
    queries, products = {}, {}
    for group, todo in work:
        identity = query_identity(group.query, group.language)
        for pair in todo:
            if (identity.id, pair.engine, pair.product_id) in kept:
                queries[identity.id] = identity.row(group.query_type)
                products[pair.product_id] = pair.product().model_dump()
    store.mark_pairs(list(queries.values()), list(products.values()), rows)
