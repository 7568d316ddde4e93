"""Routing functions: pure, typed, and the only place the graph branches.

Listwise judging branches twice more, with Send in the node's own Command: chunk_products
sends each chunk to judge_list (and each product judged before straight to its branch), and
judge_list sends its judged products on — each chunk's products as soon as it is done.

A failed upstream step is a route, not a flag checked inside nodes: a query whose
requirements or guidelines could not be made sends its products straight to `record`
(as failed, with the reason), so no packshot is described and no pair is judged for it.
"""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END
from langgraph.types import Send

from raer.nodes.review_policy import outcome
from raer.nodes.state import SHARED_KEYS, ProductState, QueryState


def route_after_requirements(state: QueryState) -> Literal["draft_guidelines"] | list[Send]:
    """Guidelines next; a failed requirements step skips straight to recording."""
    return fan_out_products(state) if state.get("upstream_error") else "draft_guidelines"


def fan_out_products(state: QueryState) -> list[Send] | Literal["__end__"]:
    """One branch per product; the query-level artefacts travel with each branch. Listwise,
    each product is described first and the query's products are then judged in chunks."""
    if not state.get("products"):
        return END
    shared = {k: state[k] for k in SHARED_KEYS if k in state}
    listwise = state.get("products_per_call", 1) > 1 and not state.get("upstream_error")
    return [Send("describe_listed" if listwise else "judge_product",
                 {**shared, "product": product})
            for product in state["products"]]


def route_product_start(state: ProductState) -> Literal["describe_product", "judge_pair",
                                                        "request_review", "record"]:
    """A failed query records at once; a product judged in a listwise chunk goes on from
    its judgment; products without a packshot skip the description."""
    if state.get("upstream_error"):
        return "record"
    if state.get("judge"):
        return route_after_judge(state)
    return "describe_product" if state["product"].get("image") else "judge_pair"


def route_after_judge(state: ProductState) -> Literal["request_review", "record"]:
    """Escalated pairs go to a person first (see raer.nodes.review_policy.outcome)."""
    return "request_review" if outcome(state) == "escalated" else "record"
