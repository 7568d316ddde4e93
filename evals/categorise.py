"""Assign an error category to each hard disagreement, through the same model door.

The categories follow the paper's error analysis (brand, product type, category, attribute
too strict, too lenient, query misread, other). Results are stored in `disagreements` with
the model and prompt that made them, so the analysis can be redone and compared.
"""

from __future__ import annotations

import asyncio

from raer.evals.agreement import Item
from raer.nodes.context import Context
from raer.nodes.judge_pair import format_guidelines, format_product
from raer.nodes.models.door import StructuredCallFailed, structured_call, system_user
from raer.nodes.schemas import DisagreementCause
from raer.prompts import load_prompt
from raer.store import Store
from raer.store.store import now

NODE = "classify_disagreement"


async def categorise(store: Store, settings: Context, run_id: str,
                     items: list[Item]) -> dict[str, str]:
    """Category per judgment id; items already categorised with this prompt are reused."""
    prompt = load_prompt(NODE, settings.prompt_set)
    model = settings.endpoints["judge"].model
    done = store.disagreement_categories(model, prompt.hash)

    async def one(item: Item) -> None:
        if item.judgment_id in done:
            return
        product = store.product(item.product_id)
        guidelines = store.guidelines_row(item.guidelines_key)
        system, user = prompt.render(
            query=item.query, guidelines=format_guidelines(guidelines) if guidelines
            else "(none recorded)", product=format_product(product, None, "", "not shown"),
            human_label=item.majority, judge_label=item.judge or "", reasoning=item.reasoning)
        try:
            result = await structured_call(
                store=store, settings=settings, run_id=run_id, node=NODE, role="judge",
                schema=DisagreementCause, messages=system_user(system, user),
                prompt_hash=prompt.hash)
        except StructuredCallFailed as exc:
            done[item.judgment_id] = f"uncategorised ({exc.reason[:80]})"
            return
        store.put_disagreement({
            "judgment_id": item.judgment_id, "category": result.parsed.category,
            "explanation": result.parsed.explanation, "model": model,
            "prompt_hash": prompt.hash, "call_id": result.call_id, "created_at": now()})
        done[item.judgment_id] = result.parsed.category

    await asyncio.gather(*(one(item) for item in items))
    return {item.judgment_id: done.get(item.judgment_id, "") for item in items}
