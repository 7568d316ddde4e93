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
from raer.nodes.state import ProductState
from raer.store.scale import LABELS

MAX_ASKS = 20


def _label_from(answer: Any) -> str | None:
    label = answer.get("label") if isinstance(answer, dict) else answer
    return label if isinstance(label, str) and label in LABELS else None


async def request_review(state: ProductState, runtime: Runtime[Context]) -> dict[str, Any]:
    settings = settings_of(runtime, state)
    if settings.review_mode != "interactive":
        return {}
    judge = state.get("judge") or {}
    judgment = judge.get("judgment") or {}
    question = {
        "query": state["query"], "product_id": state["product"]["product_id"],
        "title": state["product"]["title"], "engine": state["product"].get("engine", ""),
        "label": judgment.get("label"), "confidence": judgment.get("confidence"),
        "reasoning": judgment.get("reasoning"), "reasons": judge.get("review_reasons", []),
        "choices": list(LABELS),
    }
    # An answer that is not a label pauses the thread again with the reason, instead of
    # failing it (a failed thread never writes its pair): the person is asked once more.
    for _ in range(MAX_ASKS):
        answer = interrupt(question)
        label = _label_from(answer)
        if label is not None:
            return {"human_label": label}
        question = {**question, "refused": f"the answer {str(answer)[:200]!r} is not one "
                    f"of {list(LABELS)}; answer again"}
    raise ValueError(f"no valid label after {MAX_ASKS} answers")
