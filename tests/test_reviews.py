"""People in the loop: interactive reviews never lose a label, the effective label, the
review page's store side, calibration and review samples."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from raer.cli import main
from raer.evals.calibration import Scored, choose_threshold, reliability, risk_coverage
from raer.evals.engines import evaluate_engines
from raer.evals.labels import HumanLabel, store_labels
from raer.evals.sampling import inclusion_probabilities, sample_for_people, systematic
from raer.graph.build import build_graph
from raer.nodes.context import Context
from raer.nodes.inputs import Pair
from raer.run.local import judge_pairs
from raer.store import open_store
from raer.store.reviews import (
    SKIP,
    ReviewError,
    decide,
    inter_reviewer_agreement,
    queue,
    undo_last,
)
from raer.store.scale import LABELS
from tests.conftest import guidelines, judgment, product, requirements, write_jsonl
from tests.review_data import judge_review_pairs, review_pairs


async def _paused(settings, standard_answers):
    standard_answers.respond("Judgment", lambda m: judgment(label="irrelevant", confidence=0.1))
    interactive = replace(settings, **{"review_mode": "interactive"})
    graph = build_graph().compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t-resume"}}
    await graph.ainvoke({"query": "black jeans", "language": "en",
                         "products": [product("p1")]}, config=config, context=interactive)
    [paused] = (await graph.aget_state(config)).interrupts
    return graph, config, interactive, paused


@pytest.mark.parametrize("resend", [True, False], ids=["with-settings", "without-settings"])
async def test_a_resumed_review_lands_once_whether_or_not_settings_are_resent(
        standard_answers, settings, store, tmp_path, monkeypatch, resend):
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # a default-settings resume would write ./raer.db here
    graph, config, interactive, paused = await _paused(settings, standard_answers)
    extra = {"context": interactive} if resend else {}
    out = await graph.ainvoke(Command(resume={paused.id: "acceptable substitute"}),
                              config=config, **extra)
    assert out["judgments"][0]["human_label"] == "acceptable substitute"
    # twice: the thread is finished, nothing is written again
    await graph.ainvoke(Command(resume={paused.id: "irrelevant"}), config=config, **extra)
    assert store.rows("select status, human_label, reviewer from reviews") == [
        {"status": "resolved", "human_label": "acceptable substitute",
         "reviewer": "interactive"}]
    assert store.rows("select status from judgments") == [{"status": "escalated"}]
    assert not (elsewhere / "raer.db").exists()


# ------------------------------------------------------------------ decisions and labels

@pytest.fixture
async def escalated(fake_model, settings):
    """Five pairs judged "irrelevant" with set confidences: four go to people."""
    await judge_review_pairs(settings, fake_model)
    store = open_store(settings.db_path)
    ids = {r["product_id"]: r["id"] for r in store.rows("select id, product_id from judgments")}
    return store, settings.run_id, ids


async def test_reviewers_agree_disagree_are_adjudicated_and_undo(escalated):
    store, run_id, ids = escalated
    order = [r["judgment_id"] for r in queue(store, run_id, "ana")]
    # lowest confidence first (all four share the reason "low confidence")
    assert order == [ids["p5"], ids["p1"], ids["p4"], ids["p2"]]
    decide(store, ids["p5"], "ana", "highly relevant")
    decide(store, ids["p5"], "bo", "highly relevant")
    decide(store, ids["p1"], "ana", "irrelevant")
    decide(store, ids["p1"], "bo", "acceptable substitute", note="dark grey, close enough")
    decide(store, ids["p4"], "ana", SKIP)
    status = {r["judgment_id"]: (r["status"], r["human_label"])
              for r in store.reviews(run_id, None)}
    assert status[ids["p5"]] == ("resolved", "highly relevant")
    assert status[ids["p1"]] == ("disputed", None)
    assert status[ids["p4"]] == ("open", None)
    # ana's queue: the skipped pair last; the disputed pair waits for an adjudicator
    assert [r["judgment_id"] for r in queue(store, run_id, "ana")] == [ids["p2"], ids["p4"]]
    assert [r["judgment_id"] for r in queue(store, run_id, "cy", adjudicator=True)] == [
        ids["p1"]]
    agreement = inter_reviewer_agreement(store, run_id)
    assert agreement["pairs_with_2_or_more_reviewers"] == 2
    assert agreement["full_agreement"] == 0.5 and agreement["disputed"] == [ids["p1"]]
    decide(store, ids["p1"], "cy", "acceptable substitute", role="adjudicator")
    assert store.reviews(run_id, "resolved")[0]["human_label"] in LABELS
    # undo: bo's latest decision was on p1; after the undo ana alone decides p1 — but the
    # adjudicator's decision still settles it
    undone = undo_last(store, "bo", run_id)
    assert undone["undone"]["judgment_id"] == ids["p1"] and undone["status"] == "resolved"
    assert undo_last(store, "ana", run_id)["undone"]["label"] == SKIP
    assert store.db["review_decisions"].count == 6  # an undo deletes nothing
    with pytest.raises(ReviewError):
        decide(store, ids["p2"], "ana", "relevant-ish")
    with pytest.raises(ReviewError):
        decide(store, ids["p2"], " ", "irrelevant")


async def test_the_effective_label_is_used_by_evaluate_agree_exports_and_show(
        escalated, settings, tmp_path):
    store, run_id, ids = escalated
    store_labels(store, [HumanLabel(p, "people", "HR", "highly relevant")
                         for p in review_pairs()], "gold")
    runner = CliRunner()
    db = ["--db", settings.db_path]

    def agreement(labels: str) -> float:
        out = runner.invoke(main, ["agree", run_id, *db, "--json", "--labels", labels,
                                   "--resamples", "10"])
        assert out.exit_code == 0, out.output
        return json.loads(out.stdout)["results"][run_id]["overall"]["agreement"]

    assert agreement("judge") == agreement("effective") == 0.0
    store.resolve_review(ids["p5"], "highly relevant", "ana")
    assert agreement("judge") == 0.0 and agreement("effective") == 0.2
    coverage = evaluate_engines(store, run_id, ks=(3,))["A"].coverage
    assert coverage["reviewer"] == 1
    qrels = runner.invoke(main, ["export", "qrels", run_id, *db]).stdout
    assert "p5 2" in qrels and "p1 0" in qrels
    shown = runner.invoke(main, ["show", ids["p5"], *db], terminal_width=200).stdout
    assert "highly relevant (reviewer: ana) · the judge said irrelevant" in shown
    assert "reviewer ana: highly relevant" in shown
    trace = json.loads(runner.invoke(main, ["show", ids["p1"], *db, "--json"]).stdout)
    assert trace["effective"] == {"label": "irrelevant",
                                  "provenance": "judge (escalated, unreviewed): gpt-4o-mini"}


# ------------------------------------------------------------------ calibration

def synthetic(levels=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9), per_level=100):
    """Perfectly calibrated: at confidence c, exactly c of the pairs are right."""
    return [Scored(f"j{c}-{k}", f"q{k % 7}", c, k < round(c * per_level), False)
            for c in levels for k in range(per_level)]


def test_calibration_finds_the_known_threshold_on_synthetic_labels():
    items = synthetic()
    assert reliability(items)["ece"] == pytest.approx(0.0, abs=1e-9)
    curve = risk_coverage(items)
    # keep agreement ≥ 0.75: escalate below 0.6 (kept mean of 0.6…0.9 = 0.75), 5/9 to people
    chosen = choose_threshold(curve, target_agreement=0.75)
    assert chosen["met"] and chosen["review_below"] == pytest.approx(0.6)
    assert chosen["review_share"] == pytest.approx(5 / 9)
    # at most a third to people: escalate below 0.4; kept agreement = mean(0.4…0.9)
    chosen = choose_threshold(curve, max_review_share=0.34)
    assert chosen["review_below"] == pytest.approx(0.4)
    assert chosen["kept_agreement"] == pytest.approx(0.65)
    assert chosen["errors_caught"] == pytest.approx(240 / 450)  # errors of 0.1, 0.2, 0.3
    assert chosen["lift"] == pytest.approx(0.8 / 0.5)
    assert not choose_threshold(curve, target_agreement=0.99)["met"]
    # an overconfident judge: always 0.9 sure, right half the time
    overconfident = [Scored(f"j{k}", "q", 0.9, k % 2 == 0, False) for k in range(100)]
    assert reliability(overconfident)["ece"] == pytest.approx(0.4)


def test_calibrate_writes_a_policy_that_judge_uses(escalated, settings, tmp_path):
    store, run_id, ids = escalated
    gold = {"p1": "irrelevant", "p2": "highly relevant", "p3": "irrelevant",
            "p4": "highly relevant", "p5": "highly relevant"}
    store_labels(store, [HumanLabel(p, "people", "x", gold[p.product_id],
                                    split="dev" if p.query == "black jeans" else "test")
                         for p in review_pairs()], "gold")
    policy_file, plot = tmp_path / "policy.json", tmp_path / "calibration.svg"
    runner = CliRunner()
    out = runner.invoke(main, ["calibrate", run_id, "--db", settings.db_path, "--source", "gold",
                               "--split", "dev", "--test-split", "test",
                               "--target-agreement", "1.0", "--policy-out", str(policy_file),
                               "--plot", str(plot), "--json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    # dev: p1 0.2 right, p2 0.4 wrong, p3 0.9 right: escalate below 0.9 keeps only p3
    assert result["policy"]["review_below"] == pytest.approx(0.9)
    assert result["test"]["at_chosen"]["review_share"] == 1.0
    assert plot.read_text().startswith("<svg")
    pairs_file = write_jsonl(tmp_path / "pairs.jsonl", [
        {"query": p.query, "language": "en", "engine": "A", "rank": p.rank,
         "product_id": p.product_id, "title": p.title} for p in review_pairs()])
    judged = runner.invoke(main, ["judge", str(pairs_file), "--db", settings.db_path,
                                  "--base-url", "http://fake.invalid/v1", "--model",
                                  "gpt-4o-mini", "--review-policy", str(policy_file), "--json"])
    assert judged.exit_code == 0, judged.output
    new_run = json.loads(judged.stdout)["run_id"]
    assert json.loads(store.run_row(new_run)["settings"])["review_below"] == pytest.approx(0.9)
    assert store.pair_statuses(new_run) == {"escalated": 4, "done": 1}
    policy_file.write_text('{"review_below": 3}')
    bad = runner.invoke(main, ["judge", str(pairs_file), "--db", settings.db_path,
                               "--base-url", "http://fake.invalid/v1", "--model", "gpt-4o-mini",
                               "--review-policy", str(policy_file)])
    assert bad.exit_code == 2 and "review_below must be a number from 0 to 1" in bad.output


# ------------------------------------------------------------------ samples for people

def test_systematic_sampling_draws_with_the_stated_probabilities():
    sizes = np.array([0.1, 0.1, 0.5, 1.0, 1.1, 3.0, 0.2, 0.9])
    pi = inclusion_probabilities(sizes, 4)
    assert pi.sum() == pytest.approx(4) and pi.max() == 1.0  # 3.0 is taken for certain
    rng = np.random.default_rng(1)
    counts = np.zeros(len(sizes))
    for _ in range(20_000):
        drawn = systematic(pi, rng)
        assert len(drawn) == 4
        counts[drawn] += 1
    assert np.allclose(counts / 20_000, pi, atol=0.015)


async def test_review_sample_is_stratified_weighted_and_can_be_queued(fake_model, settings):
    fake_model.respond("Requirements", lambda m: requirements(("product type", "x", "must",
                                                                False)))
    fake_model.respond("Guidelines", lambda m: guidelines())
    fake_model.respond("Judgment", lambda m: judgment(
        confidence=0.9 if int(m[-1].content.split("title: Item ")[1].split()[0]) % 3 else 0.6))
    pairs = [Pair(query=q, language="en", engine=e, rank=r, product_id=f"{q[0]}{r}",
                  title=f"Item {r}") for q in ("jeans", "dress", "shirt") for e in ("A", "B")
             for r in range(1, 11)]
    await judge_pairs(pairs, settings)
    store = open_store(settings.db_path)
    drawn = sample_for_people(store, settings.run_id, budget=12, seed=3)
    assert len(drawn) == 12 and len({d.judgment_id for d in drawn}) == 12
    assert {(d.query_id, d.engine) for d in drawn}.__len__() == 6  # every query × engine
    confident = {r["id"] for r in store.rows("select id from judgments where confidence = 0.9")}
    assert all(d.weight > 2 for d in drawn)  # 12 of 60: π ≈ 0.2 on average
    share_uncertain = sum(d.judgment_id not in confident for d in drawn) / 12
    assert share_uncertain > 18 / 60  # uncertain pairs drawn more often than their share
    out = CliRunner().invoke(main, ["review", "sample", settings.run_id, "--db",
                                    settings.db_path, "--budget", "6", "--enqueue"])
    assert out.exit_code == 0, out.output
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(lines) == 6 and all(0 < line["inclusion"] <= 1 for line in lines)
    queued = queue(store, settings.run_id, "ana")
    # one review per distinct judge input: a drawn pair another engine shares is covered
    assert {j for r in queued for j in r["pair_ids"]} >= {line["judgment_id"] for line in lines}
    assert len(queued) <= len(lines)
    decide(store, lines[0]["judgment_id"], "ana", "irrelevant")
    copied = CliRunner().invoke(main, ["labels", "from-reviews", settings.run_id, "--db",
                                       settings.db_path, "--source", "reviewed"])
    assert json.loads(copied.stdout) == {"source": "reviewed", "labels": 1}
    assert store.human_label_rows("reviewed")[0]["annotator"] == "ana"


# ------------------------------------------------------------------ reviews teach the next run

@pytest.mark.parametrize("listens", [True, False], ids=["judge-uses-examples", "ignores-them"])
def test_reviewed_examples_rejudge_only_their_queries_and_are_measured(
        fake_model, settings, tmp_path, listens):
    fake_model.respond("Requirements", lambda m: requirements(("product type", "x", "must",
                                                                False)))
    fake_model.respond("Guidelines", lambda m: guidelines())

    def judge(messages):
        text = messages[-1].content
        brand = text.split("<product_data>")[1].split("brand: ")[1].split()[0]
        taught = f"[brand {brand}] → highly relevant" in text
        return judgment(label="highly relevant" if listens and taught else "irrelevant")

    fake_model.respond("Judgment", judge)
    rows = [{"query": f"query {q}", "language": "en", "engine": "A", "rank": r,
             "product_id": f"q{q}-p{r}", "title": f"Thing {r}", "brand": f"B{q}"}
            for q in range(1, 6) for r in range(1, 5)]
    pairs_file = write_jsonl(tmp_path / "pairs.jsonl", rows)
    store = open_store(settings.db_path)
    store_labels(store, [HumanLabel(Pair(**{k: v for k, v in r.items()}), "people", "HR",
                                    "highly relevant") for r in rows], "gold")
    model = ["--base-url", "http://fake.invalid/v1", "--model", "gpt-4o-mini"]
    runner = CliRunner()
    first = runner.invoke(main, ["judge", str(pairs_file), "--db", settings.db_path, "--json",
                                 *model])
    assert first.exit_code == 0, first.output
    run_a = json.loads(first.stdout)["run_id"]
    for q in range(1, 5):  # a person corrects one product of each of queries 1–4
        [jid] = [r["id"] for r in store.rows("select id from judgments where run_id = ? and "
                                              "product_id = ?", [run_a, f"q{q}-p1"])]
        store.resolve_review(jid, "highly relevant", "ana", note="the brand is what counts")
    out = runner.invoke(main, ["ablate", str(pairs_file), "--db", settings.db_path, "--vary",
                               "feedback", "--source", "gold", "--json", "--resamples", "200",
                               *model])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["pairs"] == 16  # the 4 reviewed pairs are held out
    run_b = result["b"]["run_id"]
    judged_again = {r["product_id"].split("-")[0] for r in store.rows(
        "select j.product_id from llm_calls c join judgments j on j.input_hash = c.cache_key "
        "where c.run_id = ? and c.node = 'judge_pair' and j.run_id = ?", [run_b, run_b])}
    assert judged_again == {"q1", "q2", "q3", "q4"}  # query 5 had no review: cache reused
    if listens:
        assert result["agreement_a"] == 0 and result["agreement_b"] == 12 / 16
        assert "Adopt them" in result["verdict"]
    else:
        assert result["agreement_b"] == result["agreement_a"] == 0
        assert "Not adopted" in result["verdict"]
    # the judge saw the examples, and `raer show` finds the guidelines it saw
    [jid] = [r["id"] for r in store.rows("select id from judgments where run_id = ? and "
                                          "product_id = 'q1-p2'", [run_b])]
    trace = json.loads(runner.invoke(main, ["show", jid, "--db", settings.db_path,
                                            "--json"]).stdout)
    examples = json.loads(trace["steps"][1]["artefact"]["examples"])
    assert examples == [{"product_id": "q1-p1", "title": "Thing 1", "brand": "B1",
                         "label": "highly relevant", "note": "the brand is what counts"}]


# ------------------------------------------------------------------ Label Studio round trip

LS_EXPORT = Path(__file__).parent / "fixtures" / "label_studio_export.json"


@pytest.fixture
async def ls_store(fake_model, tmp_path):
    """The store tests/label_studio_round_trip.py exported from (same run name, same ids)."""
    settings = Context(db_path=str(tmp_path / "raer.db"), run_name="ls-round-trip",
                       base_url="http://fake.invalid/v1", model="gpt-4o-mini",
                       vision_model="pillow")
    await judge_review_pairs(settings, fake_model)
    return open_store(settings.db_path)


def test_label_studio_export_and_the_real_export_imported_back(ls_store, tmp_path):
    store = ls_store
    runner = CliRunner()
    db = ["--db", store.path]
    out = runner.invoke(main, ["review", "export", "ls-round-trip", *db, "--format",
                               "label-studio", "--out", str(tmp_path / "ls")])
    assert json.loads(out.stdout)["tasks"] == 4
    tasks = json.loads((tmp_path / "ls" / "tasks.json").read_text())
    by_product = {t["data"]["product_id"]: t for t in tasks}
    [prediction] = by_product["p1"]["predictions"]
    assert prediction["model_version"] == "ls-round-trip" and prediction["score"] == 0.2
    assert prediction["result"][0]["value"] == {"choices": ["irrelevant"]}
    assert "low confidence 0.2 < 0.5" in by_product["p1"]["data"]["reasons"]
    assert '<Choice value="acceptable substitute" hotkey="2"/>' in (
        tmp_path / "ls" / "label_config.xml").read_text()
    # the export a real Label Studio made of these tasks, annotated through its API
    first = runner.invoke(main, ["review", "import", str(LS_EXPORT), *db])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["written"] == 3
    reviews = {r["product_id"]: (r["status"], r["human_label"])
               for r in store.reviews("ls-round-trip", None)}
    assert reviews == {"p5": ("resolved", "highly relevant"),
                       "p1": ("resolved", "acceptable substitute"),
                       "p4": ("resolved", "irrelevant"), "p2": ("open", None)}
    notes = [d["note"] for d in store.rows("select note from review_decisions")]
    assert "dark grey" in notes
    assert all(d["reviewer"].startswith("label-studio:") for d in store.rows(
        "select reviewer from review_decisions"))
    again = runner.invoke(main, ["review", "import", str(LS_EXPORT), *db])
    assert json.loads(again.stdout)["written"] == 0  # idempotent
    as_labels = runner.invoke(main, ["review", "import", str(LS_EXPORT), *db, "--as-labels",
                                     "ls"])
    assert json.loads(as_labels.stdout)["written"] == 3
    assert len(store.human_label_rows("ls")) == 3


def test_a_bad_label_studio_export_names_the_task_and_writes_nothing(ls_store, tmp_path):
    store = ls_store
    exported = json.loads(LS_EXPORT.read_text())
    annotated = [t for t in exported if any(not a.get("was_cancelled")
                                           for a in t["annotations"])]
    wrong_label = json.loads(json.dumps(exported))
    task = next(t for t in wrong_label if t["id"] == annotated[0]["id"])
    task["annotations"][0]["result"][0]["value"]["choices"] = ["kinda relevant"]
    wrong_id = json.loads(json.dumps(exported))
    next(t for t in wrong_id if t["id"] == annotated[1]["id"])["data"]["judgment_id"] = "j-nope"
    for bad, named in ((wrong_label, f"task {annotated[0]['id']}: label 'kinda relevant'"),
                       (wrong_id, f"task {annotated[1]['id']}: judgment j-nope")):
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(bad))
        out = CliRunner().invoke(main, ["review", "import", str(path), "--db", store.path])
        assert out.exit_code == 2 and named in out.output, out.output
    assert store.db["review_decisions"].count == 0


@pytest.mark.parametrize("content, named", [
    ("[" * 5000 + "]" * 5000, "nested too deeply"),
    (json.dumps([{"id": 1, "data": {"judgment_id": "j-1"}, "annotations": "nope"}]),
     "task 1: annotations must be a list"),
    (json.dumps([{"id": 2, "data": {"judgment_id": "j-1"}, "annotations": [
        {"result": [{"from_name": "relevance", "value": {"choices": 5}}]}]}]),
     "task 2: annotations[0].result[0].value.choices"),
    (json.dumps([{"id": 3, "data": {"judgment_id": "j-1"}, "annotations": [
        {"result": ["x"]}]}]), "task 3: annotations[0].result[0].value"),
    (json.dumps([{"id": 4, "data": {"judgment_id": "j-1"}, "annotations": [7]}]),
     "task 4: annotations[0]: must be an object"),
])
def test_mistyped_label_studio_exports_are_bad_input_named_by_field(tmp_path, content,
                                                                    named):
    """Issue 22: deeply nested or mistyped Label Studio JSON gave tracebacks, exit 1."""
    path = tmp_path / "export.json"
    path.write_text(content)
    db = tmp_path / "r.db"
    open_store(db)  # the store a review import reads (it must exist)
    out = CliRunner().invoke(main, ["review", "import", str(path), "--db", str(db)])
    assert out.exit_code == 2, out.output
    assert named in out.stderr
    assert open_store(db).db["review_decisions"].count == 0


def test_calibrate_prints_the_threshold_as_it_must_be_typed():
    """0.525 was printed as 0.53; typed back, 0.53 sent 31% of pairs to people, not 17%."""
    from raer.cli.calibrate import threshold_text

    assert [threshold_text(v) for v in (0.525, 0.5, 0.1234567)] == ["0.525", "0.5", "0.123457"]
