"""record: the judgment reaches SQLite as soon as it exists, with its review entry if any.

One row per (run, query, engine, product); a rerun overwrites the same row, never adds one.
Status: done, escalated (sent to a person) or failed (with the reason), as
`review_policy.outcome` decides (the router uses the same function).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from langgraph.runtime import Runtime

from raer.nodes.common import judgment_id, settings_of, store_of
from raer.nodes.context import Context
from raer.nodes.review_policy import outcome
from raer.nodes.state import ProductState


async def record(state: ProductState, runtime: Runtime[Context]) -> dict[str, Any]:
    settings = settings_of(runtime, state)
    store = await store_of(settings)
    product = state["product"]
    engine = product.get("engine") or ""
    jid = judgment_id(state["run_id"], state["query_id"], engine, product["product_id"])
    judge = state.get("judge") or {}
    judgment = judge.get("judgment")
    reasons = judge.get("review_reasons") or []
    status = outcome(state)
    row = {
        "id": jid, "run_id": state["run_id"], "query_id": state["query_id"],
        "product_id": product["product_id"], "engine": engine, "rank": product.get("rank"),
        "status": status,
        "label": judgment["label"] if judgment else None,
        "confidence": judgment["confidence"] if judgment else None,
        "reasoning": judgment["reasoning"] if judgment else None,
        "verdicts": json.dumps(judgment["verdicts"], ensure_ascii=False) if judgment else None,
        "brand_check": judgment["brand_check"] if judgment else None,
        "grade": judgment.get("grade") if judgment else None,
        "error": judge.get("error") or state.get("upstream_error") or None,
        "image_note": state.get("image_note") or None,
        "model": judge.get("model"), "prompt_hash": judge.get("prompt_hash"),
        "input_hash": judge.get("input_hash"),
        "requirements_key": state.get("requirements_key"),
        "guidelines_key": state.get("guidelines_key"),
        "description_key": state.get("description_key"),
        "call_id": judge.get("call_id"),
    }
    review = None
    if status == "escalated":
        human = state.get("human_label")
        review = {"judgment_id": jid, "run_id": state["run_id"],
                  "reasons": json.dumps(reasons, ensure_ascii=False),
                  "status": "resolved" if human else "open", "human_label": human or None,
                  "reviewer": "interactive" if human else None}
    await asyncio.to_thread(store.record_judgment, row, review, product)
    summary = {"judgment_id": jid, "product_id": product["product_id"], "engine": engine,
               "status": status, "label": row["label"], "confidence": row["confidence"],
               "review_reasons": reasons, "human_label": state.get("human_label"),
               "error": row["error"]}
    return {"judgments": [summary]}
