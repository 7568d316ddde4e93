"""store/ids.py: a query's language is detected once."""

from __future__ import annotations

from raer.nodes.inputs import Pair
from raer.run.local import group_by_query


def test_language_is_detected_once_per_query(monkeypatch):
    seen = []
    monkeypatch.setattr("raer.store.ids.detect_language",
                        lambda text: seen.append(text) or "en")
    monkeypatch.setattr("raer.store.ids._DETECTED", {})
    pairs = [Pair(query="schwarze Jeans", product_id=f"p{i}", title="Jeans") for i in range(5)]
    assert len(group_by_query(pairs)) == 1 and seen == ["schwarze Jeans"]
