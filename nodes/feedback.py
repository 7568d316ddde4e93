"""Reviews teach the next run: people's resolved decisions on a query's pairs become examples
in that query's guidelines.

With `learn_from_reviews`, draft_guidelines appends the query's reviewed examples (from any
run in the store: the product, the person's label, their note) to the drafted guidelines.
The examples are versioned by their content hash, which extends the guidelines key, so the
next run re-judges only the pairs of queries whose examples changed — every other query's
judge input, and so its cached answer, stays the same. `raer ablate --vary feedback`
measures on held-out human labels whether the examples helped; nothing turns them on but
the setting.
"""

from __future__ import annotations

from typing import Any

from raer.nodes.common import key
from raer.store import Store

MAX_EXAMPLES = 8


def reviewed_examples(store: Store, query_id: str) -> list[dict[str, Any]]:
    """The query's resolved reviews, newest decision per product, at most MAX_EXAMPLES
    (the newest), in a stable order (by product id)."""
    rows = store.reviewed_examples_rows(query_id)
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        latest.setdefault(row["product_id"], row)
    newest = list(latest.values())[:MAX_EXAMPLES]
    return sorted(({k: r[k] for k in ("product_id", "title", "brand", "label", "note")}
                   for r in newest), key=lambda r: r["product_id"])


def examples_key(guidelines_key: str, examples: list[dict[str, Any]]) -> str:
    """The guidelines key extended by the examples' version (their content hash)."""
    return key(guidelines_key, "reviewed examples", examples)
