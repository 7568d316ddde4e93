"""Estimated cost of a call from a price table (USD per million tokens).

Defaults are list prices for common hosted models; users override or extend them with the
run setting `prices` (a JSON object). Unknown models cost None, which reports as "unknown",
never as free; local models are free.
"""

from __future__ import annotations

import json
from functools import cache

# model: (input, output, cached input) in USD per 1M tokens
DEFAULT_PRICES: dict[str, tuple[float, float, float]] = {
    "gpt-4o": (2.50, 10.00, 1.25),
    "gpt-4o-mini": (0.15, 0.60, 0.075),
    "gpt-4.1": (2.00, 8.00, 0.50),
    "gpt-4.1-mini": (0.40, 1.60, 0.10),
    "gpt-4.1-nano": (0.10, 0.40, 0.025),
    "gpt-4-turbo": (10.00, 30.00, 10.00),
    "gpt-3.5-turbo": (0.50, 1.50, 0.50),
    "SmolLM2-135M-Instruct-Q4_1": (0.0, 0.0, 0.0),
    "pillow": (0.0, 0.0, 0.0),
}


@cache
def price_table(overrides: str = "") -> dict[str, tuple[float, float, float]]:
    table = dict(DEFAULT_PRICES)
    if overrides:
        for model, prices in json.loads(overrides).items():
            inp, out, *rest = prices
            table[model] = (float(inp), float(out), float(rest[0]) if rest else float(inp))
    return table


def estimate_cost(model: str, input_tokens: int, output_tokens: int, cached_tokens: int,
                  overrides: str = "") -> float | None:
    prices = price_table(overrides).get(model)
    if prices is None:
        return None
    inp, out, cached = prices
    fresh = max(0, input_tokens - cached_tokens)
    return (fresh * inp + cached_tokens * cached + output_tokens * out) / 1_000_000
