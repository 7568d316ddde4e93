"""describe_listed: the packshot step of a listwise query, one branch per product (Send).

The same description, cache and notes as describe_product (it is called as is); the result
joins the query's `described` list instead of a product branch, because a chunk's judge call
needs every product of the chunk described first. A product without an image is passed on
as the pairwise graph passes it (no description, no note).
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from raer.nodes.context import Context
from raer.nodes.describe_product import describe_product
from raer.nodes.state import ProductState


async def describe_listed(state: ProductState, runtime: Runtime[Context]) -> dict[str, Any]:
    product = state["product"]
    found = await describe_product(state, runtime) if product.get("image") else {}
    return {"described": [{"product": product, "description": found.get("description"),
                           "description_key": found.get("description_key"),
                           "image_note": found.get("image_note", "")}]}
