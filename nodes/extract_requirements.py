"""extract_requirements: what the shopper asks for, each requirement with kind and importance.

Cached per (normalised query, language, model, prompt hash): another run, or another
engine's result list for the same query, reuses it without a call.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from langgraph.runtime import Runtime

from raer.nodes.common import (
    detect_language,
    key,
    language_name,
    normalise_query,
    open_run,
    query_id,
    settings_of,
    thread_settings,
)
from raer.nodes.context import Context
from raer.nodes.inputs import check_query_input
from raer.nodes.models.door import StructuredCallFailed, structured_call, system_user
from raer.nodes.schemas import Requirements
from raer.nodes.singleflight import once
from raer.nodes.state import QueryState
from raer.prompts import load_prompt

NODE = "extract_requirements"


def requirements_key(normalised_query: str, language: str, settings: Context) -> str:
    """Requirements depend on the query, its language, the model and the prompt only."""
    prompt = load_prompt(NODE, settings.prompt_set)
    return key(NODE, normalised_query, language, settings.endpoints["requirements"].model,
               prompt.hash)


async def extract_requirements(state: QueryState, runtime: Runtime[Context]) -> dict[str, Any]:
    check_query_input(state)  # before any call: a wrong shape must not cost anything
    settings = settings_of(runtime)
    store, run_id = await open_run(settings)
    query = state["query"].strip()
    language = state.get("language") or await asyncio.to_thread(detect_language, query)
    normalised = normalise_query(query)
    qid = query_id(normalised, language)
    await asyncio.to_thread(store.upsert_query, {
        "id": qid, "text": query, "normalised": normalised, "language": language,
        "query_type": state.get("query_type", "")})
    prompt = load_prompt(NODE, settings.prompt_set)
    model = settings.endpoints["requirements"].model
    cache_key = requirements_key(normalised, language, settings)

    async def compute() -> dict[str, Any]:
        system, user = prompt.render(query=query, language=language_name(language))
        result = await structured_call(
            store=store, settings=settings, run_id=run_id, node=NODE, role="requirements",
            schema=Requirements, messages=system_user(system, user), prompt_hash=prompt.hash,
            cache_key=cache_key)
        await asyncio.to_thread(store.put_cached, "requirements", {
            "cache_key": cache_key, "query_id": qid, "language": language, "model": model,
            "prompt_hash": prompt.hash, "requirements": result.parsed.model_dump_json(),
            "call_id": result.call_id})
        return await asyncio.to_thread(store.cached, "requirements", cache_key)

    base = {"run_id": run_id, "query_id": qid, "language": language,
            "run_settings": thread_settings(runtime),
            "products_per_call": settings.products_per_call}
    try:
        row = await once(cache_key, lambda: store.cached("requirements", cache_key), compute)
    except StructuredCallFailed as exc:
        # the key it tried: `raer show` finds the failed attempts by it
        return {**base, "upstream_error": f"requirements failed: {exc.reason}",
                "requirements_key": cache_key}
    return {**base, "requirements": json.loads(row["requirements"]),
            "requirements_key": cache_key}
