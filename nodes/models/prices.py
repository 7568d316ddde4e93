"""What a call costs: the price table (prices.toml, with its date and sources) and each
model's rule for the tokens an image bills.

Users override or extend the table with the run setting `prices` (a JSON object). A model
matches its longest table entry it starts with (dated and suffixed names: "gpt-4o-2024-08-06"
is "gpt-4o"). Unknown models cost None, which reports as "unknown", never as free, and
`--max-cost` refuses them (nodes/context.py): a limit it cannot count is no limit. Local
models are free.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

DEFAULT_IMAGE_TOKENS = 1100  # a model with no image rule: a deliberately high guess


@dataclass(frozen=True)
class Price:
    input: float
    output: float
    cached: float
    image: str = ""
    cache_min: int = 0
    """The shortest prompt prefix the provider caches, in tokens (0: it does not cache)."""
    context: int = 0
    """The model's context window, prompt and answer together, in tokens (0: unknown)."""


@cache
def _shipped() -> tuple[dict[str, Price], dict]:
    data = tomllib.loads(files("raer.nodes.models").joinpath("prices.toml").read_text())
    return {name: Price(**entry) for name, entry in data["models"].items()}, data["meta"]


def table_meta() -> dict:
    """The shipped table's date, sources and batch discount."""
    return dict(_shipped()[1])


@cache
def price_table(overrides: str = "") -> dict[str, Price]:
    table = dict(_shipped()[0])
    if overrides:
        for model, prices in json.loads(overrides).items():
            inp, out, *rest = prices
            known = table.get(model)
            table[model] = Price(float(inp), float(out), float(rest[0]) if rest else float(inp),
                                 known.image if known else "",
                                 known.cache_min if known else 0,
                                 known.context if known else 0)
    return table


def price_of(model: str, overrides: str = "") -> Price | None:
    table = price_table(overrides)
    if model in table:
        return table[model]
    matches = [name for name in table if model.startswith(name)]
    return table[max(matches, key=len)] if matches else None


def estimate_cost(model: str, input_tokens: int, output_tokens: int, cached_tokens: int,
                  overrides: str = "") -> float | None:
    price = price_of(model, overrides)
    if price is None:
        return None
    fresh = max(0, input_tokens - cached_tokens)
    return (fresh * price.input + cached_tokens * price.cached
            + output_tokens * price.output) / 1_000_000


def image_tokens(model: str, width: int, height: int, overrides: str = "") -> int:
    """The tokens one image of width x height pixels bills on `model`, by its provider's
    rule (prices.toml lists them); a model without a rule gets a high guess."""
    price = price_of(model, overrides)
    rule = price.image if price else ""
    kind, _, args = rule.partition(":")
    numbers = [float(a) for a in args.split(":") if a]
    if kind == "free":
        return 0
    if kind == "flat":
        return int(numbers[0])
    if kind == "tiles":
        base, tile = numbers
        scale = min(1.0, 2048 / max(width, height))
        w, h = width * scale, height * scale
        scale = min(1.0, 768 / min(w, h))
        w, h = w * scale, h * scale
        return int(base + tile * math.ceil(w / 512) * math.ceil(h / 512))
    if kind == "patches":
        patches = math.ceil(width / 32) * math.ceil(height / 32)
        if patches > 1536:  # scaled down to fit 1536 patches
            shrink = math.sqrt(1536 * 32 * 32 / (width * height))
            patches = math.ceil(width * shrink / 32) * math.ceil(height * shrink / 32)
            patches = min(patches, 1536)
        return math.ceil(patches * numbers[0])
    if kind == "pixels":
        scale = min(1.0, 1568 / max(width, height))
        return math.ceil(width * scale * height * scale / numbers[0])
    if kind == "gemini-tiles":
        if width <= 384 and height <= 384:
            return int(numbers[0])
        return int(numbers[0] * math.ceil(width / 768) * math.ceil(height / 768))
    return DEFAULT_IMAGE_TOKENS
