"""Model calls, tokens and estimated cost of a run, overall and by node, from llm_calls.

Only calls a run made count toward it: artefacts it reused from the cache cost nothing.
"""

from __future__ import annotations

from typing import Any

from raer.store import Store

_TOTALS = """count(*) as calls, coalesce(sum(input_tokens + output_tokens), 0) as tokens,
             coalesce(sum(cached_tokens), 0) as cached_tokens,
             coalesce(sum(cost_usd), 0) as cost_usd,
             coalesce(sum(cost_usd is null and error is null), 0) as unpriced_calls,
             coalesce(sum(error is not null), 0) as failed_calls,
             coalesce(sum(latency_ms), 0) / 1000.0 as model_seconds"""


def run_usage(store: Store, run_id: str) -> dict[str, Any]:
    row = store.rows(f"select {_TOTALS} from llm_calls where run_id = ?", [run_id])[0]
    row["cost_usd"] = round(row["cost_usd"], 6)
    row["model_seconds"] = round(row["model_seconds"], 1)
    return row


def usage_by_node(store: Store, run_id: str) -> list[dict[str, Any]]:
    rows = store.rows(f"select node, model, {_TOTALS} from llm_calls where run_id = ? "
                      "group by node, model order by min(id)", [run_id])
    for row in rows:
        row["cost_usd"] = round(row["cost_usd"], 6)
        row["model_seconds"] = round(row["model_seconds"], 1)
    return rows
