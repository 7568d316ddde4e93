"""Graph state: one run per query, products fanned out to a per-product subgraph with Send.

State holds plain JSON (model dumps), so the LangGraph server can show and checkpoint it.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, NotRequired, TypedDict


class QueryInput(TypedDict):
    """What a caller sends: one query and the products an engine returned for it."""

    query: str
    products: list[dict[str, Any]]
    """Each a `Product` (product_id, title, brand, colour, …, image, engine, rank)."""
    language: NotRequired[str]
    """ISO code ("en", "de"); detected from the query when absent."""
    query_type: NotRequired[str]


class QueryState(QueryInput, total=False):
    run_id: str
    query_id: str
    requirements: dict[str, Any]
    requirements_key: str
    guidelines: dict[str, Any]
    guidelines_key: str
    upstream_error: str
    """Why requirements or guidelines could not be made; the query's pairs record as failed."""
    judgments: Annotated[list[dict[str, Any]], operator.add]


class QueryOutput(TypedDict):
    run_id: str
    query_id: str
    judgments: list[dict[str, Any]]


class ProductState(TypedDict, total=False):
    """One (query, product) branch: describe → judge → route → (review) → record."""

    run_id: str
    query_id: str
    query: str
    language: str
    requirements: dict[str, Any]
    requirements_key: str
    guidelines: dict[str, Any]
    guidelines_key: str
    upstream_error: str
    product: dict[str, Any]
    description: dict[str, Any] | None
    description_key: str
    image_note: str
    """Why the packshot could not be used (missing, unreadable, corrupt); empty if it was."""
    judgment: dict[str, Any] | None
    judge_call_id: int | None
    judge_error: str
    judge_model: str
    judge_prompt_hash: str
    input_hash: str
    review_reasons: list[str]
    human_label: str
    judgments: Annotated[list[dict[str, Any]], operator.add]


class ProductOutput(TypedDict):
    """What a product branch hands back to the query graph: its judgment summary."""

    judgments: Annotated[list[dict[str, Any]], operator.add]
