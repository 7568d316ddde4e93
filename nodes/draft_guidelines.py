"""draft_guidelines: what makes a product highly relevant / a substitute / irrelevant here.

"specific" mode asks the model per query (the paper's method); "generic" mode uses a fixed
rubric with no model call, the baseline of the guidelines ablation. Cached per (normalised
query, language, model, prompt hash, requirements).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from langgraph.runtime import Runtime

from raer.nodes.common import key, language_name, normalise_query, settings_of, store_of
from raer.nodes.context import Context
from raer.nodes.feedback import examples_key, reviewed_examples
from raer.nodes.models.door import StructuredCallFailed, structured_call, system_user
from raer.nodes.schemas import Guidelines, Requirements
from raer.nodes.singleflight import once
from raer.nodes.state import QueryState
from raer.prompts import load_prompt

NODE = "draft_guidelines"
GENERIC_RUBRIC = Guidelines(
    highly_relevant="The product is exactly what the query asks for: the right product type "
                    "and every attribute the query states (brand, colour, pattern, size, "
                    "gender, material).",
    acceptable_substitute="The product is the right kind of product and would satisfy the "
                          "shopper reasonably well, but misses or only partly meets a "
                          "secondary attribute (a near colour, another style).",
    irrelevant="The product is another kind of product, another brand when a brand is "
                "asked for, or misses an attribute the shopper clearly requires.",
)
GENERIC_MODEL = "generic-rubric"
GENERIC_HASH = key(GENERIC_RUBRIC.model_dump())[:12]


def format_requirements(requirements: dict[str, Any]) -> str:
    parsed = Requirements.model_validate(requirements)
    lines = [f"- {r.kind}: {r.value} ({r.importance}"
             + (", may be a brand or a plain word" if r.brand_or_literal else "") + ")"
             for r in parsed.requirements]
    return "\n".join(lines) or "- (no explicit requirements found)"


def guidelines_key(query: str, language: str, requirements_key: str,
                   settings: Context) -> str:
    """Specific guidelines depend on the query, its language, the model, the prompt and the
    requirements they were drafted from; the generic rubric on its own text only."""
    if settings.guideline_mode == "generic":
        return key(NODE, "generic", GENERIC_HASH)
    prompt = load_prompt(NODE, settings.prompt_set)
    return key(NODE, normalise_query(query), language, settings.endpoints["guidelines"].model,
               prompt.hash, requirements_key)


async def draft_guidelines(state: QueryState, runtime: Runtime[Context]) -> dict[str, Any]:
    settings = settings_of(runtime, state)
    store = await store_of(settings)
    cache_key = guidelines_key(state["query"], state["language"], state["requirements_key"],
                               settings)
    if settings.guideline_mode == "generic":
        await asyncio.to_thread(store.put_cached, "guidelines", {
            "cache_key": cache_key, "query_id": None, "mode": "generic",
            "model": GENERIC_MODEL, "prompt_hash": GENERIC_HASH, "requirements_key": None,
            **GENERIC_RUBRIC.model_dump(), "call_id": None})
        return await _with_reviews(store, state, settings, GENERIC_RUBRIC.model_dump(),
                                   cache_key)

    prompt = load_prompt(NODE, settings.prompt_set)
    model = settings.endpoints["guidelines"].model

    async def compute() -> dict[str, Any]:
        system, user = prompt.render(query=state["query"].strip(),
                                     language=language_name(state["language"]),
                                     requirements=format_requirements(state["requirements"]))
        result = await structured_call(
            store=store, settings=settings, run_id=state["run_id"], node=NODE,
            role="guidelines", schema=Guidelines, messages=system_user(system, user),
            prompt_hash=prompt.hash, cache_key=cache_key)
        await asyncio.to_thread(store.put_cached, "guidelines", {
            "cache_key": cache_key, "query_id": state["query_id"], "mode": "specific",
            "model": model, "prompt_hash": prompt.hash,
            "requirements_key": state["requirements_key"], **result.parsed.model_dump(),
            "call_id": result.call_id})
        return await asyncio.to_thread(store.cached, "guidelines", cache_key)

    try:
        row = await once(cache_key, lambda: store.cached("guidelines", cache_key), compute)
    except StructuredCallFailed as exc:
        return {"upstream_error": f"guidelines failed: {exc.reason}",
                "guidelines_key": cache_key}
    return await _with_reviews(store, state, settings,
                               {k: row[k] for k in Guidelines.model_fields}, cache_key)


async def _with_reviews(store: Any, state: QueryState, settings: Context,
                        drafted: dict[str, Any], cache_key: str) -> dict[str, Any]:
    """The drafted guidelines, plus the query's reviewed examples when the run learns from
    reviews (stored under the extended key, so `raer show` finds what the judge saw)."""
    examples = (await asyncio.to_thread(reviewed_examples, store, state["query_id"])
                if settings.learn_from_reviews else [])
    if not examples:
        return {"guidelines": drafted, "guidelines_key": cache_key}
    extended = examples_key(cache_key, examples)
    base = await asyncio.to_thread(store.cached, "guidelines", cache_key)
    await asyncio.to_thread(store.put_cached, "guidelines", {
        **{k: v for k, v in base.items() if k != "created_at"}, "cache_key": extended,
        "examples": json.dumps(examples, ensure_ascii=False)})
    return {"guidelines": {**drafted, "examples": examples}, "guidelines_key": extended}


