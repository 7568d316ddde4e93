"""judge_pair: chain-of-thought judgment of one (query, product) pair, structured and validated.

The prompt puts the stable per-query part first (instructions, requirements, guidelines) and
the product last, so a query's products share one provider-cached prefix. Product text and
the packshot description are untrusted seller content: they go inside <product_data> tags,
with any tag look-alikes in them neutralised, and the instructions say they are data.
Identical judge inputs (same model, prompt and content) reuse the earlier answer.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from raer.nodes.common import key, language_name, settings_of, store_of
from raer.nodes.context import Context
from raer.nodes.draft_guidelines import format_requirements
from raer.nodes.models.door import StructuredCallFailed, structured_call, system_user
from raer.nodes.review_policy import escalation_reasons
from raer.nodes.schemas import GradedJudgment, Judgment
from raer.nodes.seller_text import defuse
from raer.nodes.singleflight import once
from raer.nodes.state import JudgeRecord, ProductState
from raer.prompts import Prompt, load_prompt

NODE = "judge_pair"
# Caps on seller text in the prompt (characters); a cut says so in the prompt, which is
# recorded with the call, so `raer show` shows what the judge saw.
CAPS = {"title": 300, "brand": 200, "colour": 200, "category": 200, "attribute": 300,
        "description": 1500, "packshot": 300}
MAX_ATTRIBUTES = 40


def untrusted(text: str, cap: int = 300) -> str:
    """Seller text with anything that could close or open our delimiters defused, cut to
    `cap` characters with a note of the cut."""
    text = defuse(text)
    if len(text) <= cap:
        return text
    return f"{text[:cap]} … [cut at {cap} of {len(text)} characters]"


def format_product(product: dict[str, Any], description: dict[str, Any] | None,
                   description_model: str, image_note: str) -> str:
    lines = [f"title: {untrusted(product['title'], CAPS['title'])}"]
    for field in ("brand", "colour", "category"):
        if product.get(field):
            lines.append(f"{field}: {untrusted(product[field], CAPS[field])}")
    attributes = list((product.get("attributes") or {}).items())
    for name, value in attributes[:MAX_ATTRIBUTES]:
        lines.append(f"{untrusted(name, 60)}: {untrusted(value, CAPS['attribute'])}")
    if len(attributes) > MAX_ATTRIBUTES:
        lines.append(f"[{len(attributes) - MAX_ATTRIBUTES} more attributes cut]")
    if product.get("description"):
        lines.append(f"description: {untrusted(product['description'], CAPS['description'])}")
    if description:
        colours = ", ".join(description.get("colours", []))
        lines.append(f"packshot (described by {description_model}): type "
                     f"{untrusted(description.get('product_type', ''), CAPS['packshot'])}; "
                     f"colours {untrusted(colours, CAPS['packshot'])}; "
                     f"pattern {untrusted(description.get('pattern', ''), CAPS['packshot'])}; "
                     f"visible text "
                     f"{untrusted(description.get('visible_text', ''), CAPS['packshot']) or 'none'}"
                     f"; {untrusted(description.get('details', ''), CAPS['packshot'])}")
    else:
        lines.append(f"packshot: not available ({image_note or 'no image'})")
    return "\n".join(lines)


def format_guidelines(guidelines: dict[str, Any]) -> str:
    text = (f"- highly relevant: {guidelines['highly_relevant']}\n"
            f"- acceptable substitute: {guidelines['acceptable_substitute']}\n"
            f"- irrelevant: {guidelines['irrelevant']}")
    examples = guidelines.get("examples") or []
    if examples:  # people's decisions on this query (nodes/feedback.py)
        text += "\nExamples people decided for this query (judge similar products alike):"
        for e in examples:
            note = f" (note: {untrusted(e['note'], 200)})" if e.get("note") else ""
            brand = f" [brand {untrusted(e['brand'], 60)}]" if e.get("brand") else ""
            text += f"\n- {untrusted(e['title'], 200)}{brand} → {e['label']}{note}"
    return text


def judge_prompt(state: ProductState, settings: Context) -> tuple[Prompt, str, str]:
    """(prompt, system, user) for a pair: the judge's exact input."""
    graded = settings.scale == "graded"
    prompt = load_prompt("judge_pair_graded" if graded else NODE, settings.prompt_set)
    system, user = prompt.render(
        query=state["query"].strip(), language=language_name(state["language"]),
        requirements=format_requirements(state["requirements"]),
        guidelines=format_guidelines(state["guidelines"]),
        product=format_product(state["product"], state.get("description"),
                               settings.endpoints["vision"].model,
                               state.get("image_note", "")))
    return prompt, system, user


def consistency_context(state: dict[str, Any], settings: Context) -> dict[str, Any] | None:
    """The validation context a judgment is checked against (nodes/schemas.py), or None when
    consistency is not checked (off, or auto with the embedded offline model)."""
    checked = settings.check_consistency == "on" or (
        settings.check_consistency == "auto" and not settings.endpoints["judge"].offline)
    return {"requirements": state["requirements"].get("requirements", [])} if checked \
        else None


def judge_key(settings: Context, prompt: Prompt, system: str, user: str) -> str:
    """Identical judge inputs (model, prompt, temperature, exact text) share one answer."""
    return key(NODE, settings.endpoints["judge"].model, prompt.hash, settings.temperature,
               system, user)


async def judge_pair(state: ProductState, runtime: Runtime[Context]) -> dict[str, Any]:
    settings = settings_of(runtime, state)
    store = await store_of(settings)
    schema = GradedJudgment if settings.scale == "graded" else Judgment
    prompt, system, user = judge_prompt(state, settings)
    input_hash = judge_key(settings, prompt, system, user)
    model = settings.endpoints["judge"].model
    record = JudgeRecord(model=model, prompt_hash=prompt.hash, input_hash=input_hash)

    context = consistency_context(state, settings)

    async def compute() -> tuple[dict[str, Any], int]:
        result = await structured_call(
            store=store, settings=settings, run_id=state["run_id"], node=NODE, role="judge",
            schema=schema, messages=system_user(system, user), prompt_hash=prompt.hash,
            cache_key=input_hash, context=context)
        return result.parsed.as_judgment(), result.call_id

    try:  # compute looks for a stored answer itself (structured_call)
        judgment, call_id = await once(input_hash, None, compute)
    except StructuredCallFailed as exc:
        if exc.unchecked is None:
            return {"judge": {**record, "judgment": None, "call_id": exc.call_id,
                              "error": f"judge failed: {exc.reason[:500]}",
                              "review_reasons": []}}
        # valid, but inconsistent with its inputs after every re-ask: a person decides
        judgment, call_id = exc.unchecked.as_judgment(), exc.call_id
        inconsistent = [f"the judgment is inconsistent with its inputs: "
                        f"{exc.reason.rpartition('error, ')[2][:300]}"]
    else:
        inconsistent = []
    reasons = inconsistent + escalation_reasons(judgment, state["requirements"],
                                                state["product"], state.get("description"),
                                                settings.review_below, state["query"])
    return {"judge": {**record, "judgment": judgment, "call_id": call_id, "error": "",
                      "review_reasons": reasons}}
