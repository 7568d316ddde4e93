"""Listwise judging's shared parts: a chunk's prompt, each product's own cache key, the
order products are listed in, and a product's judge record.

A listwise prompt is the pairwise judge's layout with many products: the static
instructions, then the query's requirements and guidelines (the prefix every chunk of the
query shares, so a provider caches it), then one `<product_data id="pN">` element per
product. Ids are ours (p1, p2, …), never seller text, and seller text inside an element is
defused as in the pairwise prompt (nodes/seller_text.py), so it cannot open or close one.

A product's judgment is cached under its own key — model, prompt, temperature, the query's
prefix and the product's own part — not under its chunk: the same product reached again
(another engine, another night, a chunk of other neighbours) costs no call. The order is a
seeded shuffle of those keys (`list_seed`), so it is recorded, repeatable, and not the
engine's rank order (a judge that favours the first products would otherwise favour the
engine's own top results).
"""

from __future__ import annotations

import hashlib
from typing import Any

from raer.nodes.common import key, language_name
from raer.nodes.context import Context
from raer.nodes.draft_guidelines import format_requirements
from raer.nodes.judge_pair import format_guidelines, format_product
from raer.nodes.models.door import (
    MAX_OUTPUT_TOKENS,
    REASK_ECHO_CHARS,
    estimate_prompt_tokens,
    system_user,
)
from raer.nodes.models.offline import SLOT_CONTEXT
from raer.nodes.models.prices import price_of
from raer.nodes.review_policy import escalation_reasons
from raer.nodes.state import JudgeRecord
from raer.prompts import Prompt, judge_prompt_name, load_prompt

NODE = "judge_list"
TOKENS_PER_PRODUCT = 800
"""Output tokens a listed judgment may take at worst: the 400-character reasoning (a model
stuck repeating "1." spends a token a character), six 40-character verdicts (~330) and the
label fields (~70). 320, the typical case, cut a degenerate answer of 5 products off at
1,856 tokens, and all three asks failed (seen on the offline demo); the limit caps what a
call may write, and a call is billed for what it wrote."""
MAX_LIST_OUTPUT = 16384
"""The most output tokens one call may ask for (gpt-4o's and gpt-4o-mini's maximum)."""
ANSWER_ROOM = 400
"""Output tokens kept free per product when a chunk is cut to fit the context: the typical
listed judgment (292 tokens a product, offline demo, docs/judging.md) with a margin. The
worst case (TOKENS_PER_PRODUCT) would halve what fits; an answer that runs past the room
is cut, fails validation and is re-asked by the door like any invalid answer (3 of 16 calls
at N=20 in the curve; no pair failed)."""
ENTRY_CHARS = 48
"""A product's `<product_data id="pN">` wrapper in the chunk's prompt."""
CHUNK_RESERVE = 256 + REASK_ECHO_CHARS // 3 + 250
"""Tokens a chunk keeps free besides its products: the list's header and the chat template
(256), and one re-ask's echo of the bad answer (cut to REASK_ECHO_CHARS) with its error."""


def list_prompt(settings: Context) -> Prompt:
    return load_prompt(judge_prompt_name(settings.scale == "graded", listwise=True),
                       settings.prompt_set)


def render(state: dict[str, Any], settings: Context,
           products: str = "") -> tuple[Prompt, str, str]:
    """(prompt, system, user) of a chunk; with no products, the prefix every chunk of the
    query shares."""
    prompt = list_prompt(settings)
    system, user = prompt.render(
        query=state["query"].strip(), language=language_name(state["language"]),
        requirements=format_requirements(state["requirements"]),
        guidelines=format_guidelines(state["guidelines"]), products=products)
    return prompt, system, user


def product_part(member: dict[str, Any], settings: Context) -> str:
    """What the judge reads about one product (the pairwise judge's own product text)."""
    return format_product(member["product"], member.get("description"),
                          settings.endpoints["vision"].model, member.get("image_note", ""))


def item_key(settings: Context, prompt: Prompt, system: str, user_prefix: str,
             part: str) -> str:
    """One product's listwise judgment, whatever chunk it is asked in."""
    return key(NODE, settings.endpoints["judge"].model, prompt.hash, settings.temperature,
               system, user_prefix, part)


def shuffled(keys: list[str], seed: int) -> list[str]:
    """The seeded order products are listed in: repeatable, independent of engine rank."""
    return sorted(keys, key=lambda k: hashlib.sha256(f"{seed}\0{k}".encode()).hexdigest())


def products_block(parts: list[str], notes: list[str]) -> str:
    """The listed products, ids p1…pN in order; a note says why a product is asked again."""
    lines = [f"Products ({len(parts)}):"]
    for number, (part, note) in enumerate(zip(parts, notes, strict=True), 1):
        if note:
            lines.append(f"(p{number} is asked again: {note})")
        lines.append(f'<product_data id="p{number}">\n{part}\n</product_data>')
    return "\n".join(lines)


def context_window(settings: Context) -> int | None:
    """The judge model's context in tokens: the setting, the offline model's slot, the
    model table's entry; None when nothing is known (chunks are then cut by size alone)."""
    judge = settings.endpoints["judge"]
    if settings.context_tokens:
        return settings.context_tokens
    if judge.offline:
        return SLOT_CONTEXT
    price = price_of(judge.model, settings.prices)
    return price.context if price is not None and price.context else None


def prompt_tokens(system: str, user: str) -> int:
    """The door's deliberately high guess (3 characters a token; SmolLM2 reads 3.7 on
    ESCI-US product text, 4.0 on the instructions)."""
    return estimate_prompt_tokens(system_user(system, user))


def chunk_room(settings: Context, system: str, user_prefix: str) -> int | None:
    """Tokens a chunk's products and answers may take: the context less the query's shared
    prefix and CHUNK_RESERVE (None: the context is unknown)."""
    window = context_window(settings)
    if window is None:
        return None
    return window - prompt_tokens(system, user_prefix) - CHUNK_RESERVE


def cut_chunks(part_chars: list[int], size: int, room: int | None) -> list[range]:
    """Consecutive chunks of at most `size` products whose text and answers fit `room`
    tokens (the context less the shared prefix; None: no limit). A product that does not
    fit even alone is asked alone: the provider's refusal is then its recorded reason."""
    chunks: list[range] = []
    start, used = 0, 0
    for i, chars in enumerate(part_chars):
        need = (chars + ENTRY_CHARS) // 3 + ANSWER_ROOM
        full = i - start >= size or (room is not None and used + need > room)
        if full and i > start:
            chunks.append(range(start, i))
            start, used = i, 0
        used += need
    if start < len(part_chars):
        chunks.append(range(start, len(part_chars)))
    return chunks


def output_limit(size: int, room: int | None = None) -> int:
    """What a chunk of `size` products may write: each product's worst case, capped by the
    provider's maximum and by what the context leaves after the prompt (`room`)."""
    limit = min(MAX_LIST_OUTPUT, max(MAX_OUTPUT_TOKENS, 256 + TOKENS_PER_PRODUCT * size))
    return limit if room is None else max(256, min(limit, room))


def judge_record(state: dict[str, Any], member: dict[str, Any], settings: Context, *,
                 prompt_hash: str, input_hash: str, judgment: dict[str, Any] | None,
                 call_id: int | None, error: str = "",
                 inconsistent: list[str] | None = None) -> JudgeRecord:
    """A product's judge record, the same value judge_pair makes for a pair."""
    reasons = list(inconsistent or []) + escalation_reasons(
        judgment, state["requirements"], member["product"], member.get("description"),
        settings.review_below, state["query"])
    return JudgeRecord(model=settings.endpoints["judge"].model, prompt_hash=prompt_hash,
                       input_hash=input_hash, judgment=judgment, call_id=call_id,
                       error=error, review_reasons=reasons)
