"""chunk_products: a listwise query's products, described, cut into judge calls.

Runs once per query, after every packshot is described. Each product gets its own cache key
(nodes/listing.py); a product judged before (another engine's list, an earlier run, a chunk
of other neighbours) is handed on with that judgment and costs nothing, and a product two
engines returned is asked once. The rest are listed in the seeded order and cut into chunks
of `products_per_call`: ceil(products / N) judge calls, one `judge_list` branch each. A
chunk that would not fit the judge model's context (nodes/listing.py `context_window`) is
closed early, so N = 20 on a model with an 8,192-token context makes smaller chunks instead
of prompts the server refuses.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Command, Send

from raer.nodes.common import settings_of, store_of
from raer.nodes.context import Context
from raer.nodes.listing import (
    chunk_room,
    cut_chunks,
    item_key,
    judge_record,
    product_part,
    render,
    shuffled,
)
from raer.nodes.state import SHARED_KEYS, QueryState


async def chunk_products(state: QueryState, runtime: Runtime[Context]) -> Command:
    settings = settings_of(runtime, state)
    store = await store_of(settings)
    prompt, system, user_prefix = render(state, settings)
    items: dict[str, dict[str, Any]] = {}
    for member in state.get("described") or []:
        part = product_part(member, settings)
        entry = items.setdefault(item_key(settings, prompt, system, user_prefix, part),
                                 {"product_part": part, "members": []})
        entry["members"].append(member)
    known = await asyncio.to_thread(store.listed, list(items))
    shared = {k: state[k] for k in SHARED_KEYS if k in state}
    sends = []
    for ikey, row in known.items():
        for member in items[ikey]["members"]:
            record = judge_record(state, member, settings, prompt_hash=prompt.hash,
                                  input_hash=ikey, judgment=json.loads(row["judgment"]),
                                  call_id=row["call_id"])
            sends.append(Send("judge_product", {**shared, **member, "judge": record}))
    order = shuffled([k for k in items if k not in known], settings.list_seed)
    room = chunk_room(settings, system, user_prefix)
    for span in cut_chunks([len(items[k]["product_part"]) for k in order],
                           settings.products_per_call, room):
        chunk = [{"item_key": order[i], **items[order[i]]} for i in span]
        sends.append(Send("judge_list", {**shared, "chunk": chunk}))
    return Command(goto=sends)
