"""judge_list: one judge call for a chunk of a query's products (listwise judging).

The answer holds one judgment per listed id, and each is validated on its own: the pairwise
schema, with the query's requirements as context when consistency is checked. A product the
answer left out, judged twice, or judged invalidly is asked again alone with the others still
open — never the whole chunk — up to `max_reasks` more calls; an answer still inconsistent
after them goes to a person (as judge_pair does), one still missing is recorded as failed
with the reason. Accepted judgments are stored per product (store `listed_judgments`) with
the shared call's id, their position and the chunk's size; each product then goes on to its
own branch (review, record) as soon as its chunk is done.

Every call goes through the model door under the chunk's own cache key, so a run killed after
a call was recorded but before its products were stored asks nothing again: the rerun makes
the same chunk (the order is seeded), finds the answer, and stores it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Command, Send
from pydantic import ValidationError

from raer.nodes.common import key, settings_of, store_of
from raer.nodes.context import Context
from raer.nodes.judge_pair import consistency_context
from raer.nodes.listing import (
    NODE,
    context_window,
    judge_record,
    list_prompt,
    output_limit,
    products_block,
    prompt_tokens,
    render,
)
from raer.nodes.models.door import StructuredCallFailed, structured_call, system_user
from raer.nodes.schemas import GradedJudgment, Judgment, judgment_list
from raer.nodes.state import SHARED_KEYS, ChunkState


def _first_error(exc: ValidationError) -> str:
    return str(exc.errors()[0].get("msg", exc)).removeprefix("Value error, ")[:300]


async def judge_list(state: ChunkState, runtime: Runtime[Context]) -> Command:
    settings = settings_of(runtime, state)
    store = await store_of(settings)
    graded = settings.scale == "graded"
    single = GradedJudgment if graded else Judgment
    prompt = list_prompt(settings)
    context = consistency_context(state, settings)
    window = context_window(settings)

    open_items = list(state["chunk"])
    notes = {item["item_key"]: "" for item in open_items}
    done: dict[str, tuple[dict[str, Any] | None, int | None, str, list[str]]] = {}
    unchecked: dict[str, tuple[dict[str, Any], int | None, str]] = {}
    last_call: int | None = None
    for _ in range(settings.max_reasks + 1):
        if not open_items:
            break
        _, system, user = render(state, settings, products_block(
            [item["product_part"] for item in open_items],
            [notes[item["item_key"]] for item in open_items]))
        schema = judgment_list(len(open_items), graded)
        room = None if window is None else window - prompt_tokens(system, user)
        try:
            result = await structured_call(
                store=store, settings=settings, run_id=state["run_id"], node=NODE,
                role="judge", schema=schema, messages=system_user(system, user),
                prompt_hash=prompt.hash,
                cache_key=key(NODE, settings.endpoints["judge"].model, prompt.hash,
                              settings.temperature, system, user),
                max_output_tokens=output_limit(len(open_items), room))
        except StructuredCallFailed as exc:  # no valid answer at all: the open ones fail
            for item in open_items:
                done[item["item_key"]] = (None, exc.call_id,
                                          f"judge failed: {exc.reason[:500]}", [])
            open_items = []
            break
        last_call = result.call_id
        by_id = {entry.product: entry for entry in result.parsed.judgments}
        accepted, still_open = [], []
        for position, item in enumerate(open_items, 1):
            entry = by_id.get(f"p{position}")
            if entry is None:
                notes[item["item_key"]] = "your last answer left it out or judged it invalidly"
                still_open.append(item)
                continue
            fields = entry.model_dump(exclude={"product"})
            try:
                judgment = single.model_validate(fields, context=context).as_judgment()
            except ValidationError as exc:
                reason = _first_error(exc)
                unchecked[item["item_key"]] = (single.model_validate(fields).as_judgment(),
                                               result.call_id, reason)
                notes[item["item_key"]] = f"your last judgment of it was refused: {reason}"
                still_open.append(item)
                continue
            unchecked.pop(item["item_key"], None)
            done[item["item_key"]] = (judgment, result.call_id, "", [])
            accepted.append({"item_key": item["item_key"], "call_id": result.call_id,
                             "position": position, "size": len(open_items),
                             "seed": settings.list_seed, "list_id": f"p{position}",
                             "product_part": item["product_part"],
                             "judgment": json.dumps(judgment, ensure_ascii=False)})
        if accepted:
            await asyncio.to_thread(store.put_listed, accepted)
        open_items = still_open
    for item in open_items:  # still open after every ask
        ikey = item["item_key"]
        if ikey in unchecked:  # valid, but inconsistent with its inputs: a person decides
            judgment, call_id, reason = unchecked[ikey]
            done[ikey] = (judgment, call_id, "",
                          [f"the judgment is inconsistent with its inputs: {reason}"])
        else:
            done[ikey] = (None, last_call, f"judge failed: the answer left this product out "
                          f"after {settings.max_reasks + 1} asks", [])

    shared = {k: state[k] for k in SHARED_KEYS if k in state}
    sends = []
    for item in state["chunk"]:
        judgment, call_id, error, inconsistent = done[item["item_key"]]
        for member in item["members"]:
            record = judge_record(state, member, settings, prompt_hash=prompt.hash,
                                  input_hash=item["item_key"], judgment=judgment,
                                  call_id=call_id, error=error, inconsistent=inconsistent)
            sends.append(Send("judge_product", {**shared, **member, "judge": record}))
    return Command(goto=sends)

