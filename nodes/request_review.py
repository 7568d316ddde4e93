"""request_review: a person looks at a doubtful judgment.

Batch runs ("queue") leave the pair for the review queue, which `record` writes with the
reasons; `raer review list / resolve` works through it. Interactive runs pause the thread
with LangGraph's interrupt() and resume with a person's label, stored as the human verdict.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from raer.nodes.common import settings_of
from raer.nodes.context import Context
from raer.nodes.schemas import LABELS
from raer.nodes.state import ProductState


def _label_from(answer: Any) -> str:
    label = answer.get("label") if isinstance(answer, dict) else answer
    if label not in LABELS:
        raise ValueError(f"a reviewer's label must be one of {list(LABELS)}, not {label!r}")
    return label


async def request_review(state: ProductState, runtime: Runtime[Context]) -> dict[str, Any]:
    settings = settings_of(runtime, state)
    if settings.review_mode != "interactive":
        return {}
    judge = state.get("judge") or {}
    judgment = judge.get("judgment") or {}
    answer = interrupt({
        "query": state["query"], "product_id": state["product"]["product_id"],
        "title": state["product"]["title"], "engine": state["product"].get("engine", ""),
        "label": judgment.get("label"), "confidence": judgment.get("confidence"),
        "reasoning": judgment.get("reasoning"), "reasons": judge.get("review_reasons", []),
        "choices": list(LABELS),
    })
    return {"human_label": _label_from(answer)}
