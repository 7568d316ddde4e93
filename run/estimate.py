"""`raer judge --dry-run`: calls, tokens and cost a run would need, before anything is sent.

Counts only the work the store does not already hold: requirements and guidelines per query
not yet cached, one description per packshot not yet described (by content hash), one judge
call per pair not yet finished. "Cached" is decided by the nodes' own cache keys
(`requirements_key`, `guidelines_key`, `description_key`), so a prompt edit that makes the
real run pay makes the estimate count it too. Tokens: prompt sizes from the real prompt
files (4 characters a token), a packshot at the tokens its model's provider bills for an
image of raer's size (nodes/models/prices.py), output sizes from this store's history per
node and model, else typical sizes. Listwise (`products_per_call` > 1): ceil(products / N)
judge calls per query (more where a chunk would overflow the judge's context, cut as
chunk_products cuts it), each the shared prefix once plus its products; products judged in
another run are not looked up (their cache key needs the query's guidelines), so the figure
is an upper bound there.
Nothing is written: a store that does not exist yet is not created.
"""

from __future__ import annotations

import hashlib
from typing import Any

from raer.nodes import describe_product, draft_guidelines, extract_requirements
from raer.nodes.context import Context
from raer.nodes.image_source import image_kind
from raer.nodes.images import ImagePolicy, ImageUnavailable, read_local
from raer.nodes.inputs import Pair
from raer.nodes.listing import CHUNK_RESERVE, context_window, cut_chunks
from raer.nodes.models.door import BATCH_DISCOUNT
from raer.nodes.models.prices import estimate_cost, image_tokens, price_of
from raer.prompts import judge_prompt_name, load_prompt
from raer.run.plan import RunPlan, prepare_run
from raer.store.ids import normalise_query

TYPICAL_OUTPUT = {"extract_requirements": 150, "draft_guidelines": 220,
                  "describe_product": 150, "judge_pair": 250}
TYPICAL_CONTEXT = {"draft_guidelines": 120, "judge_pair": 450}  # requirements, guidelines


def _prompt_tokens(name: str, settings: Context, extra_chars: int = 0) -> int:
    prompt = load_prompt(name, settings.prompt_set)
    return (len(prompt.system) + len(prompt.user) + extra_chars) // 4


def _image_hash(source: str, settings: Context) -> str | None:
    """The content hash the description cache is keyed by, for a local file read exactly as
    the run would read it (same root, same refusals); None for URLs and unreadable files."""
    if image_kind(source) != "file":
        return None
    try:
        return hashlib.sha256(read_local(source, ImagePolicy.of(settings))
                              ).hexdigest()
    except ImageUnavailable:
        return None


def estimate(pairs: list[Pair], settings: Context) -> dict[str, Any]:
    """The dry run of judging `pairs`: the run engine's own plan, written nowhere, priced."""
    return estimate_plan(prepare_run(pairs, settings, write=False))


def estimate_plan(plan: RunPlan) -> dict[str, Any]:
    """Calls, tokens and cost the plan's work would take, reading the nodes' own cache keys
    (what is cached costs nothing)."""
    settings, store, run_id = plan.settings, plan.store, plan.run_id
    history = store.output_token_history() if store else {}
    rows: dict[str, dict[str, Any]] = {}

    def add(node: str, role: str, prompt_tokens: int, outputs: int = 1) -> None:
        """One call; `outputs`: the answers it holds (a listwise call's products)."""
        model = settings.endpoints[role].model
        row = rows.setdefault(node, {"node": node, "model": model, "calls": 0,
                                     "input_tokens": 0, "output_tokens": 0})
        row["calls"] += 1
        row["input_tokens"] += prompt_tokens
        per_answer = history.get((node, model))
        if per_answer is not None and node == "judge_list":
            per_answer = None  # the history is per call, of chunks of other sizes
        row["output_tokens"] += round(outputs * (per_answer or TYPICAL_OUTPUT[
            "judge_pair" if node == "judge_list" else node]))

    described: set[str] = set()
    # one judge call per distinct (query, product): two engines' pairs of one product share
    # the judge's input, so the second reuses the answer (the estimate once counted both:
    # 7,474 calls estimated where the run made 3,364)
    judged = store.judged_products(run_id) if store else set()
    listed: list[int] = []
    for group, todo in plan.work:
        requirements_key = extract_requirements.requirements_key(
            normalise_query(group.query), group.language, settings)
        if store is None or store.cached("requirements", requirements_key) is None:
            add("extract_requirements", "requirements",
                _prompt_tokens("extract_requirements", settings, len(group.query)))
        guidelines_key = draft_guidelines.guidelines_key(group.query, group.language,
                                                         requirements_key, settings)
        if settings.guideline_mode == "specific" and (
                store is None or store.cached("guidelines", guidelines_key) is None):
            add("draft_guidelines", "guidelines", _prompt_tokens(
                "draft_guidelines", settings, TYPICAL_CONTEXT["draft_guidelines"] * 4))
        vision = settings.endpoints["vision"]
        for pair in todo:
            if pair.image and settings.describe_images and not vision.local_analysis:
                content_hash = _image_hash(pair.image, settings)
                known = content_hash is not None and store is not None and store.cached(
                    "descriptions", describe_product.description_key(content_hash, settings))
                image = content_hash or pair.image
                if image not in described and not known:
                    described.add(image)
                    side = settings.image_max_side  # packshots are sent downsized to it
                    add("describe_product", "vision",
                        _prompt_tokens("describe_product", settings, 200)
                        + image_tokens(vision.model, side, side, settings.prices))
            if (group.query_id, pair.product_id) in judged:
                continue
            judged.add((group.query_id, pair.product_id))
            product_chars = len(pair.title) + len(pair.description[:1500]) + 200
            if settings.listwise:
                listed.append(product_chars)
                continue
            add("judge_pair", "judge", _prompt_tokens(
                "judge_pair", settings, product_chars + TYPICAL_CONTEXT["judge_pair"] * 4))
        # listwise: ceil(products / N) calls, each the shared prefix plus its products, cut
        # where the judge's context would overflow as chunk_products cuts them
        room = context_window(settings)
        if room is not None:  # the node's own guess: 3 characters a token
            room -= _prompt_tokens(judge_prompt_name(settings.scale == "graded", True),
                                   settings, TYPICAL_CONTEXT["judge_pair"] * 4) * 4 // 3
            room -= CHUNK_RESERVE
        for span in cut_chunks(listed, settings.products_per_call, room):
            chunk = [listed[i] for i in span]
            add("judge_list", "judge", _prompt_tokens(
                judge_prompt_name(settings.scale == "graded", True), settings,
                sum(chunk) + 40 * len(chunk) + TYPICAL_CONTEXT["judge_pair"] * 4),
                outputs=len(chunk))
        listed = []
    by_node = list(rows.values())
    judge_calls = sum(r["calls"] for r in rows.values() if r["node"] in ("judge_pair",
                                                                          "judge_list"))
    prefix = judge_prefix(settings, judge_calls / len(plan.work) if plan.work else 0.0)
    unpriced = []
    total = 0.0
    for row in by_node:
        cost = estimate_cost(row["model"], row["input_tokens"], row["output_tokens"], 0,
                             settings.prices)
        if cost is not None and settings.batch:
            cost *= BATCH_DISCOUNT
        row["cost_usd"] = None if cost is None else round(cost, 4)
        if cost is None:
            unpriced.append(row["model"])
        total += cost or 0.0
    return {"run_id": run_id, "pairs": len(plan.pairs),
            "pairs_to_judge": plan.pairs_to_judge,
            "first_stage_kept": plan.first_stage_kept,
            "calls": sum(r["calls"] for r in by_node),
            "input_tokens": sum(r["input_tokens"] for r in by_node),
            "output_tokens": sum(r["output_tokens"] for r in by_node),
            "cost_usd": round(total, 4), "unpriced_models": sorted(set(unpriced)),
            "by_node": by_node, "judge_prefix": prefix}


def judge_prefix(settings: Context, calls_per_query: float = 0.0) -> dict[str, Any]:
    """The judge prompt's part shared by every product of a query (instructions, the query,
    its requirements and guidelines; the product comes last) against the shortest prefix the
    judge's provider caches: below it, the cached-rate saving the layout is built for is not
    billed at all."""
    prompt = load_prompt("judge_pair", settings.prompt_set)
    shared = prompt.user.split("<product_data>")[0]
    tokens = (len(prompt.system) + len(shared)) // 4 + TYPICAL_CONTEXT["judge_pair"]
    model = settings.endpoints["judge"].model
    price = price_of(model, settings.prices)
    minimum = price.cache_min if price and price.cache_min else None
    out = {"tokens": tokens, "model": model, "cache_minimum": minimum,
           "cached": bool(minimum) and tokens >= minimum, "calls_per_query":
           round(calls_per_query, 2)}
    if price and minimum and not out["cached"] and calls_per_query:
        out["padding"] = padding_pays(tokens, minimum, calls_per_query, price)
    return out


def padding_pays(tokens: int, minimum: int, calls: float, price: Any) -> dict[str, Any]:
    """Would lengthening a short prefix to the caching minimum pay? As it is, each of a
    query's `calls` judge calls pays the prefix in full; padded, the first pays the minimum
    in full and the others at the cached rate (if the provider's cache holds it between
    them, which is not promised). USD per query, at the list price."""
    as_is = calls * tokens * price.input / 1e6
    padded = (minimum * price.input + max(0.0, calls - 1) * minimum * price.cached) / 1e6
    return {"usd_per_query_as_is": round(as_is, 6), "usd_per_query_padded": round(padded, 6),
            "pays": padded < as_is}
