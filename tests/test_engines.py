"""Evaluating engines with a run's labels: measures against trec_eval, gains and k, unjudged
and escalated pairs, label reuse across engines, compare, trend, TREC round trip (#9)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import pytrec_eval
from click.testing import CliRunner
from scipy import stats

from raer.cli import main
from raer.evals.engines import Gains, err_at, evaluate_engines
from raer.nodes.inputs import Pair, read_pairs
from raer.run.local import judge_pairs
from raer.store import Store, open_store
from tests.conftest import guidelines, judgment, requirements, write_jsonl

# the judge's label for each title (the fake model reads the product block)
LABEL_OF = {"HR": "highly relevant", "SUB": "acceptable substitute", "IRR": "irrelevant",
            "CJ": "cannot judge"}
RANKINGS = {  # query -> engine -> titles in rank order (title = label code + id)
    "black jeans": {"A": ["HR-1", "IRR-2", "SUB-3", "HR-4"], "B": ["SUB-3", "HR-1", "CJ-5"]},
    "red dress": {"A": ["IRR-6", "HR-7"], "B": ["HR-7", "HR-8", "IRR-6"]},
    "blue shirt": {"A": ["HR-9", "SUB-10"], "B": ["IRR-11", "HR-9"]},
}


def answers(fake):
    fake.respond("Requirements", lambda m: requirements(("product type", "x", "must", False)))
    fake.respond("Guidelines", lambda m: guidelines())

    def judge(messages):
        block = messages[-1].content.split("<product_data>")[1]
        code = block.split("title: ")[1].split("-")[0]
        return judgment(label=LABEL_OF[code], confidence=0.9 if code != "CJ" else 0.3)

    fake.respond("Judgment", judge)


def pairs(engines=("A", "B")) -> list[Pair]:
    return [Pair(query=q, language="en", engine=e, rank=r, product_id=t.split("-")[1],
                 title=t) for q, by in RANKINGS.items() for e in engines
            for r, t in enumerate(by[e], start=1)]


@pytest.fixture
async def judged(fake_model, settings):
    answers(fake_model)
    await judge_pairs(pairs(), settings)
    return open_store(settings.db_path), settings.run_id


def trec_eval(qrels, run, measure, **kwargs):
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {measure}, **kwargs)
    return {q: v[measure] for q, v in evaluator.evaluate(run).items()}


async def test_measures_match_trec_eval(judged):
    store, run_id = judged
    results = evaluate_engines(store, run_id, ks=(3, 5), unjudged="irrelevant")
    grade = {"HR": 2, "SUB": 1, "IRR": 0, "CJ": 0}
    qids = {r["text"]: r["id"] for r in store.rows("select id, text from queries")}
    qrels = {qids[q]: {t.split("-")[1]: grade[t.split("-")[0]] for e in by for t in by[e]
                       if not t.startswith("CJ")} for q, by in RANKINGS.items()}
    for engine, result in results.items():
        run = {qids[q]: {t.split("-")[1]: float(-i) for i, t in enumerate(by[engine])}
               for q, by in RANKINGS.items()}
        for ours, theirs, kwargs in (("nDCG@5", "ndcg_cut_5", {}), ("nDCG@3", "ndcg_cut_3", {}),
                                     ("P@3", "P_3", {"relevance_level": 2}),
                                     ("P+sub@5", "P_5", {"relevance_level": 1}),
                                     ("MRR", "recip_rank", {"relevance_level": 2})):
            expected = trec_eval(qrels, run, theirs, **kwargs)
            for q, value in expected.items():
                assert result.per_query[ours][q] == pytest.approx(value), (engine, ours, q)


def test_err_follows_its_definition():
    # grades 2, 0, 1 with max grade 2: stop probabilities 3/4, 0, 1/4
    assert err_at([2, 0, 1], 3, 2) == pytest.approx(0.75 + 0.25 * 1 * 0.25 / 3)
    assert err_at([2, 0, 1], 1, 2) == pytest.approx(0.75)


async def test_gains_k_unjudged_and_coverage(judged):
    store, run_id = judged
    excluded = evaluate_engines(store, run_id, ks=(2,), unjudged="exclude")["B"]
    kept = evaluate_engines(store, run_id, ks=(2,), unjudged="irrelevant")["B"]
    q = next(r["id"] for r in store.rows("select id from queries where text = 'black jeans'"))
    # "cannot judge" (CJ-5, escalated) is unjudged: excluded it leaves the list; kept it is
    # irrelevant at rank 3 (outside k=2 here, so the top-2 measures agree)
    assert excluded.per_query["nDCG@2"][q] == kept.per_query["nDCG@2"][q]
    assert excluded.coverage["unjudged: cannot judge"] == 1
    assert excluded.coverage["judge"] == 7
    steep = evaluate_engines(store, run_id, ks=(2,), gains=Gains.parse("3,1,0"))["B"]
    assert steep.per_query["nDCG@2"][q] != excluded.per_query["nDCG@2"][q]
    with pytest.raises(ValueError, match="HR >= SUB"):
        Gains.parse("1,2,0")


async def test_a_reviewed_label_wins_and_escalated_ones_count_apart(judged):
    store, run_id = judged
    before = evaluate_engines(store, run_id, ks=(3,))["A"]
    [row] = store.rows("select id from judgments where product_id = '2' and engine = 'A'")
    store.resolve_review(row["id"], "highly relevant", "ana")
    after = evaluate_engines(store, run_id, ks=(3,))["A"]
    assert after.coverage["reviewer"] == 1
    q = store.rows("select query_id from judgments where id = ?", [row["id"]])[0]["query_id"]
    assert after.per_query["nDCG@3"][q] > before.per_query["nDCG@3"][q]


async def test_labels_are_reused_across_engines(fake_model, settings):
    answers(fake_model)
    await judge_pairs(pairs(engines=("A",)), settings)
    judged_a = len(fake_model.calls("Judgment"))
    await judge_pairs(pairs(), settings)  # engine B overlaps A in 4 of its 8 products
    new = len(fake_model.calls("Judgment")) - judged_a
    products_a = {p.product_id for p in pairs(engines=("A",))}
    assert new == len({p.product_id for p in pairs(engines=("B",))} - products_a)


async def test_evaluate_compare_and_trend_from_the_cli(judged, settings):
    store, run_id = judged
    db = settings.db_path
    first = CliRunner().invoke(main, ["evaluate", run_id, "--db", db, "--k", "3,10",
                                      "--tag", "monday", "--json"])
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert set(report["engines"]) == {"A", "B"}
    assert report["engines"]["A"]["worst"][0]["offending"]
    assert CliRunner().invoke(main, ["trend", "--db", db, "--engine", "A"]).exit_code == 0
    compared = CliRunner().invoke(main, ["compare", run_id, "--db", db, "--baseline", "A",
                                         "--candidate", "B", "--k", "3,10", "--json"])
    out = json.loads(compared.stdout)["candidates"]["B"]["measures"]["nDCG@10"]
    a = evaluate_engines(store, run_id, ks=(10,))
    qs = sorted(a["A"].queries)
    va = np.array([a["A"].per_query["nDCG@10"][q] for q in qs])
    vb = np.array([a["B"].per_query["nDCG@10"][q] for q in qs])
    assert out["p_t"] == pytest.approx(stats.ttest_rel(vb, va).pvalue)
    assert out["wins"] + out["losses"] + out["ties"] == 3
    # tuesday: people overrule A's top results: the measure drops beyond its interval
    for r in store.rows("select id from judgments where engine = 'A' and rank = 1"):
        store.resolve_review(r["id"], "irrelevant", "ana")
    for r in store.rows("select id from judgments where engine = 'A' and rank = 2"):
        store.resolve_review(r["id"], "irrelevant", "ana")
    CliRunner().invoke(main, ["evaluate", run_id, "--db", db, "--k", "3,10", "--tag",
                              "tuesday"])
    flagged = CliRunner().invoke(main, ["trend", "--db", db, "--engine", "A", "--json"])
    assert flagged.exit_code == 1
    assert json.loads(flagged.stdout)["regressions"] == ["A"]


async def test_trec_round_trip_and_bad_trec_input(judged, settings, tmp_path):
    store, run_id = judged
    db = settings.db_path
    files = {kind: tmp_path / f"{kind}.txt" for kind in ("qrels", "run", "queries")}
    for kind, path in files.items():
        args = ["export", kind, run_id, "--db", db, "--out", str(path)]
        result = CliRunner().invoke(main, args + (["--engine", "B"] if kind == "run" else []))
        assert result.exit_code == 0, result.output
    assert "0 1 2\n" in files["qrels"].read_text()  # product 1 is highly relevant
    catalogue = write_jsonl(tmp_path / "catalogue.jsonl", [
        {"product_id": r["id"], "title": r["title"]}
        for r in store.rows("select id, title from products")])
    out = tmp_path / "pairs.jsonl"
    done = CliRunner().invoke(main, ["import-run", str(files["run"]), "--queries",
                                     str(files["queries"]), "--catalogue", str(catalogue),
                                     "--out", str(out)])
    assert done.exit_code == 0, done.output
    rebuilt = [json.loads(line) for line in out.read_text().splitlines()]
    expected = sorted((p.query, p.product_id, p.rank) for p in pairs(engines=("B",)))
    assert sorted((r["query"], r["product_id"], r["rank"]) for r in rebuilt) == expected
    assert {r["engine"] for r in rebuilt} == {"B"}
    for kind in ("quepid", "opensearch"):
        assert CliRunner().invoke(main, ["export", kind, run_id, "--db", db]).exit_code == 0
    # bad input: every problem named by file, line and field; nothing written
    bad = tmp_path / "bad.run"
    bad.write_text("q1 Q0 1 1 0.5 B\nq1 Q0 2 one 0.4 B\nq1 Q0 3 3\n")
    failed = CliRunner().invoke(main, ["import-run", str(bad), "--queries",
                                       str(files["queries"]), "--catalogue", str(catalogue),
                                       "--out", str(tmp_path / "never.jsonl")])
    assert failed.exit_code == 2
    assert f"{bad}:2: rank" in failed.stderr and f"{bad}:3: line" in failed.stderr
    assert not (tmp_path / "never.jsonl").exists()


async def test_outputs_never_overwrite_inputs_or_stores(judged, settings, tmp_path):
    """Issue 22: `export … --out store.db` replaced the store with qrels text (exit 0),
    `import-run --out` overwrote its own run file, `export … latest` wrote an empty file."""
    store, run_id = judged
    db = settings.db_path
    judgments = store.db["judgments"].count
    refused = CliRunner().invoke(main, ["export", "qrels", run_id, "--db", db, "--out", db])
    assert refused.exit_code == 2 and "input of this command" in refused.stderr
    other_store = tmp_path / "other.db"
    Store(str(other_store)).close()
    for target, said in ((other_store, "SQLite database"),
                         (tmp_path / "missing" / "q.txt", "does not exist")):
        out = CliRunner().invoke(main, ["export", "qrels", run_id, "--db", db,
                                        "--out", str(target), "--force"])
        assert out.exit_code == 2 and said in out.stderr, out.output
    assert Store(db).db["judgments"].count == judgments  # the store is whole
    qrels = tmp_path / "qrels.txt"
    assert CliRunner().invoke(main, ["export", "qrels", "latest", "--db", db, "--out",
                                     str(qrels)]).exit_code == 0
    assert qrels.read_text().strip()  # "latest" is the store's newest judging run
    again = CliRunner().invoke(main, ["export", "qrels", run_id, "--db", db, "--out",
                                      str(qrels)])
    assert again.exit_code == 2 and "--force" in again.stderr
    assert CliRunner().invoke(main, ["export", "qrels", run_id, "--db", db, "--out",
                                     str(qrels), "--force"]).exit_code == 0
    assert not list(tmp_path.glob(".qrels.txt.*"))  # the temporary file was renamed
    unknown = CliRunner().invoke(main, ["export", "qrels", "run-nope", "--db", db, "--out",
                                        str(tmp_path / "none.txt")])
    assert unknown.exit_code == 2 and not (tmp_path / "none.txt").exists()
    # import-run: never over one of its inputs; a docid ranked twice is named by line
    run_file = tmp_path / "engine.run"
    run_file.write_text("q1 Q0 1 1 0.5 B\nq1 Q0 1 2 0.4 B\n")
    queries = tmp_path / "queries.txt"
    queries.write_text("q1\tblack jeans\n")
    catalogue = write_jsonl(tmp_path / "cat.jsonl", [{"product_id": "1", "title": "Jeans",
                                                      "image": "img/1.png"}])
    base = ["import-run", str(run_file), "--queries", str(queries), "--catalogue",
            str(catalogue)]
    before = run_file.read_text()
    over = CliRunner().invoke(main, [*base, "--out", str(run_file), "--force"])
    assert over.exit_code == 2 and run_file.read_text() == before
    twice = CliRunner().invoke(main, [*base, "--out", str(tmp_path / "p.jsonl")])
    assert twice.exit_code == 2 and f"{run_file}:2: docid" in twice.stderr
    run_file.write_text("q1 Q0 1 1 0.5 B\n")
    (tmp_path / "sub").mkdir()
    made = tmp_path / "sub" / "p.jsonl"
    assert CliRunner().invoke(main, [*base, "--out", str(made)]).exit_code == 0
    # what import-run writes, raer judge reads: the image still names the catalogue's file
    [pair] = read_pairs(made)
    assert pair.image == str((tmp_path / "img" / "1.png").resolve())


def test_judge_says_how_many_labels_it_reused(fake_model, tmp_path):
    answers(fake_model)
    db = str(tmp_path / "r.db")
    model = ["--base-url", "http://fake.invalid/v1", "--model", "m", "--vision-model", "pillow"]
    a = write_jsonl(tmp_path / "a.jsonl", [p.model_dump() for p in pairs(engines=("A",))])
    both = write_jsonl(tmp_path / "ab.jsonl", [p.model_dump() for p in pairs()])
    first = json.loads(CliRunner().invoke(main, ["judge", str(a), "--db", db, "--json",
                                                 *model]).stdout)
    assert first["labels_reused"] == 0
    second = json.loads(CliRunner().invoke(main, ["judge", str(both), "--db", db, "--json",
                                                  *model]).stdout)
    shared = {p.product_id for p in pairs(engines=("B",))} & {
        p.product_id for p in pairs(engines=("A",))}
    assert second["labels_reused"] == len(shared)
    # "cannot judge" needs a person, and the judge's new products each cost one call
    assert second["model_calls_this_invocation"] == len(pairs(engines=("B",))) - len(shared)


def test_tau_ap_weighs_swaps_near_the_top_more():
    from raer.evals.meta_eval import tau_ap

    truth = [3.0, 2.0, 1.0]
    assert tau_ap(truth, [3.0, 1.0, 2.0]) == pytest.approx(0.5)  # swap at the bottom
    assert tau_ap(truth, [2.0, 3.0, 1.0]) == pytest.approx(0.0)  # swap at the top
    assert stats.kendalltau(truth, [3.0, 1.0, 2.0]).statistic == pytest.approx(1 / 3)
    assert tau_ap(truth, truth) == 1.0


def test_meta_evaluation_ranks_real_engines_on_people_labels(tmp_path, esci_us):
    """Five real rankers on a small slice of ESCI-US; people's labels agree with themselves
    perfectly, and a label source that calls everything relevant cannot order engines."""
    from raer.cli import main as cli
    from raer.evals.meta_eval import ENGINES, meta_evaluate
    from tests.conftest import lines_of

    rows = lines_of(esci_us)
    first = sorted({r["esci_query_id"] for r in rows if r["split"] == "test"})[:4]
    sample = write_jsonl(tmp_path / "esci.jsonl",
                         [r for r in rows if r["esci_query_id"] in first])
    db = str(tmp_path / "m.db")
    assert CliRunner().invoke(cli, ["labels", "import", "esci-sample", str(sample), "--db", db,
                                    "--source", "esci-us"]).exit_code == 0
    majority = json.loads(CliRunner().invoke(cli, [
        "baseline", "majority", "--db", db, "--source", "esci-us", "--fit-split", "test",
        "--split", "test"]).stdout)["run_id"]
    report = meta_evaluate(open_store(db), "esci-us", [majority], "test", k=10)
    people = report["label_sources"]["people"]
    assert people["queries"] == 4 and set(people["nDCG@10"]) == set(ENGINES)
    assert report["label_sources"][majority]["kendall_tau"] is None  # all one label
    assert people["nDCG@10"]["bm25"] > people["nDCG@10"]["bm25-reversed"]


def test_ppi_corrects_a_biased_judge_with_a_few_people_labels(tmp_path, esci_us):
    """The lexical baseline as the judge on 6 ESCI-US test queries: its nDCG is biased
    upwards; the PPI interval is no wider than the people-only one and both are reported
    with their coverage of the all-people value."""
    from raer.cli import main as cli
    from raer.evals.ppi import ppi_report
    from tests.conftest import lines_of

    rows = lines_of(esci_us)
    chosen = sorted({r["esci_query_id"] for r in rows if r["split"] == "test"})[:6]
    sample = write_jsonl(tmp_path / "esci.jsonl", [r for r in rows
                                                   if r["esci_query_id"] in chosen])
    db = str(tmp_path / "p.db")
    CliRunner().invoke(cli, ["labels", "import", "esci-sample", str(sample), "--db", db,
                             "--source", "esci-us"])
    lexical = json.loads(CliRunner().invoke(cli, [
        "baseline", "lexical", "--db", db, "--source", "esci-us", "--fit-split", "test",
        "--split", "test"]).stdout)["run_id"]
    report = ppi_report(open_store(db), "esci-us", lexical, [150], "test", repeats=30)
    bm25 = report["engines"]["bm25"]
    assert bm25["judge_all"] != bm25["people_all"]
    b = bm25["budgets"][150]
    assert b["ppi"]["mean_width"] <= b["people only"]["mean_width"] * 1.05
    assert 0 <= b["ppi"]["coverage"] <= 1


def test_the_demo_compares_its_two_engines_without_paying_twice(standard_answers, tmp_path):
    from tests.conftest import REPO

    db = str(tmp_path / "demo.db")
    judged = CliRunner().invoke(main, ["judge", str(REPO / "demo" / "pairs.jsonl"), "--db", db,
                                       "--base-url", "http://fake.invalid/v1", "--model", "m",
                                       "--vision-model", "pillow", "--json"])
    summary = json.loads(judged.stdout)
    assert summary["pairs"] == 80 and summary["labels_reused"] == 40
    assert len(standard_answers.calls("Judgment")) == 40
    compared = CliRunner().invoke(main, ["compare", "latest", "--db", db, "--baseline",
                                         "demo-engine", "--candidate", "demo-engine-b",
                                         "--k", "3,5", "--json"])
    assert compared.exit_code == 0, compared.output
    assert json.loads(compared.stdout)["candidates"]["demo-engine-b"]["queries"] == 8
    # what `make demo` prints: the table and the one largest loss
    shown = CliRunner().invoke(main, ["compare", "latest", "--db", db, "--baseline",
                                      "demo-engine", "--candidate", "demo-engine-b",
                                      "--k", "3,5", "--losses", "1"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "demo-engine-b vs demo-engine on 8 queries" in shown.stdout
    assert "nDCG@5" in shown.stdout


async def test_trec_qrels_import_as_human_labels(judged, settings, tmp_path):
    store, run_id = judged
    db = settings.db_path
    qrels, queries = tmp_path / "q.qrels", tmp_path / "q.tsv"
    for kind, path in (("qrels", qrels), ("queries", queries)):
        CliRunner().invoke(main, ["export", kind, run_id, "--db", db, "--out", str(path)])
    catalogue = write_jsonl(tmp_path / "c.jsonl", [
        {"product_id": r["id"], "title": r["title"]}
        for r in store.rows("select id, title from products")])
    other = str(tmp_path / "other.db")
    done = CliRunner().invoke(main, ["labels", "import", "trec", str(qrels), "--db", other,
                                     "--queries", str(queries), "--catalogue", str(catalogue),
                                     "--source", "assessors"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["labels"] == len(qrels.read_text().splitlines())
    back = CliRunner().invoke(main, ["export", "qrels", "--human", "assessors", "--db", other])
    # the same grades come back (query ids are the store's own: the same text and language)
    assert sorted(back.stdout.splitlines()) == sorted(qrels.read_text().splitlines())
    bad = tmp_path / "bad.qrels"
    bad.write_text("nope 0 1 2\nq-x 0 1\n")
    failed = CliRunner().invoke(main, ["labels", "import", "trec", str(bad), "--db", other,
                                       "--queries", str(queries), "--catalogue",
                                       str(catalogue)])
    assert failed.exit_code == 2 and f"{bad}:1: qid" in failed.stderr
    assert f"{bad}:2: line" in failed.stderr


async def test_compare_the_same_engine_across_two_runs(judged, settings, fake_model):
    from dataclasses import replace

    store, run_id = judged
    await judge_pairs(pairs(), replace(settings, run_name="tomorrow"))
    result = CliRunner().invoke(main, ["compare", run_id, "--db", settings.db_path,
                                       "--baseline", "A", "--candidate", "A",
                                       "--candidate-run", "tomorrow", "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["candidates"]["A (tomorrow)"]["measures"]["nDCG@10"]
    assert (row["wins"], row["losses"], row["ties"]) == (0, 0, 3)  # same labels, same lists


async def test_the_report_gains_engines_and_a_trend_chart(judged, settings):
    from raer.evals.report import engine_sections

    store, run_id = judged
    for tag in ("monday", "tuesday"):
        shown = CliRunner().invoke(main, ["evaluate", run_id, "--db", settings.db_path,
                                          "--tag", tag], env={"COLUMNS": "200"})
        assert shown.exit_code == 0, shown.output
        assert "worst:" in shown.stdout and "raer show j-" in shown.stdout
    md, parts = engine_sections(store, [run_id])
    text = "\n".join(md)
    assert f"## Engines in {run_id}" in text and "| A | 3 |" in text and "| B | 3 |" in text
    assert any(part.startswith("<svg") for part in parts)
