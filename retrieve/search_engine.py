"""OpenSearch and Elasticsearch: the search API and the multi-search API.

Requests as the engines document them:
- `POST /{index}/_search` with a JSON query body (OpenSearch: docs.opensearch.org/latest/api-
  reference/search-apis/search/; Elasticsearch: elastic.co/docs/api/doc/elasticsearch/
  operation/operation-search); hits at `hits.hits`, each with `_id`, `_score`, `_source`.
- `POST /_msearch` with an NDJSON body, a header line (`{"index": …}`) then a body line per
  search, each line ending in a newline, `Content-Type: application/x-ndjson`; the answer's
  `responses` list is in request order, and one search can fail alone (an `error` and
  `status` in its place) — that query is then an error, not an empty result
  (docs.opensearch.org/latest/api-reference/search-apis/multi-search/;
  elastic.co/docs/api/doc/elasticsearch/operation/operation-msearch).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from raer.retrieve.config import SearchEngine
from raer.retrieve.hits import hit_list, products
from raer.retrieve.http import EngineClient, EngineError, engine_reason
from raer.retrieve.query_set import Query
from raer.retrieve.template import fill, uses


def body_for(engine: SearchEngine, query: Query) -> dict[str, Any]:
    body = fill(engine.query, query.values(engine.k))
    if "size" not in body and not uses(engine.query, "k"):
        body["size"] = engine.k
    return body


async def search(engine: SearchEngine, queries: list[Query]) -> list[list[dict[str, Any]]]:
    base = engine.url.rstrip("/")
    async with EngineClient(engine) as client:
        if engine.msearch:
            batches = [queries[i:i + engine.msearch]
                       for i in range(0, len(queries), engine.msearch)]
            answers = await asyncio.gather(*(_msearch(client, base, engine, batch)
                                             for batch in batches))
            return [hits for batch in answers for hits in batch]

        async def one(query: Query) -> list[dict[str, Any]]:
            data = await client.request(
                "POST", f"{base}/{engine.index}/_search", query=query.text,
                content=json.dumps(body_for(engine, query)).encode(),
                content_type="application/json")
            return _hits(data, engine, query)

        return list(await asyncio.gather(*(one(q) for q in queries)))


async def _msearch(client: EngineClient, base: str, engine: SearchEngine,
                   batch: list[Query]) -> list[list[dict[str, Any]]]:
    lines = []
    for query in batch:
        lines.append(json.dumps({"index": engine.index}))
        lines.append(json.dumps(body_for(engine, query)))
    data = await client.request("POST", f"{base}/_msearch", query=batch[0].text,
                                content=("\n".join(lines) + "\n").encode(),
                                content_type="application/x-ndjson")
    responses = data.get("responses") if isinstance(data, dict) else None
    if not isinstance(responses, list) or len(responses) != len(batch):
        raise EngineError(f"engine {engine.name}: _msearch answered "
                          f"{len(responses) if isinstance(responses, list) else 'no'} "
                          f"responses for {len(batch)} searches")
    out = []
    for query, answer in zip(batch, responses, strict=True):
        if not isinstance(answer, dict) or "error" in answer:
            reason = engine_reason(json.dumps(answer).encode())
            raise EngineError(f"engine {engine.name}: query {query.text!r}: the search "
                              f"failed in _msearch (status {answer.get('status', '?')}): "
                              f"{reason}")
        out.append(_hits(answer, engine, query))
    return out


def _hits(data: Any, engine: SearchEngine, query: Query) -> list[dict[str, Any]]:
    return products(hit_list(data, "hits.hits", engine.name, query.text), engine.fields,
                    engine.name, query.text, engine.k)
