"""Ablation runs compared pair by pair, on the fake model."""

import json

import pytest
from click.testing import CliRunner

from raer.cli import main
from raer.evals.ablation import paired_comparison
from tests.conftest import judgment, write_jsonl
from tests.test_agreement import HR, IR, item


def test_paired_comparison_counts_discordant_pairs_and_tests_them():
    a = [item(i, HR if i < 6 else IR, {"A1": HR}, query=f"q{i}") for i in range(10)]
    b = [item(i, HR, {"A1": HR}, query=f"q{i}") for i in range(10)]
    result = paired_comparison(a, b, resamples=200)
    assert (result["agreement_a"], result["agreement_b"]) == (0.6, 1.0)
    assert (result["only_a_right"], result["only_b_right"]) == (0, 4)
    assert result["mcnemar_p"] == pytest.approx(0.125)  # exact: 2 * 0.5**4
    assert result["difference"] == pytest.approx(0.4)
    assert result["difference_ci"][0] > 0


def test_ablate_guidelines_runs_both_variants_and_compares(standard_answers, tmp_path):
    standard_answers.respond("Judgment", lambda messages: judgment(
        label=HR if "all musts met" in messages[-1].content else IR))
    rows = [{"query": "black jeans", "language": "en", "product_id": f"p{i}",
             "title": f"Jeans {i}", "label": HR} for i in range(4)]
    pairs = write_jsonl(tmp_path / "pairs.jsonl", rows)
    db = str(tmp_path / "a.db")
    runner = CliRunner()
    runner.invoke(main, ["labels", "import", "table", str(pairs), "--db", db,
                         "--source", "people"])
    result = runner.invoke(main, ["ablate", str(pairs), "--db", db, "--vary", "guidelines",
                                  "--source", "people", "--resamples", "50", "--json",
                                  "--base-url", "http://fake.invalid/v1", "--model", "gpt-4o"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["a"]["name"] == "query-specific guidelines"
    assert (summary["agreement_a"], summary["agreement_b"]) == (1.0, 0.0)
    assert summary["only_a_right"] == 4 and summary["a"]["run_id"] != summary["b"]["run_id"]
    # generic guidelines need no guideline call: one call for the specific variant only
    assert len(standard_answers.calls("Guidelines")) == 1
