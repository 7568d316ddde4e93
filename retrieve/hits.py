"""An engine's hits as raer's product fields, by the config's JMESPath field map.

The hits are untrusted: a field that is missing, null or of an odd type is read as empty,
a list is joined with spaces (Solr's multi-valued fields), and a hit without a product id
or title is an error naming the engine, query, rank and field — a field map that points at
the wrong place must not turn into pairs with empty titles.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jmespath

from raer.retrieve.config import PRODUCT_FIELDS, Fields
from raer.retrieve.http import EngineError


@cache
def _compiled(path: str):
    return jmespath.compile(path)


def _text(value: Any) -> str:
    if value is None or isinstance(value, dict):
        return ""
    if isinstance(value, list):
        return " ".join(_text(v) for v in value).strip()
    if isinstance(value, bool):
        return str(value).lower()
    return str(value).strip()


def select(data: Any, path: str) -> Any:
    return _compiled(path).search(data)


def hit_list(data: Any, path: str, engine: str, query: str) -> list[Any]:
    found = select(data, path)
    if found is None:
        return []
    if not isinstance(found, list):
        raise EngineError(f"engine {engine}: query {query!r}: {path!r} in the answer is "
                          f"{type(found).__name__}, not a list of hits")
    return found


def products(hits: list[Any], fields: Fields, engine: str, query: str, k: int
             ) -> list[dict[str, Any]]:
    """The first k hits as product dicts (rank order kept); duplicates of an id dropped."""
    out, seen = [], set()
    for rank, hit in enumerate(hits[:k], start=1):
        product: dict[str, Any] = {}
        for name in PRODUCT_FIELDS:
            path = getattr(fields, name)
            product[name] = _text(select(hit, path)) if path else ""
        for field in ("product_id", "title"):
            if not product[field]:
                raise EngineError(
                    f"engine {engine}: query {query!r}: hit {rank} has no {field} at "
                    f"{getattr(fields, field)!r} (fix fields.{field} in the config)")
        product["attributes"] = {name: text for name, path in fields.attributes.items()
                                 if (text := _text(select(hit, path)))}
        if product["product_id"] in seen:
            continue
        seen.add(product["product_id"])
        out.append(product)
    return out
