"""Any HTTP JSON search endpoint (Algolia, Vespa, an in-house service): the URL template with
its values URL-encoded, an optional JSON body template, the hits at a JMESPath."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from raer.retrieve.config import HttpJson
from raer.retrieve.hits import hit_list, products
from raer.retrieve.http import EngineClient
from raer.retrieve.query_set import Query
from raer.retrieve.template import fill, fill_url


async def search(engine: HttpJson, queries: list[Query]) -> list[list[dict[str, Any]]]:
    async with EngineClient(engine) as client:
        async def one(query: Query) -> list[dict[str, Any]]:
            values = query.values(engine.k)
            body = fill(engine.body, values) if engine.body is not None else None
            data = await client.request(
                engine.method, fill_url(engine.url, values), query=query.text,
                content=json.dumps(body).encode() if body is not None else None,
                content_type="application/json" if body is not None else "")
            hits = hit_list(data, engine.hits, engine.name, query.text)
            return products(hits, engine.fields, engine.name, query.text, engine.k)

        return list(await asyncio.gather(*(one(q) for q in queries)))
