"""Graph state: one run per query, products fanned out to a per-product subgraph with Send.

State holds plain JSON (model dumps), so the LangGraph server can show and checkpoint it.
typing_extensions.TypedDict, not typing's: pydantic builds the server's input and output
JSON schemas from these on Python 3.11 and refuses typing.TypedDict there.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, NotRequired

from pydantic import ConfigDict
from typing_extensions import TypedDict

from raer.nodes.schemas import Product


class QueryInput(TypedDict):
    """What a caller sends: one query and the products an engine returned for it."""

    __pydantic_config__ = ConfigDict(use_attribute_docstrings=True)  # type: ignore[misc]

    query: str
    """The shopper's query, as typed."""
    products: list[Product]
    """The engine's results: each needs product_id and title; image is a path or URL."""
    language: NotRequired[str]
    """ISO code ("en", "de"); detected from the query when absent."""
    query_type: NotRequired[str]
    """Your query segment (kept with the query)."""


class QueryKeys(TypedDict, total=False):
    """What every product branch shares with its query: ids and the query's artefacts."""

    run_id: str
    query_id: str
    query: str
    language: str
    requirements: dict[str, Any]
    requirements_key: str
    guidelines: dict[str, Any]
    guidelines_key: str
    run_settings: dict[str, Any]
    """The settings the thread started with: later steps (a resumed review) use these."""
    upstream_error: str
    """Why requirements or guidelines could not be made; the query's pairs record as failed."""
    products_per_call: int
    """The run's listwise chunk size (1: pairwise), so the routes can read it."""


SHARED_KEYS = tuple(QueryKeys.__annotations__)


class QueryState(QueryInput, QueryKeys, total=False):
    judgments: Annotated[list[dict[str, Any]], operator.add]
    described: Annotated[list[dict[str, Any]], operator.add]
    """Listwise: each product with its packshot description, gathered before chunking."""


class ChunkState(QueryKeys, total=False):
    """One listwise judge call's products: each distinct product's key and own prompt part,
    and the query's products it stands for (two engines may return the same product)."""

    chunk: list[dict[str, Any]]


class QueryOutput(TypedDict):
    """What a run answers: its run, the query's id, and one summary per product."""

    __pydantic_config__ = ConfigDict(use_attribute_docstrings=True)  # type: ignore[misc]

    run_id: str
    """The run (named by the hash of its settings): `raer show`, `raer evaluate` take it."""
    query_id: str
    """The query's id in the store (normalised text and language)."""
    judgments: list[dict[str, Any]]
    """One summary per product: judgment_id, product_id, engine, status, label, confidence,
    review_reasons, human_label, error."""


class JudgeRecord(TypedDict, total=False):
    """What judge_pair made of one pair, as one value: the judgment (None when it failed),
    the call that made it, why it failed, and why a person should look at it."""

    judgment: dict[str, Any] | None
    call_id: int | None
    error: str
    model: str
    prompt_hash: str
    input_hash: str
    review_reasons: list[str]


class ProductState(QueryKeys, total=False):
    """One (query, product) branch: describe → judge → route → (review) → record."""

    product: dict[str, Any]
    description: dict[str, Any] | None
    description_key: str
    image_note: str
    """Why the packshot could not be used (missing, unreadable, corrupt); empty if it was."""
    judge: JudgeRecord
    human_label: str
    judgments: Annotated[list[dict[str, Any]], operator.add]


class ProductOutput(TypedDict):
    """What a product branch hands back to the query graph: its judgment summary."""

    judgments: Annotated[list[dict[str, Any]], operator.add]
