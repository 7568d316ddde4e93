"""Solr: `GET {base}/{collection}/select` with the config's params (wt=json), the documents
at `response.docs` (solr.apache.org/guide/solr/latest/query-guide/common-query-parameters.html,
.../response-writers.html#json-response-writer)."""

from __future__ import annotations

import asyncio
from typing import Any

from raer.retrieve.config import Solr
from raer.retrieve.hits import hit_list, products
from raer.retrieve.http import EngineClient
from raer.retrieve.query_set import Query
from raer.retrieve.template import fill, uses


def params_for(engine: Solr, query: Query) -> dict[str, Any]:
    params = fill(engine.params, query.values(engine.k))
    if "rows" not in params and not uses(engine.params, "k"):
        params["rows"] = engine.k
    params["wt"] = "json"
    return params


async def search(engine: Solr, queries: list[Query]) -> list[list[dict[str, Any]]]:
    url = f"{engine.url.rstrip('/')}/{engine.collection}/{engine.handler.strip('/')}"
    async with EngineClient(engine) as client:
        async def one(query: Query) -> list[dict[str, Any]]:
            data = await client.request("GET", url, query=query.text,
                                        params=params_for(engine, query))
            docs = hit_list(data, "response.docs", engine.name, query.text)
            return products(docs, engine.fields, engine.name, query.text, engine.k)

        return list(await asyncio.gather(*(one(q) for q in queries)))
