"""The real embedded model (SmolLM2-135M via xllamacpp) on two demo pairs, no network.

Its labels are at chance level; this proves the offline path runs end to end through
ChatOpenAI with grammar-constrained JSON, real tokens and real latency — not quality.
"""

import json

import pytest

from raer.nodes.context import Context
from raer.nodes.inputs import read_pairs
from raer.run.local import judge_pairs
from tests.conftest import REPO

pytestmark = pytest.mark.offline_model


async def test_offline_model_judges_two_demo_pairs(tmp_path):
    demo = [p for p in read_pairs(REPO / "demo" / "pairs.jsonl")
            if p.query == "adidas sneaker"][:2]
    settings = Context(db_path=str(tmp_path / "offline.db"))
    rows = await judge_pairs(demo, settings)
    assert len(rows) == 2
    for row in rows:
        # done or escalated with a valid label, or failed with a recorded reason: never lost
        assert row["status"] in {"done", "escalated", "failed"}
        if row["status"] == "failed":
            assert row["error"]
        else:
            assert row["label"] in {"highly relevant", "acceptable substitute", "irrelevant",
                                    "cannot judge"}
            assert 0.0 <= row["confidence"] <= 1.0
    from raer.store import open_store

    store = open_store(settings.db_path)
    calls = store.rows("select node, model, input_tokens, output_tokens, raw_output "
                       "from llm_calls where model != 'pillow'")
    assert {c["model"] for c in calls} == {"SmolLM2-135M-Instruct-Q4_1"}
    assert all(c["input_tokens"] > 0 and c["output_tokens"] > 0 for c in calls)
    judged = [c for c in calls if c["node"] == "judge_pair"]
    assert judged and json.loads(judged[-1]["raw_output"], strict=False)  # real JSON came back
    # the packshot of the first product was analysed locally, not by a model
    assert store.rows("select count(*) as n from llm_calls where model = 'pillow'")[0]["n"] >= 1
