"""The cascade's first stage (nodes/models/first_stage.py, evals/cascade.py, `raer cascade`, `raer
judge --first-stage`): fitted on ESCI-US dev only, measured on test beside the lexical
baseline, and applied by the run plan so a kept pair costs no model call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from raer.cli import main
from raer.nodes.context import Context, SettingsError
from raer.nodes.inputs import Pair
from raer.nodes.models.first_stage import FEATURES, FORMAT
from raer.run import judge_pairs
from raer.store import open_store
from tests.fake_openai import FakeOpenAI

ESCI = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "esci-us" / "pairs.jsonl"


def esci_sample(path: Path, dev_queries: int = 24, test_queries: int = 10) -> dict[str, int]:
    """The first queries of each split of the real ESCI-US file (read in place, a subset
    written to a temporary file for speed); returns pairs per split."""
    kept: dict[str, list[str]] = {"dev": [], "test": []}
    limit = {"dev": dev_queries, "test": test_queries}
    counts = {"dev": 0, "test": 0}
    with ESCI.open(encoding="utf-8") as src, path.open("w", encoding="utf-8") as out:
        for line in src:
            row = json.loads(line)
            split, qid = row["split"], row["esci_query_id"]
            if qid not in kept[split]:
                if len(kept[split]) >= limit[split]:
                    continue
                kept[split].append(qid)
            out.write(line)
            counts[split] += 1
    return counts


@pytest.fixture(scope="module")
def esci_store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("esci")
    counts = esci_sample(folder / "sample.jsonl")
    db = folder / "esci.db"
    result = CliRunner().invoke(main, ["labels", "import", "esci-sample",
                                       str(folder / "sample.jsonl"), "--db", str(db),
                                       "--source", "esci-us"])
    assert result.exit_code == 0, result.output
    return folder, db, counts


def test_fitted_on_dev_only_and_reported_on_test_against_the_lexical_baseline(esci_store):
    folder, db, counts = esci_store
    model_path = folder / "fs.json"
    fitted = CliRunner().invoke(main, [
        "cascade", "fit", "--db", str(db), "--source", "esci-us", "--fit-split", "dev",
        "--target-agreement", "0.7", "-o", str(model_path), "--run-split", "test", "--json"])
    assert fitted.exit_code == 0, fitted.output
    result = json.loads(fitted.output)
    on = result["fitted_on"]
    # the split is kept: every pair fitted on is a dev pair, and no test pair is
    assert on["split"] == "dev" and on["pairs"] == counts["dev"]
    assert on["out_of_fold"]["folds"] == 5 and 0 <= result["keep_at_or_above"] <= 1
    model = json.loads(model_path.read_text())
    assert model["format"] == FORMAT and model["features"] == list(FEATURES)

    reported = CliRunner().invoke(main, ["cascade", "report", str(model_path), "--db", str(db),
                                         "--source", "esci-us", "--split", "test", "--json"])
    assert reported.exit_code == 0, reported.output
    report = json.loads(reported.output)
    first, lexical = report["stages"]
    assert first["first_stage"].startswith("classifier") and lexical["first_stage"] == (
        "lexical baseline")
    for row in (first, lexical):
        assert row["pairs"] == counts["test"]
        assert 0 <= row["onward_share"] <= 1
        assert row["kept"] == round((1 - row["onward_share"]) * row["pairs"])
    print(f"test: first stage keeps {first['kept']} at {first['kept_agreement']}, "
          f"lexical {lexical['kept']} at {lexical['kept_agreement']}")
    # the run of its test labels reads like any judge's
    store = open_store(db)
    run = result["runs"]["test"]
    assert len(store.run_judgments(run)) == counts["test"]
    # reporting on the split it was fitted on is refused
    same = CliRunner().invoke(main, ["cascade", "report", str(model_path), "--db", str(db),
                                     "--source", "esci-us", "--split", "dev"])
    assert same.exit_code == 2 and "fitted on split 'dev'" in same.output


def test_the_cascade_with_an_llm_run_takes_the_llm_label_for_pairs_sent_onward(esci_store):
    """The report's cascade row: the first stage's label where it keeps a pair, the LLM
    run's elsewhere (the lexical baseline's test run stands in for the LLM here)."""
    folder, db, counts = esci_store
    runner = CliRunner()
    llm = json.loads(runner.invoke(main, ["baseline", "lexical", "--db", str(db), "--source",
                                          "esci-us", "--fit-split", "dev", "--split", "test"]
                                   ).output)["run_id"]
    model_path = folder / "fs-share.json"
    fitted = runner.invoke(main, ["cascade", "fit", "--db", str(db), "--source", "esci-us",
                                  "--max-onward-share", "0.5", "-o", str(model_path)])
    assert fitted.exit_code == 0, fitted.output
    result = runner.invoke(main, ["cascade", "report", str(model_path), "--db", str(db),
                                  "--source", "esci-us", "--llm-run", llm, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    cascade = report["cascade"]
    assert cascade["pairs"] == counts["test"] and cascade["pairs_without_llm_label"] == 0
    # worked out again here: kept → the first stage's label, onward → the "LLM"'s
    from raer.evals.baselines import labelled_pairs
    from raer.nodes.models.first_stage import load_first_stage

    store = open_store(db)
    model = load_first_stage(str(model_path))
    pairs = labelled_pairs(store, "esci-us", "test")
    predictions = model.predict([(p["query"], p) for p in pairs])
    llm_labels = {(r["query_id"], r["product_id"]): r["label"]
                  for r in store.run_judgments(llm).values()}
    combined = [label if c >= model.keep_at_or_above else
                llm_labels[(p["query_id"], p["product_id"])]
                for p, (label, c) in zip(pairs, predictions, strict=True)]
    agreement = sum(c == p["majority"] for c, p in zip(combined, pairs, strict=True)) / len(pairs)
    assert cascade["agreement"] == round(agreement, 4)
    kept = sum(c >= model.keep_at_or_above for _, c in predictions)
    assert cascade["llm_calls_saved_share"] == round(kept / len(pairs), 4)
    assert cascade["to_people_share"] == 0  # a baseline run escalates nothing


def title_model(path: Path, keep: float = 0.9) -> Path:
    """A first stage whose only weight is query-token overlap with the title: all of the
    query in the title → highly relevant (p ≈ 0.99), none → irrelevant (p ≈ 0.99), half →
    a toss-up (p ≈ 1/3, sent onward)."""
    width = len(FEATURES)
    coef = [[0.0] * width for _ in range(3)]
    coef[1][0], coef[2][0] = 10.0, -10.0
    path.write_text(json.dumps({
        "format": FORMAT, "features": list(FEATURES),
        "labels": ["acceptable substitute", "highly relevant", "irrelevant"],
        "coef": coef, "intercept": [0.0, -5.0, 5.0], "mean": [0.0] * width,
        "scale": [1.0] * width, "keep_at_or_above": keep, "fitted_on": {"split": "dev"}}))
    return path


def cascade_pairs() -> list[Pair]:
    titles = ["black jeans slim", "black jeans", "garden hose", "soap dish", "black hat"]
    return [Pair(query="black jeans", language="en", product_id=f"p{i}", title=t, rank=i)
            for i, t in enumerate(titles, 1)]


@pytest.fixture
def fake():
    server = FakeOpenAI()
    yield server
    server.close()


def settings_for(server: FakeOpenAI, tmp_path: Path, **extra) -> Context:
    return Context(db_path=str(tmp_path / "c.db"), base_url=server.base_url,
                   model="gpt-4o-mini", vision_model="pillow", max_retries=0, **extra)


async def test_pairs_the_first_stage_keeps_cost_no_model_call(fake, tmp_path):
    model = title_model(tmp_path / "fs.json")
    settings = settings_for(fake, tmp_path, first_stage=str(model))
    rows = await judge_pairs(cascade_pairs(), settings)
    by_product = {r["product_id"]: r for r in rows}
    # p1, p2: the whole query in the title; p3, p4: none of it; p5: half (sent onward)
    for pid, label in {"p1": "highly relevant", "p2": "highly relevant",
                       "p3": "irrelevant", "p4": "irrelevant"}.items():
        assert by_product[pid]["label"] == label
        assert by_product[pid]["model"].startswith("first-stage:")
        assert by_product[pid]["call_id"] is None
    assert by_product["p5"]["model"] == "gpt-4o-mini" and by_product["p5"]["status"] == "done"
    store = open_store(tmp_path / "c.db")
    judge_calls = store.rows("select count(*) as n from llm_calls where node = 'judge_pair'")
    assert judge_calls[0]["n"] == 1  # only p5 reached the judge
    before = len(fake.requests)
    again = await judge_pairs(cascade_pairs(), settings)  # a rerun: nothing to do
    assert len(fake.requests) == before and [r["label"] for r in again] == [
        r["label"] for r in rows]
    # the model is part of the run: without it (or with another) it is another run
    assert settings.run_id != settings_for(fake, tmp_path).run_id
    other = title_model(tmp_path / "other.json", keep=0.95)
    assert settings_for(fake, tmp_path, first_stage=str(other)).run_id != settings.run_id
    # `raer show` says who labelled a kept pair, and why
    shown = CliRunner().invoke(main, ["show", "--db", str(tmp_path / "c.db"), "--query",
                                      "black jeans", "--product", "p1"])
    assert shown.exit_code == 0, shown.output
    assert "labelled by first-stage:" in shown.output and ">= 0.900" in shown.output
    # the stored run's settings (retry-failed) keep the digest and need no model file
    from raer.nodes.settings import for_stored_run

    stored = for_stored_run(store.run_row(settings.run_id), settings.run_id)
    assert stored.first_stage == "" and stored.first_stage_digest == (
        settings.first_stage_digest)


async def test_a_first_stage_that_keeps_everything_writes_a_run_with_no_call(fake, tmp_path):
    model = title_model(tmp_path / "fs.json", keep=0.3)
    rows = await judge_pairs(cascade_pairs(), settings_for(fake, tmp_path,
                                                           first_stage=str(model)))
    assert {r["status"] for r in rows} == {"done"} and not fake.requests


def test_the_dry_run_and_the_cli_count_the_kept_pairs(fake, tmp_path):
    model = title_model(tmp_path / "fs.json")
    pairs_file = tmp_path / "pairs.jsonl"
    pairs_file.write_text("".join(json.dumps(p.model_dump(exclude_defaults=True)) + "\n"
                                  for p in cascade_pairs()))
    base = ["judge", str(pairs_file), "--db", str(tmp_path / "c.db"), "--base-url",
            fake.base_url, "--model", "gpt-4o-mini", "--vision-model", "pillow",
            "--first-stage", str(model), "--json"]
    dry = CliRunner().invoke(main, [*base, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    estimate = json.loads(dry.output)
    assert estimate["first_stage_kept"] == 4 and estimate["pairs_to_judge"] == 1
    assert not fake.requests and not (tmp_path / "c.db").exists()
    run = CliRunner().invoke(main, [*base, "--max-retries", "0"])
    assert run.exit_code == 0, run.output
    summary = json.loads(run.output[run.output.index("{"):])
    assert summary["first_stage_kept"] == 4 and summary["statuses"]["done"] == 5


def test_a_bad_model_file_is_refused_by_name(tmp_path):
    bad = tmp_path / "fs.json"
    bad.write_text(json.dumps({"format": FORMAT, "features": ["old"]}))
    with pytest.raises(SettingsError, match="fs.json: features"):
        Context(db_path=str(tmp_path / "x.db"), first_stage=str(bad))
    bad.write_text("{not json")
    with pytest.raises(SettingsError, match="fs.json: not JSON"):
        Context(db_path=str(tmp_path / "x.db"), first_stage=str(bad))
    with pytest.raises(SettingsError, match="missing.json: cannot read"):
        Context(db_path=str(tmp_path / "x.db"), first_stage=str(tmp_path / "missing.json"))
    bad.write_text(json.dumps({**json.loads(title_model(tmp_path / "ok.json").read_text()),
                               "coef": [[1.0]]}))
    with pytest.raises(SettingsError, match="weights do not match"):
        Context(db_path=str(tmp_path / "x.db"), first_stage=str(bad))
