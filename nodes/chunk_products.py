"""chunk_products: a listwise query's products, described, cut into judge calls.

Runs once per query, after every packshot is described. Each product gets its own cache key
(nodes/listing.py); a product judged before (another engine's list, an earlier run, a chunk
of other neighbours) is handed on with that judgment and costs nothing, and a product two
engines returned is asked once. The rest are listed in the seeded order and cut into chunks
of `products_per_call`: ceil(products / N) judge calls, one `judge_list` branch each.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Command, Send

from raer.nodes.common import settings_of, store_of
from raer.nodes.context import Context
from raer.nodes.listing import item_key, judge_record, product_part, render, shuffled
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
    size = settings.products_per_call
    for start in range(0, len(order), size):
        chunk = [{"item_key": k, **items[k]} for k in order[start:start + size]]
        sends.append(Send("judge_list", {**shared, "chunk": chunk}))
    return Command(goto=sends)
