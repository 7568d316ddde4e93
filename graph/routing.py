"""Routing functions: pure, typed, and the only place the graph branches."""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END
from langgraph.types import Send

from raer.nodes.state import ProductState, QueryState

_SHARED = ("run_id", "query_id", "query", "language", "requirements", "requirements_key",
           "guidelines", "guidelines_key", "upstream_error")


def fan_out_products(state: QueryState) -> list[Send] | Literal["__end__"]:
    """One branch per product; the query-level artefacts travel with each branch."""
    if not state.get("products"):
        return END
    shared = {k: state[k] for k in _SHARED if k in state}
    return [Send("judge_product", {**shared, "product": product})
            for product in state["products"]]


def route_product_start(state: ProductState) -> Literal["describe_product", "judge_pair"]:
    """Products without a packshot skip the description step."""
    return "describe_product" if state["product"].get("image") else "judge_pair"


def route_after_judge(state: ProductState) -> Literal["request_review", "record"]:
    """Escalate when the policy gave reasons (see raer.nodes.review_policy); else record."""
    return "request_review" if state.get("review_reasons") else "record"
