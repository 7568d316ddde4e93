"""Model calls, tokens and estimated cost of a run, overall and by node, from llm_calls.

Only calls a run made count toward it: artefacts it reused from the cache cost nothing.
"""

from __future__ import annotations

from typing import Any

from raer.nodes.models.prices import estimate_cost
from raer.store import Store


def run_usage(store: Store, run_id: str) -> dict[str, Any]:
    row = store.call_totals(run_id)
    row["cost_usd"] = round(row["cost_usd"], 6)
    row["model_seconds"] = round(row["model_seconds"], 1)
    return row


def usage_by_node(store: Store, run_id: str) -> list[dict[str, Any]]:
    rows = store.call_totals_by_node(run_id)
    for row in rows:
        row["cost_usd"] = round(row["cost_usd"], 6)
        row["model_seconds"] = round(row["model_seconds"], 1)
    return rows


def cost_report(store: Store, run_id: str, human_price_per_label: float = 0.10,
                annotators_per_pair: int = 2, prices: str = "") -> dict[str, Any]:
    """Calls, tokens, cache reuse, cost and speed of a run, against labelling by people.

    Cache hits count the judgments that used a requirements / guidelines / description
    artefact this run did not have to make; provider prompt-cache tokens come from
    llm_calls. The human comparison prices `annotators_per_pair` labels per pair. `prices`
    (JSON, as the run setting) re-prices the recorded tokens instead of the stored estimate.
    """
    totals = run_usage(store, run_id)
    if prices:
        totals["cost_usd"] = round(sum(
            estimate_cost(c["model"], c["input_tokens"] or 0, c["output_tokens"] or 0,
                          c["cached_tokens"] or 0, prices) or 0.0
            for c in store.call_tokens(run_id)), 6)
    saving = cache_saving(store, run_id, prices)
    pairs = store.judgment_span(run_id)
    made = store.answers_made_by_node(run_id)
    minutes = _minutes(pairs["first"], pairs["last"])
    human_cost = pairs["n"] * annotators_per_pair * human_price_per_label
    return {
        **totals, "pairs": pairs["n"], "by_node": usage_by_node(store, run_id),
        "cache_saving_usd": saving,
        "cache_hits": {
            "requirements": max(0, pairs["requirements"] - made.get("extract_requirements", 0)),
            "guidelines": max(0, pairs["guidelines"] - made.get("draft_guidelines", 0)),
            "descriptions_reused": max(0, (pairs["described"] or 0)
                                       - made.get("describe_product", 0)),
            "provider_cached_tokens": totals["cached_tokens"]},
        "pairs_per_minute": round(pairs["n"] / minutes, 1) if minutes else None,
        "human": {"price_per_label": human_price_per_label,
                  "annotators_per_pair": annotators_per_pair, "cost_usd": round(human_cost, 2),
                  "times_cheaper": (round(human_cost / totals["cost_usd"])
                                    if totals["cost_usd"] else None)},
    }


def cache_saving(store: Store, run_id: str, prices: str = "") -> float:
    """What the provider's prompt cache saved, as billed: the tokens the provider's usage
    reported cached (`cached_tokens`), at the input price less the cached price. A run
    whose prefix is below the provider's caching minimum reports none, because none was
    billed at the cached rate."""
    from raer.nodes.models.prices import price_of

    total = 0.0
    for call in store.call_tokens(run_id):
        price = price_of(call["model"], prices)
        if price is not None and call["cached_tokens"]:
            total += call["cached_tokens"] * (price.input - price.cached) / 1_000_000
    return round(total, 6)


def _minutes(first: str | None, last: str | None) -> float:
    from datetime import datetime

    if not first or not last:
        return 0.0
    span = datetime.fromisoformat(last) - datetime.fromisoformat(first)
    return span.total_seconds() / 60
