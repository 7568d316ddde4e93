"""The HTML report renders in headless Chromium and shows its charts and numbers."""

import os
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from raer.cli import main
from tests.conftest import write_jsonl

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def judged_store(standard_answers, tmp_path):
    """Four labelled pairs judged by the fake model: three agree with people, one doesn't."""
    from tests.conftest import judgment

    standard_answers.respond("Judgment", lambda m: judgment(
        label="irrelevant" if "Belt" in m[-1].content else "highly relevant"))
    rows = [{"query": q, "language": lang, "product_id": pid, "title": title, "label": label}
            for q, lang, pid, title, label in (
                ("black jeans", "en", "p1", "Black jeans", "highly relevant"),
                ("black jeans", "en", "p2", "Belt", "highly relevant"),
                ("schwarze Jeans", "de", "p3", "Schwarze Jeans", "highly relevant"),
                ("schwarze Jeans", "de", "p4", "Jeans grau", "acceptable substitute"))]
    pairs = write_jsonl(tmp_path / "pairs.jsonl", rows)
    db = str(tmp_path / "r.db")
    runner = CliRunner()
    runner.invoke(main, ["labels", "import", "table", str(pairs), "--db", db, "--source",
                         "people"])
    out = runner.invoke(main, ["judge", str(pairs), "--db", db, "--json", "--base-url",
                               "http://fake.invalid/v1", "--model", "gpt-4o-mini"])
    import json

    return db, json.loads(out.stdout)["run_id"]


def test_report_writes_markdown_and_self_contained_html(judged_store, tmp_path):
    db, run_id = judged_store
    result = CliRunner().invoke(main, ["report", run_id, "--db", db, "--source", "people",
                                       "--resamples", "50", "--out", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    markdown = (tmp_path / "rep" / "report.md").read_text()
    assert "| overall | 2 | 4 | 4 | 50.0" in markdown
    page = (tmp_path / "rep" / "report.html").read_text()
    assert page.count("<svg") == 4  # confusion, agreement by group, labels, cost by node
    # no external assets: nothing loaded by src / href / url(), no stylesheets or scripts
    for reference in ('src="http', "href=\"http", "url(http", "<link", "@import", "<script"):
        assert reference not in page


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                    reason="Debian's chromium is installed by .ci/run")
def test_report_renders_in_headless_chromium(judged_store, tmp_path):
    db, run_id = judged_store
    CliRunner().invoke(main, ["report", run_id, "--db", db, "--source", "people",
                              "--resamples", "50", "--out", str(tmp_path / "rep")])
    page = (tmp_path / "rep" / "report.html").as_uri()
    common = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*common, "--dump-dom", page], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert "Agreement with the human majority: <b>50.0%</b>" in dom
    assert dom.count("<svg") == 4 and "language: de" in dom and "cost and time by node" in dom
    shot = tmp_path / "report.png"
    subprocess.run([*common, "--window-size=1200,2000", f"--screenshot={shot}", page],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 50_000  # a page with charts, not a blank one


def test_cost_report_counts_calls_cache_reuse_and_prices_people(judged_store):
    db, run_id = judged_store
    import json

    data = json.loads(CliRunner().invoke(main, ["cost", run_id, "--db", db, "--json",
                                                "--human-price-per-label", "0.5"]).stdout)
    # 2 queries: 2 requirements + 2 guidelines + 4 judge calls (no images)
    assert data["calls"] == 8 and data["pairs"] == 4
    assert {r["node"] for r in data["by_node"]} == {"extract_requirements", "draft_guidelines",
                                                    "judge_pair"}
    assert data["human"]["cost_usd"] == 4 * 2 * 0.5
    assert data["cost_usd"] > 0 and data["human"]["times_cheaper"] > 1
    repriced = json.loads(CliRunner().invoke(main, [
        "cost", run_id, "--db", db, "--json", "--prices",
        '{"gpt-4o-mini": [0, 0, 0]}']).stdout)
    assert repriced["cost_usd"] == 0.0


def test_hard_disagreements_are_categorised_through_the_model_door_and_stored(
        judged_store, standard_answers):
    import json

    from raer.nodes.schemas import DisagreementCause
    from raer.store import open_store

    db, run_id = judged_store
    standard_answers.respond("DisagreementCause", lambda m: DisagreementCause(
        explanation="a belt is not jeans; people accepted it", category="product type"))
    result = CliRunner().invoke(main, ["agree", run_id, "--db", db, "--source", "people",
                                       "--resamples", "20", "--categorise", "--json",
                                       "--base-url", "http://fake.invalid/v1",
                                       "--model", "gpt-4o-mini"])
    assert result.exit_code == 0, result.output
    [hard] = json.loads(result.stdout)["hard_disagreements"][run_id]
    assert (hard["product_id"], hard["human"], hard["judge"], hard["category"]) == (
        "p2", "highly relevant", "irrelevant", "product type")
    [stored] = open_store(db).rows("select category, model, prompt_hash from disagreements")
    assert stored["category"] == "product type" and stored["model"] == "gpt-4o-mini"
    prompt = standard_answers.calls("DisagreementCause")[0][-1].content
    assert "Human label: highly relevant" in prompt and "Judge label: irrelevant" in prompt


def test_report_explains_its_statistics_and_flags_runs_on_different_pairs(judged_store,
                                                                           tmp_path):
    """Issue 24: the report explained none of its statistics and put runs scored on
    different pair sets side by side without saying so."""
    db, run_id = judged_store
    # a second run that judged only the English pairs
    english = write_jsonl(tmp_path / "en.jsonl", [
        {"query": "black jeans", "language": "en", "product_id": "p1", "title": "Black jeans"},
        {"query": "black jeans", "language": "en", "product_id": "p2", "title": "Belt"}])
    CliRunner().invoke(main, ["judge", str(english), "--db", db, "--run", "run-en",
                              "--base-url", "http://fake.invalid/v1", "--model", "gpt-4o-mini"])
    out = tmp_path / "two"
    result = CliRunner().invoke(main, ["report", run_id, "run-en", "--db", db, "--source",
                                       "people", "--resamples", "50", "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text()
    assert "scored on different pairs" in page and "--common" in page
    for phrase in ("agreement beyond chance", "Precision: of the pairs", "Rows: the people"):
        assert phrase in page, phrase
    assert "scored on different pairs" in (out / "report.md").read_text()
    same = CliRunner().invoke(main, ["report", run_id, "run-en", "--db", db, "--source",
                                     "people", "--resamples", "50", "--common", "--out",
                                     str(tmp_path / "common")])
    assert same.exit_code == 0, same.output
    assert "scored on different pairs" not in (tmp_path / "common" / "report.html").read_text()
