"""`raer curve` (evals/cost_curve.py) on the fake OpenAI server: each configuration in its
own store, calls counted, dollars re-priced from the usage the server returned (cached
tokens at the cached rate), agreement against the human labels, τ against pairwise."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from raer.cli import main
from raer.nodes.inputs import Pair
from raer.store import open_store
from tests.fake_openai import FakeOpenAI
from tests.test_cascade import title_model

QUERIES = {"black jeans": ["black jeans slim", "black jeans", "blue jeans", "garden hose",
                           "black hat", "jeans"],
           "red dress": ["red dress", "red summer dress", "green dress", "soap",
                         "red shoes", "dress"]}


@pytest.fixture
def fake():
    server = FakeOpenAI()
    yield server
    server.close()


def write_inputs(tmp_path):
    """A pairs file and a store holding people's labels for it (imported as a user would)."""
    pairs = [Pair(query=q, language="en", product_id=f"{q[:3]}{i}", title=t, rank=i)
             for q, titles in QUERIES.items() for i, t in enumerate(titles, 1)]
    pairs_file = tmp_path / "pairs.jsonl"
    pairs_file.write_text("".join(json.dumps(p.model_dump(exclude_defaults=True)) + "\n"
                                  for p in pairs))
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps({
        "query": p.query, "language": "en", "product_id": p.product_id, "title": p.title,
        "person": "highly relevant" if p.title.startswith(p.query)
        else "irrelevant"}) + "\n" for p in pairs))
    db = tmp_path / "labels.db"
    result = CliRunner().invoke(main, ["labels", "import", "table", str(labels), "--db",
                                       str(db), "--source", "team", "--annotators", "person",
                                       "--mapping", "raer"])
    assert result.exit_code == 0, result.output
    return pairs_file, db


def test_the_curve_compares_pairwise_listwise_and_the_cascade(fake, tmp_path):
    pairs_file, db = write_inputs(tmp_path)
    result = CliRunner().invoke(main, [
        "curve", str(pairs_file), "--labels-db", str(db), "--source", "team", "--sizes", "3",
        "--first-stage", str(title_model(tmp_path / "fs.json")), "--price-as", "gpt-4o",
        "--work-dir", str(tmp_path / "curve"), "--base-url", fake.base_url, "--model",
        "gpt-4o-mini", "--vision-model", "pillow", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["configuration"]: r for r in json.loads(result.output[result.output.index("["):])}
    assert list(rows) == ["pairwise", "N=3", "cascade + pairwise"]
    pairwise, listwise, cascade = rows.values()
    assert pairwise["judge_calls"] == 12 and listwise["judge_calls"] == 2 * 2  # ceil(6/3)
    assert cascade["judge_calls"] < pairwise["judge_calls"]
    # every point paid for its own requirements and guidelines (a fresh store each)
    for row in rows.values():
        assert row["calls"] - row["judge_calls"] == 2 * 2  # requirements + guidelines
        assert row["statuses"]["done"] + row["statuses"]["escalated"] == 12
        # the fake bills 100 prompt tokens (64 cached) and 20 output tokens per call: at
        # gpt-4o's list price 36 × 2.50 + 64 × 1.25 + 20 × 10.00 = 370 USD per 1M calls
        assert row["usd_per_1000_pairs"] == pytest.approx(1000 * row["calls"] * 370e-6 / 12,
                                                         rel=1e-5)
        assert row["labelled"] == 12 and 0 <= row["agreement"] <= 1
    assert pairwise["tau_vs_pairwise"] == 1.0
    stores = sorted(p.name for p in (tmp_path / "curve").glob("*.db"))
    assert stores == ["curve-N3.db", "curve-cascade-pairwise.db", "curve-pairwise.db"]
    kept = open_store(tmp_path / "curve" / "curve-cascade-pairwise.db").rows(
        "select count(*) as n from judgments where model like 'first-stage:%'")[0]["n"]
    assert kept == 12 - cascade["judge_calls"]


def test_the_curve_refuses_a_model_without_a_price(tmp_path):
    pairs_file, db = write_inputs(tmp_path)
    result = CliRunner().invoke(main, ["curve", str(pairs_file), "--labels-db", str(db),
                                       "--source", "team", "--price-as", "no-such-model"])
    assert result.exit_code == 2 and "not in the price table" in result.output
