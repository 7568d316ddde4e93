"""Your own engines on any labels (evals/label_sources.py): three engines built here from
ESCI-US test queries in ../shared, scored on people's labels and on a baseline's through
`--engines-from` and `--labels`, every figure checked against pytrec_eval and scipy computed
here from the file itself. Before, `evaluate`, `compare`, `meta-eval` and `ppi` read only
judged runs and raer's five built-in rankers."""

import json
import re
import sqlite3

import numpy as np
import pytest
import pytrec_eval
from click.testing import CliRunner
from scipy import stats

from raer.cli import main
from raer.store import open_store
from tests.conftest import lines_of, write_jsonl

GRADE = {"E": 2, "S": 1, "C": 0, "I": 0}
LABEL_GRADE = {"highly relevant": 2, "acceptable substitute": 1, "irrelevant": 0}


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.casefold()))


def _engines(rows: list[dict]) -> dict[str, dict[str, list[str]]]:
    """query text → ranked product ids, for three engines a team might compare."""
    by_query: dict[str, list[dict]] = {}
    for row in rows:
        by_query.setdefault(row["query"], []).append(row)
    overlap, reversed_, by_id = {}, {}, {}
    for query, products in by_query.items():
        ranked = sorted(products, key=lambda r: (-len(_words(query) & _words(
            r["product_title"] or "")), r["product_id"]))
        overlap[query] = [r["product_id"] for r in ranked]
        reversed_[query] = overlap[query][::-1]
        by_id[query] = sorted(r["product_id"] for r in products)
    return {"overlap": overlap, "reversed": reversed_, "by-id": by_id}


def _pytrec(qrels: dict[str, dict[str, int]], ranking: dict[str, list[str]]
            ) -> dict[str, dict[str, float]]:
    run = {q: {pid: float(len(pids) - i) for i, pid in enumerate(pids)}
           for q, pids in ranking.items()}
    ndcg = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut_10"}).evaluate(run)
    strict = pytrec_eval.RelevanceEvaluator(qrels, {"P_5", "recip_rank"},
                                            relevance_level=2).evaluate(run)
    return {q: {"nDCG@10": ndcg[q]["ndcg_cut_10"], "P@5": strict[q]["P_5"],
                "MRR": strict[q]["recip_rank"]} for q in ndcg}


@pytest.fixture
def labelled(tmp_path, esci_us):
    rows = lines_of(esci_us)
    chosen = sorted({r["esci_query_id"] for r in rows if r["split"] == "test"})[:8]
    rows = [r for r in rows if r["esci_query_id"] in chosen]
    sample = write_jsonl(tmp_path / "esci.jsonl", rows)
    db = str(tmp_path / "e.db")
    runner = CliRunner()
    imported = runner.invoke(main, ["labels", "import", "esci-sample", str(sample), "--db", db,
                                    "--source", "esci-us"])
    assert imported.exit_code == 0, imported.output
    files = []
    for name, ranking in _engines(rows).items():
        files.append(str(write_jsonl(tmp_path / f"{name}.jsonl", [
            {"query": q, "language": "en", "engine": name, "rank": i + 1, "product_id": pid,
             "title": pid} for q, pids in ranking.items() for i, pid in enumerate(pids)])))
    baseline = json.loads(runner.invoke(main, [
        "baseline", "lexical", "--db", db, "--source", "esci-us", "--fit-split", "test",
        "--split", "test"]).stdout)["run_id"]
    return rows, db, files, baseline


def _qrels_of_people(rows):
    qrels: dict[str, dict[str, int]] = {}
    for r in rows:
        qrels.setdefault(r["query"], {})[r["product_id"]] = GRADE[r["esci_label"]]
    return qrels


def _qrels_of_run(db: str, run_id: str) -> dict[str, dict[str, int]]:
    with sqlite3.connect(db) as conn:
        found = conn.execute("select q.text, j.product_id, j.label from judgments j join "
                             "queries q on q.id = j.query_id where j.run_id = ?", [run_id])
        qrels: dict[str, dict[str, int]] = {}
        for text, pid, label in found:
            qrels.setdefault(text, {})[pid] = LABEL_GRADE[label]
    return qrels


def _evaluate(db, files, labels):
    result = CliRunner().invoke(main, ["evaluate", "--db", db, "--engines-from", files[0],
                                       "--engines-from", files[1], "--engines-from", files[2],
                                       "--labels", labels, "--ideal", "labels", "--k", "5,10",
                                       "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("source", ["people", "baseline"])
def test_three_engines_scored_on_any_labels_equal_pytrec_eval(labelled, source):
    rows, db, files, baseline = labelled
    if source == "people":
        labels, qrels = "human:esci-us:test", _qrels_of_people(rows)
    else:
        labels, qrels = f"run:{baseline}", _qrels_of_run(db, baseline)
    report = _evaluate(db, files, labels)
    assert report["labels"] == labels and "ideal from every label" in report["convention"]
    for name, ranking in _engines(rows).items():
        expected = _pytrec(qrels, ranking)
        measures = report["engines"][name]["measures"]
        assert report["engines"][name]["queries"] == len(expected) == 8
        for measure in ("nDCG@10", "P@5", "MRR"):
            mean = float(np.mean([v[measure] for v in expected.values()]))
            assert measures[measure]["mean"] == round(mean, 4), (name, measure)


def test_compare_of_your_engines_equals_scipy_on_pytrec_values(labelled):
    rows, db, files, _ = labelled
    result = CliRunner().invoke(main, [
        "compare", "--db", db, *sum((["--engines-from", f] for f in files), []),
        "--labels", "human:esci-us:test", "--ideal", "labels", "--baseline", "overlap",
        "--candidate", "reversed", "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["candidates"]["reversed"]["measures"]["nDCG@10"]
    engines, qrels = _engines(rows), _qrels_of_people(rows)
    base, cand = _pytrec(qrels, engines["overlap"]), _pytrec(qrels, engines["reversed"])
    queries = sorted(base)
    a = np.array([base[q]["nDCG@10"] for q in queries])
    b = np.array([cand[q]["nDCG@10"] for q in queries])
    assert row["delta"] == round(float((b - a).mean()), 4)
    assert row["p_t"] == pytest.approx(float(stats.ttest_rel(b, a).pvalue), rel=1e-9)
    assert (row["wins"], row["losses"]) == (int((b > a + 1e-12).sum()),
                                            int((b < a - 1e-12).sum()))


def test_meta_evaluation_of_your_engines_equals_scipy(labelled):
    rows, db, files, baseline = labelled
    result = CliRunner().invoke(main, [
        "meta-eval", "--db", db, "--source", "esci-us", "--split", "test", "--run", baseline,
        *sum((["--engines-from", f] for f in files), []), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    engines = _engines(rows)
    names = report["engines"]
    assert sorted(names) == sorted(engines) and report["engine_pairs"] == 3
    people, theirs = _qrels_of_people(rows), _qrels_of_run(db, baseline)

    def means(qrels):
        # meta-eval ranks only the pairs people labelled (condensed lists), on the
        # label source's grades
        return [float(np.mean([v["nDCG@10"] for v in _pytrec(qrels, {
            q: [p for p in pids if p in people[q]] for q, pids in engines[name].items()}
            ).values()])) for name in names]

    got = report["label_sources"][baseline]
    assert [got["nDCG@10"][e] for e in names] == [round(v, 4) for v in means(theirs)]
    tau = stats.kendalltau(means(people), means(theirs)).statistic
    assert got["kendall_tau"] == round(float(tau), 3)
    assert got["significant_decisions"]["of"] == 3


def test_meta_eval_and_ppi_take_a_query_with_no_usable_word(tmp_path):
    """"To" is all stopword: BM25 had no token to score, and the IndexError it raised was
    printed as "bad input: list index out of range" (exit 2)."""
    rows = [{"query": q, "language": "en", "product_id": f"{q[:3]}-{i}",
             "title": f"{q} item {i}", "split": "test",
             "A1": ["highly relevant", "irrelevant", "acceptable substitute", "irrelevant"][i]}
            for q in ("To", "red dress", "blue jeans", "black shoes") for i in range(4)]
    path = write_jsonl(tmp_path / "labels.jsonl", rows)
    db = str(tmp_path / "t.db")
    runner = CliRunner()
    assert runner.invoke(main, ["labels", "import", "table", str(path), "--db", db,
                                "--source", "crowd", "--annotators", "A1"]).exit_code == 0
    result = runner.invoke(main, ["meta-eval", "--db", db, "--source", "crowd", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["label_sources"]["people"]["queries"] == 4


def test_compare_counts_wins_the_right_way_and_tests_each_question_once(tmp_path):
    """irrelevant@k: lower is better, but a candidate that lowered it was counted as
    losing; judged@k (constant when everything is judged) and P+sub@k (equal to P@k when
    nothing is a substitute) were counted in the Benjamini–Hochberg family as tests."""
    queries, docs = [f"q{i}" for i in range(1, 5)], [f"d{i}" for i in range(1, 6)]
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("".join(f"{q} 0 {d} {2 if d in ('d1', 'd2') else 0}\n"
                             for q in queries for d in docs))
    worse, better = ["d3", "d4", "d5", "d1", "d2"], docs
    files = []
    for tag, order in (("prod", worse), ("new", better)):
        path = tmp_path / f"{tag}.run"
        path.write_text("".join(f"{q} Q0 {d} {r} {10 - r} {tag}\n" for q in queries
                                for r, d in enumerate(order, 1)))
        files += ["--engines-from", str(path)]
    db = str(tmp_path / "c.db")
    open_store(db)  # an empty store: the files and the qrels are everything
    result = CliRunner().invoke(main, ["compare", "--db", db, *files, "--labels",
                                       f"qrels:{qrels}", "--baseline", "prod",
                                       "--candidate", "new", "--k", "3", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    measures = report["candidates"]["new"]["measures"]
    assert (measures["irrelevant@3"]["wins"], measures["irrelevant@3"]["losses"]) == (4, 0)
    assert measures["nDCG@3"]["wins"] == 4
    assert measures["judged@3"]["p_adjusted"] is None  # constant: not a test
    assert [measures[m]["p_adjusted"] is None for m in ("P@3", "P+sub@3")] == [False, True]
    assert report["tests_in_family"] == sum(m["p_adjusted"] is not None
                                            for m in measures.values())


def test_trend_follows_your_engines_on_one_label_source(labelled):
    """Snapshots of your engines on people's labels and on a baseline's are two judges;
    `trend --labels` follows one of them (there was no way to pick the label source)."""
    _, db, files, baseline = labelled
    for labels in ("human:esci-us:test", f"run:{baseline}", "human:esci-us:test"):
        _evaluate(db, files, labels)
    runner = CliRunner()
    result = runner.invoke(main, ["trend", "--db", db, "--labels", "human:esci-us:test",
                                  "--engine", "overlap", "--json"])
    assert result.exit_code == 0, result.output
    series = json.loads(result.stdout)["series"]
    assert list(series) == ["overlap"] and len(series["overlap"]) == 2
    assert {p["judge"] for p in series["overlap"]} == {"labels human:esci-us:test"}
    both = json.loads(runner.invoke(main, ["trend", "--db", db, "--engine", "overlap",
                                           "--json"]).stdout)["series"]
    assert sorted(len(points) for points in both.values()) == [1, 2]
    run_only = runner.invoke(main, ["trend", "--db", db, "--labels", "run", "--json"])
    assert {p["run_id"] for s in json.loads(run_only.stdout)["series"].values()
            for p in s} == {baseline}
    missing = runner.invoke(main, ["trend", "--db", db, "--labels", "qrels:nothing"])
    assert missing.exit_code == 2 and "graded by qrels:nothing" in missing.output
