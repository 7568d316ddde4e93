"""Run-level counters read from the store (progress bars, summaries)."""

from __future__ import annotations

from typing import Any

from raer.store import Store


def run_stats(store: Store, run_id: str) -> dict[str, Any]:
    row = store.rows(
        """select count(*) as calls, coalesce(sum(input_tokens + output_tokens), 0) as tokens,
                  coalesce(sum(cost_usd), 0) as cost_usd,
                  sum(cost_usd is null and error is null) as unpriced_calls,
                  sum(error is not null) as failed_calls
           from llm_calls where run_id = ?""", [run_id])[0]
    row["cost_usd"] = round(row["cost_usd"], 6)
    row["unpriced_calls"] = row["unpriced_calls"] or 0
    row["failed_calls"] = row["failed_calls"] or 0
    return row
