"""The Repeat: `raer experiment run` twice over an engine config that changed exits 1 and
names the regressed queries and the products that sank them; unchanged, it exits 0 with no
model call; `raer trend` shows the change. The judge is the fake model, labelling a product
highly relevant exactly when its title carries the word "match"."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from raer.cli import main
from tests.conftest import judgment

PRODUCTS = [  # title decides the label; description decides what a description ranker finds
    ("a1", "red shoe match", "plain"), ("a2", "red shoe lace", "red shoe red shoe"),
    ("b1", "blue hat match", "plain"),
    ("b2", "blue hat box <img src=x onerror=alert(1)>", "blue hat blue hat"),
    ("c1", "green bag match", "green bag"), ("c2", "green bag strap", "strap"),
]


@pytest.fixture
def experiment(tmp_path, standard_answers):
    def judge(messages):
        product = str(messages[-1].content).split("<product_data>")[-1]
        return judgment("highly relevant" if "match" in product else "irrelevant")

    standard_answers.respond("Judgment", judge)
    rows = [{"product_id": p, "title": t, "description": d} for p, t, d in PRODUCTS]
    (tmp_path / "catalogue.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "queries.txt").write_text("red shoe\nblue hat\ngreen bag\n")
    (tmp_path / "engines").mkdir()
    for name, fields in (("changing", "[title]"), ("steady", "[title]")):
        (tmp_path / "engines" / f"{name}.yaml").write_text(
            f"kind: bm25\nname: {name}\ncatalogue: ../catalogue.jsonl\nfields: {fields}\nk: 2\n")
    config = tmp_path / "nightly.yaml"
    config.write_text("""name: nightly
queries: queries.txt
engines: [engines/changing.yaml, engines/steady.yaml]
judge: {base_url: "http://fake.invalid/v1", model: gpt-4o-mini, vision_model: pillow}
measure: nDCG@2
k: [2]
summary: out/nightly.md
""")
    return tmp_path, config, standard_answers


def _run(config: Path, db: str):
    return CliRunner().invoke(main, ["experiment", "run", str(config), "--db", db, "--json"])


def test_two_nightly_runs_over_a_changed_config_exit_1_naming_the_queries(experiment):
    tmp_path, config, fake = experiment
    db = str(tmp_path / "nightly.db")
    first = _run(config, db)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["previous_run"] is None
    calls = len(fake.requests)

    same = _run(config, db)
    assert same.exit_code == 0, same.output
    report = json.loads(same.stdout)
    assert len(fake.requests) == calls and report["calls"] == 0  # every label reused
    assert report["regressions"] == [] and all(not e["queries"] for e in report["engines"])

    # the nightly change: the ranker now reads descriptions, where the wrong products win
    changed = tmp_path / "engines" / "changing.yaml"
    changed.write_text(changed.read_text().replace("fields: [title]", "fields: [description]"))
    worse = _run(config, db)
    assert worse.exit_code == 1, worse.output
    report = json.loads(worse.stdout)
    engines = {e["engine"]: e for e in report["engines"]}
    assert engines["changing"]["config_changed"] and not engines["steady"]["config_changed"]
    assert not engines["steady"]["regressed"] and engines["steady"]["queries"] == []
    fell = {q["query"]: q for q in engines["changing"]["queries"]}
    assert set(fell) == {"red shoe", "blue hat"}  # green bag still finds its match first
    assert fell["red shoe"]["before"] == 1.0 and fell["red shoe"]["now"] < 1.0
    assert [p["product_id"] for p in fell["red shoe"]["offending"]] == ["a2"]
    assert [p["product_id"] for p in fell["red shoe"]["left_top_k"]] == ["a1"]
    summary = (tmp_path / "out" / "nightly.md").read_text()
    assert "`red shoe`: 1.000 →" in summary and "a2 \"red shoe lace\"" in summary
    assert "left the top 2: a1 \"red shoe match\" (highly relevant, was rank 1)" in summary
    assert "config changed" in summary and "Exit 1: regression." in summary

    listed = CliRunner().invoke(main, ["experiment", "list", "--db", db, "--json"])
    assert [(r["name"], r["runs"], r["last_exit_code"]) for r in json.loads(listed.stdout)
            ] == [("nightly", 3, 1)]
    shown = CliRunner().invoke(main, ["experiment", "show", "nightly", "--db", db])
    assert shown.stdout == summary
    page = CliRunner().invoke(main, ["experiment", "report", "--db", db, "--out",
                                     str(tmp_path / "page")])
    assert page.exit_code == 0, page.output
    html = (tmp_path / "page" / "experiments.html").read_text()
    assert html.count("<tr>") == 4 and "<b>regressed</b>" in html and "<svg" in html
    assert "<code>red shoe</code> 1.000 →" in html and "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # seller text escaped
    trend = CliRunner().invoke(main, ["trend", "--db", db, "--engine", "changing",
                                      "--measure", "nDCG@2", "--json"])
    assert trend.exit_code == 1  # the last snapshot fell
    points = json.loads(trend.stdout)["series"]["changing"]
    assert len(points) == 3 and points[-1]["mean"] < points[0]["mean"]


def test_a_changed_judge_starts_over_instead_of_regressing(experiment):
    tmp_path, config, _ = experiment
    db = str(tmp_path / "nightly.db")
    assert _run(config, db).exit_code == 0
    config.write_text(config.read_text().replace("model: gpt-4o-mini", "model: gpt-4o"))
    again = _run(config, db)
    assert again.exit_code == 0, again.output
    report = json.loads(again.stdout)
    assert report["judge_changed"] and all(e["before"] is None for e in report["engines"])


@pytest.mark.parametrize("edit, message", [
    (("measure: nDCG@2", "measure: NDGC@2"), "measure: 'NDGC@2' is not a measure raer computes"),
    (("judge: {", "judge: {db_path: other.db, "),
     "judge: db_path: the store and the packshot folder"),
    (("judge: {", "judge: {temperature_typo: 1, "),
     "judge: unknown setting temperature_typo (known: "),
    (("engines/steady.yaml", "engines/missing.yaml"), "missing.yaml: cannot read"),
])
def test_bad_experiment_files_are_named_and_write_nothing(experiment, edit, message):
    tmp_path, config, _ = experiment
    config.write_text(config.read_text().replace(*edit))
    db = tmp_path / "nightly.db"
    result = _run(config, str(db))
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert not db.exists()


def test_a_persons_decision_is_not_asked_again_the_next_night(experiment):
    """Each night judges the same inputs again; their reviews were opened again, so people
    were asked the same question every night."""
    from raer.store import open_store
    from raer.store.reviews import decide

    tmp_path, config, fake = experiment
    fake.respond("Judgment", lambda m: judgment(
        "irrelevant" if "lace" in str(m[-1].content) else "highly relevant",
        confidence=0.3 if "lace" in str(m[-1].content) else 0.9))
    db = str(tmp_path / "nightly.db")
    first = json.loads(_run(config, db).stdout)
    store = open_store(db)
    [waiting] = [r for r in store.reviews(first["run_id"], "open")]
    decide(store, waiting["judgment_id"], "ana", "acceptable substitute", note="close enough")
    second = json.loads(_run(config, db).stdout)
    # both engines return "red shoe lace": one review, two pairs, settled together
    assert (first["reviews_open"], second["reviews_open"], second["reviews_carried"]) == (
        2, 0, 2)
    settled = store.reviews(second["run_id"], None)
    assert {(r["status"], r["human_label"]) for r in settled} == {
        ("resolved", "acceptable substitute")}
    notes = [d["note"] for r in settled for d in store.active_decisions(r["judgment_id"])]
    assert notes and all(n.startswith("carried from j-") for n in notes)


def test_a_nightly_run_on_peoples_labels_makes_no_model_call(experiment):
    """A team with a Quepid or SRW judgment list (imported as people's labels) runs the
    nightly comparison on it: no judge, the same regressions named."""
    tmp_path, config, fake = experiment
    db = str(tmp_path / "nightly.db")
    ratings = tmp_path / "ratings.csv"
    query_of = {"a": "red shoe", "b": "blue hat", "c": "green bag"}
    ratings.write_text("query,docid,rating\n" + "".join(
        f"{query_of[pid[0]]},{pid},{3 if 'match' in title else 0}\n"
        for pid, title, _ in PRODUCTS))
    imported = CliRunner().invoke(main, [
        "labels", "import", "quepid", str(ratings), "--db", db, "--source", "quepid",
        "--catalogue", str(tmp_path / "catalogue.jsonl")])
    assert imported.exit_code == 0, imported.output
    config.write_text(config.read_text().replace("judge: {", "labels: human:quepid\n"
                                                 "judge: {"))
    first = _run(config, db)
    assert first.exit_code == 0, first.output
    changed = tmp_path / "engines" / "changing.yaml"
    changed.write_text(changed.read_text().replace("fields: [title]", "fields: [description]"))
    worse = _run(config, db)
    assert worse.exit_code == 1, worse.output
    report = json.loads(worse.stdout)
    assert fake.requests == [] and report["calls"] == 0 and report["run_id"] == ""
    fell = {q["query"] for e in report["engines"] for q in e["queries"]}
    assert fell == {"red shoe", "blue hat"}
    assert "Graded by human:quepid" in (tmp_path / "out" / "nightly.md").read_text()


def test_an_experiment_judges_through_a_first_stage_beside_its_file(experiment, monkeypatch):
    """`judge: {first_stage: models/fs.json}` is read beside the experiment file (as its
    queries are), wherever the command runs; the pairs it labels cost no model call."""
    from tests.test_cascade import title_model

    tmp_path, config, fake = experiment
    (tmp_path / "models").mkdir()
    title_model(tmp_path / "models" / "fs.json", keep=0.9)
    config.write_text(config.read_text().replace(
        "vision_model: pillow}", "vision_model: pillow, first_stage: models/fs.json}"))
    monkeypatch.chdir(tmp_path / "engines")  # not the experiment's folder
    db = str(tmp_path / "nightly.db")
    result = _run(config, db)
    assert result.exit_code == 0, result.output
    # bm25 over titles returns products holding the whole query: the first stage keeps all
    from raer.store import open_store

    store = open_store(db)
    rows = store.rows("select model, call_id from judgments")
    assert rows and all(r["model"].startswith("first-stage:") and r["call_id"] is None
                        for r in rows)
    assert fake.calls() == []  # every pair kept: not even the requirements are asked
    # the run is named by the model's digest: another model file is another judge
    title_model(tmp_path / "models" / "fs.json", keep=0.95)
    again = _run(config, db)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["judge_changed"]
    config.write_text(config.read_text().replace(
        "first_stage: models/fs.json}", "first_stage_digest: abc}"))
    refused = _run(config, db)
    assert refused.exit_code == 2 and "unknown setting first_stage_digest" in refused.stderr
