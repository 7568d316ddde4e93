"""describe_product: a vision model describes the packshot; the judge reads the description.

Cached per (image content hash, model, prompt hash, downscale size), so a product shown for
many queries is described once. With no vision endpoint the offline default is local Pillow
analysis (colours and stripes), recorded under the model name "pillow". A missing, unreadable
or corrupt image never fails the pair: the description is left out and the reason recorded.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from langgraph.runtime import Runtime

from raer.nodes.common import key, settings_of, store_of
from raer.nodes.context import PILLOW_VISION, Context
from raer.nodes.images import (
    ImagePolicy,
    ImageUnavailable,
    Packshot,
    analyse_locally,
    load_packshot,
)
from raer.nodes.models.door import StructuredCallFailed, structured_call, system_user
from raer.nodes.schemas import PackshotDescription
from raer.nodes.singleflight import once
from raer.nodes.state import ProductState
from raer.prompts import load_prompt
from raer.store import Store

NODE = "describe_product"
PILLOW_ANALYSER_VERSION = "pillow-analysis-v1"


def _product_hint(product: dict[str, Any]) -> str:
    hint = " / ".join(v for v in (product.get("title", ""), product.get("category", "")) if v)
    return hint[:200]


async def _describe_with_pillow(store: Store, run_id: str, packshot: Packshot,
                                cache_key: str) -> tuple[PackshotDescription, int]:
    started = time.perf_counter()
    description = await asyncio.to_thread(analyse_locally, packshot)
    call_id = await asyncio.to_thread(store.record_call, {
        "run_id": run_id, "node": NODE, "role": "vision", "model": PILLOW_VISION,
        "prompt_hash": PILLOW_ANALYSER_VERSION, "cache_key": cache_key, "attempt": 1,
        "messages": json.dumps([{"role": "local", "content":
                                 f"Pillow analysis of image sha256:{packshot.sha256}"}]),
        "raw_output": description.model_dump_json(), "parsed": description.model_dump_json(),
        "input_tokens": 0, "output_tokens": 0, "cached_tokens": 0,
        "latency_ms": round((time.perf_counter() - started) * 1000, 1), "cost_usd": 0.0,
        "error": None})
    return description, call_id


def description_key(image_sha256: str, settings: Context) -> str:
    """A description depends on the image's content, the model, the prompt (or the local
    analyser's version) and the downscale size."""
    model = settings.endpoints["vision"].model
    prompt_hash = (PILLOW_ANALYSER_VERSION if model == PILLOW_VISION
                   else load_prompt(NODE, settings.prompt_set).hash)
    return key(NODE, image_sha256, model, prompt_hash, settings.image_max_side)


async def describe_product(state: ProductState, runtime: Runtime[Context]) -> dict[str, Any]:
    settings = settings_of(runtime, state)
    store = await store_of(settings)
    product = state["product"]
    if not product.get("image"):
        return {"description": None, "image_note": "no image given"}
    if not settings.describe_images:
        return {"description": None, "image_note": "packshot descriptions switched off"}
    try:
        packshot = await asyncio.to_thread(load_packshot, product["image"],
                                           ImagePolicy.of(settings))
    except ImageUnavailable as exc:
        return {"description": None, "image_note": str(exc)}

    model = settings.endpoints["vision"].model
    if model == PILLOW_VISION:
        prompt_hash = PILLOW_ANALYSER_VERSION
    else:
        prompt = load_prompt(NODE, settings.prompt_set)
        prompt_hash = prompt.hash
    cache_key = description_key(packshot.sha256, settings)

    async def compute() -> dict[str, Any]:
        if model == PILLOW_VISION:
            description, call_id = await _describe_with_pillow(store, state["run_id"],
                                                               packshot, cache_key)
        else:
            system, user = prompt.render(product_hint=_product_hint(product))
            content = [{"type": "text", "text": user},
                       {"type": "image_url",
                        "image_url": {"url": await asyncio.to_thread(
                            packshot.data_url, settings.image_max_side)}}]
            result = await structured_call(
                store=store, settings=settings, run_id=state["run_id"], node=NODE,
                role="vision", schema=PackshotDescription, messages=system_user(system, content),
                prompt_hash=prompt_hash, cache_key=cache_key)
            description, call_id = result.parsed, result.call_id
        return await asyncio.to_thread(store.put_cached, "descriptions", {
            "cache_key": cache_key, "image_hash": packshot.sha256, "model": model,
            "prompt_hash": prompt_hash, "description": description.model_dump_json(),
            "call_id": call_id})

    try:
        row = await once(cache_key, lambda: store.cached("descriptions", cache_key), compute)
    except StructuredCallFailed as exc:
        return {"description": None, "description_key": cache_key,
                "image_note": f"vision model failed: {exc.reason[:300]}"}
    return {"description": json.loads(row["description"]), "description_key": cache_key,
            "image_note": ""}
