"""Agreement on anyone's labels: what two unseen crowd-labelled sets exposed (issue 12).

The example file `tests/data/crowd_ratings.csv` is the README's: three raters on a 1–4
scale, no product ids, its own column names, a row repeated with a double space."""

import json
import random

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.metrics import accuracy_score, cohen_kappa_score

from raer.cli import main
from raer.evals.agreement import (
    Item,
    bootstrap_ci,
    breakdown,
    fast_bootstrap,
    human_leave_one_out,
    human_pairwise,
    majority_vote,
    point_metrics,
    quadratic_kappa,
)
from raer.evals.labels import parse_mapping, read_label_table_full, title_product_id
from raer.evals.report_data import agreement_data
from raer.evals.tables import disagreements_table, raw_confusion_title
from raer.nodes.common import judgment_id
from raer.nodes.inputs import InputError
from raer.store import open_store
from tests.conftest import REPO

CROWD = REPO / "tests" / "data" / "crowd_ratings.csv"
RULES = ">=4:highly relevant,>=3:acceptable substitute,*:irrelevant"
HR, AS, IR = "highly relevant", "acceptable substitute", "irrelevant"
IMPORT = ["labels", "import", "table", str(CROWD), "--columns",
          "query=search_term,title=product_title", "--annotators", "rater_1,rater_2,rater_3",
          "--mapping", RULES]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def imported(db, *extra):
    result = invoke(*IMPORT, "--db", db, "--source", "crowd", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# ---------------------------------------------------------------- importing labels

def test_the_readme_example_imports_with_renamed_columns_rules_ids_and_a_split(tmp_path):
    db = str(tmp_path / "c.db")
    out = imported(db, "--duplicates", "first", "--split-by-query", "0.5", "--seed", "3")
    assert out["labels"] == 33 and out["pairs"] == 11 and out["duplicates_dropped"] == 3
    assert out["product_ids_from_title"] == 12
    store = open_store(db)
    rows = store.rows("select h.*, q.text from human_labels h join queries q "
                      "on q.id = h.query_id")
    assert {r["product_id"] for r in rows} >= {title_product_id("Red summer dress")}
    assert {(r["raw_label"], r["label"]) for r in rows} == {
        ("4", HR), ("3", AS), ("2", IR), ("1", IR)}
    by_query = {}
    for r in rows:
        by_query.setdefault(r["text"], set()).add(r["split"])
    assert all(len(s) == 1 for s in by_query.values())  # whole queries in one split
    assert sorted(s.pop() for s in by_query.values()) == ["dev", "dev", "test", "test"]
    again = tmp_path / "d.db"
    imported(str(again), "--duplicates", "first", "--split-by-query", "0.5", "--seed", "3")
    assert sorted((r["query_id"], r["split"]) for r in open_store(again).rows(
        "select distinct query_id, split from human_labels")) == sorted(
        (r["query_id"], r["split"]) for r in store.rows(
            "select distinct query_id, split from human_labels"))


def test_duplicates_differing_by_spaces_are_an_error_unless_a_policy_is_chosen(tmp_path):
    result = invoke(*IMPORT, "--db", tmp_path / "c.db")
    assert result.exit_code == 2
    assert "crowd_ratings.csv:5: rater_1: duplicate of line 2" in result.output
    assert "--duplicates first or mean" in result.output
    assert not (tmp_path / "c.db").exists() or not open_store(tmp_path / "c.db").rows(
        "select * from human_labels")
    averaged = read_label_table_full(CROWD, ["rater_2"], parse_mapping(
        ">=3.5:highly relevant,>=2.5:acceptable substitute,*:irrelevant"),
        {"search_term": "query", "product_title": "title"}, "mean")
    first = next(x for x in averaged.labels if x.pair.title == "Red summer dress")
    assert (first.raw_label, first.label) == ("3.5", HR)  # mean of 4 and 3
    assert averaged.duplicates_averaged == 1


def test_every_problem_is_reported_in_one_pass_with_file_line_and_field(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("q,title,r1\njeans,Jeans,5\n,Belt,1\nsocks,,9\nhat,Hat,7\n",
                    encoding="utf-8")
    result = invoke("labels", "import", "table", path, "--columns", "query=q",
                    "--annotators", "r1,r2", "--mapping", "{\"1\": \"irrelevant\"}",
                    "--db", tmp_path / "c.db")
    assert result.exit_code == 2
    for expected in ("bad.csv: r2: annotator column missing",
                     "bad.csv:2: r1: unknown label '5'",
                     "bad.csv:3: query: String should have at least 1 character",
                     "bad.csv:4: title: String should have at least 1 character",
                     "bad.csv:5: r1: unknown label '7'"):  # every unknown label, not the first
        assert expected in result.output, result.output


def test_mapping_from_a_file_and_a_bad_one_names_the_option(tmp_path):
    rules = tmp_path / "mapping.txt"
    rules.write_text(RULES.replace(",", "\n"), encoding="utf-8")
    assert parse_mapping(str(rules))("3") == AS
    as_json = tmp_path / "mapping.json"
    as_json.write_text('{"E": "highly relevant", "I": "irrelevant"}', encoding="utf-8")
    assert parse_mapping(str(as_json))("I") == IR
    broken = tmp_path / "broken.json"
    broken.write_text('{"E": "highly relevant",', encoding="utf-8")
    result = invoke(*IMPORT[:-1], str(broken), "--db", tmp_path / "c.db")
    assert result.exit_code == 2
    assert f"--mapping: file {broken} is not valid JSON" in result.output
    assert parse_mapping(">=2.67:highly relevant,>=1.67:acceptable substitute,*:irrelevant")(
        "2.5") == AS


def test_labels_pairs_takes_whole_queries_up_to_max_pairs(tmp_path):
    db = str(tmp_path / "c.db")
    imported(db, "--duplicates", "first")
    result = invoke("labels", "pairs", "--db", db, "--source", "crowd", "--max-pairs", "7",
                    "-o", tmp_path / "p.jsonl")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    lines = (tmp_path / "p.jsonl").read_text().splitlines()
    assert out["pairs"] == len(lines) == 6 and out["queries"] == 2  # 3 + 3; a third won't fit


# ---------------------------------------------------------------- baselines and --common

def test_a_baseline_run_is_named_by_its_split_so_dev_never_touches_test(tmp_path):
    db = str(tmp_path / "c.db")
    imported(db, "--duplicates", "first", "--split-by-query", "0.5", "--seed", "3")
    test_run = json.loads(invoke("baseline", "lexical", "--db", db, "--source", "crowd")
                          .stdout)["run_id"]
    before = open_store(db).rows("select id, label from judgments where run_id = ?",
                                 [test_run])
    dev_run = json.loads(invoke("baseline", "lexical", "--db", db, "--source", "crowd",
                                "--split", "dev").stdout)["run_id"]
    assert dev_run != test_run
    store = open_store(db)
    assert store.rows("select id, label from judgments where run_id = ?", [test_run]) == before
    split_of = {(r["query_id"], r["product_id"]): r["split"]
                for r in store.rows("select * from human_labels")}
    for run, split in ((test_run, "test"), (dev_run, "dev")):
        pairs = store.rows("select query_id, product_id from judgments where run_id = ?", [run])
        assert pairs and {split_of[(p["query_id"], p["product_id"])] for p in pairs} == {split}


def test_a_baseline_without_a_split_column_says_what_to_do(tmp_path):
    db = str(tmp_path / "c.db")
    imported(db, "--duplicates", "first")
    result = invoke("baseline", "majority", "--db", db, "--source", "crowd")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "has no split 'dev' (it has: '')" in result.output
    assert "--split-by-query" in result.output
    ok = invoke("baseline", "majority", "--db", db, "--source", "crowd", "--fit-split", "",
                "--split", "")
    assert ok.exit_code == 0, ok.output


def _model_run(store, run_id, labels):
    store.ensure_run(run_id, {"judge": "m"}, {"judge": "fake-model"}, {})
    for (qid, pid), label in labels.items():
        store.db["judgments"].insert({
            "id": judgment_id(run_id, qid, "", pid), "run_id": run_id, "query_id": qid,
            "product_id": pid, "engine": "", "status": "failed" if label is None else "done",
            "label": label, "model": "fake-model"})


def test_common_scores_every_run_on_exactly_the_pairs_all_judged(tmp_path):
    db = str(tmp_path / "c.db")
    imported(db, "--duplicates", "first")
    store = open_store(db)
    lexical = json.loads(invoke("baseline", "lexical", "--db", db, "--source", "crowd",
                                "--fit-split", "", "--split", "").stdout)["run_id"]
    pairs = [(r["query_id"], r["product_id"]) for r in store.rows(
        "select distinct query_id, product_id from human_labels order by 1, 2")]
    model = {pair: (None if n % 4 == 0 else HR) for n, pair in enumerate(pairs)}
    _model_run(store, "model", model)
    data = agreement_data(store, ["model", lexical], "crowd", common=True, resamples=20)
    judged = sum(v is not None for v in model.values())
    assert data["common_pairs"] == judged == 8
    for run in ("model", lexical):
        assert data["results"][run]["overall"]["pairs"] == judged
    alone = agreement_data(store, [lexical], "crowd", resamples=20)["items"][lexical]
    subset = [i for i in alone if model[(i.query_id, i.product_id)] is not None]
    assert data["results"][lexical]["overall"]["agreement"] == accuracy_score(
        [i.majority for i in subset], [i.judge for i in subset])
    result = invoke("agree", "model", lexical, "--db", db, "--source", "crowd", "--common",
                    "--resamples", "20")
    assert "every run scored on the same 8 pairs" in result.output
    report = invoke("report", "model", lexical, "--db", db, "--source", "crowd", "--common",
                    "--resamples", "20", "--out", tmp_path / "r")
    assert report.exit_code == 0, report.output
    assert "every run scored on the same 8 pairs" in (tmp_path / "r" / "report.md").read_text()


# ---------------------------------------------------------------- tables, ties, ceiling

def item(i, judge, humans, raw=None, query="q", language="en", ties="median"):
    return Item(judgment_id=f"j{i}", query_id=query, query=query, language=language,
                query_type="", engine="", product_id=f"p{i}", title="t", status="done",
                judge=judge, humans=humans, raw=raw or {}, ties=ties)


def test_ties_go_to_the_median_by_default_and_the_rule_is_configurable():
    ratings = {"r1": IR, "r2": AS, "r3": HR}  # raw 2, 3, 4
    assert majority_vote(ratings) == AS
    assert majority_vote(ratings, "lower") == IR
    assert majority_vote(ratings, "higher") == HR
    assert majority_vote({"r1": IR, "r2": HR}) == AS  # median of 0 and 2
    assert majority_vote({"r1": AS, "r2": HR}) == AS  # the lower middle for a half
    assert majority_vote({"r1": IR, "r2": HR, "tiebreaker": HR}) == HR


def test_the_original_label_table_is_stable_titled_and_counts_every_annotator():
    raws = [("4", HR), ("3", AS), ("2", IR), ("1", IR)]
    items = []
    for n in range(12):
        chosen = random.Random(n).sample(raws, 3)
        items.append(item(n, HR, {f"r{k}": lab for k, (_, lab) in enumerate(chosen)},
                          {f"r{k}": raw for k, (raw, _) in enumerate(chosen)}))
    layouts = {tuple(point_metrics(random.Random(s).sample(items, 12))["confusion_raw"]["rows"])
               for s in range(5)}
    assert layouts == {("4", "3", "2", "1")}
    m = point_metrics(items)
    assert sum(map(sum, m["confusion_raw"]["matrix"])) == 36  # 12 pairs × 3 raters
    assert raw_confusion_title(m).startswith("Original labels × judge (4 original values; "
                                             "every annotator's label counted")


def test_a_cut_list_of_hard_disagreements_says_so():
    items = [item(n, HR, {"a": IR}) for n in range(25)]
    assert "First 20 of 25 hard disagreements" in disagreements_table(items, {})
    assert "First" not in disagreements_table(items, {}, limit=None)


def test_the_human_ceiling_is_each_rater_against_the_others_majority():
    items = [item(0, HR, {"a": HR, "b": HR, "c": HR}), item(1, HR, {"a": HR, "b": HR, "c": IR})]
    # pair 1: a and b each face {HR, IR}, a tie whose median is AS (miss); c faces HR (miss)
    assert human_leave_one_out(items) == pytest.approx(3 / 6)
    assert human_pairwise(items) == pytest.approx(4 / 6)
    assert point_metrics(items)["human_loo"] == pytest.approx(0.5)


def test_a_group_identical_to_the_overall_figures_is_not_computed_twice():
    groups = breakdown([item(n, HR, {"a": HR}, query=f"q{n}") for n in range(4)], resamples=10)
    assert list(groups) == ["overall"]
    assert groups["overall"]["same_as_overall"] == ["language: en"]


# ---------------------------------------------------------------- fast statistics

def synthetic(queries=60, seed=0):
    rng = np.random.default_rng(seed)
    labels = [IR, AS, HR]
    items = []
    for q in range(queries):
        for p in range(int(rng.integers(1, 12))):
            human = labels[int(rng.integers(0, 3))]
            judge = human if rng.random() < 0.6 else labels[int(rng.integers(0, 3))]
            items.append(item(q * 100 + p, judge, {"a": human, "b": labels[int(
                rng.integers(0, 3))]}, query=f"q{q}"))
    return items


def test_numpy_bootstrap_matches_the_per_resample_library_path_within_noise():
    items = synthetic()
    fast = fast_bootstrap(items, resamples=2000, seed=7)
    for name, statistic in (("agreement", None), ("kappa_quadratic", quadratic_kappa)):
        from raer.evals.agreement import agreement
        slow = bootstrap_ci(items, statistic or agreement, resamples=2000, seed=11)
        quick = np.percentile(fast[name][~np.isnan(fast[name])], [2.5, 97.5])
        assert quick == pytest.approx(slow, abs=0.025)
    m = point_metrics(items)
    judged = [i for i in items if i.judged]
    codes = {IR: 0, AS: 1, HR: 2}
    assert m["kappa_quadratic"] == cohen_kappa_score(
        [codes[i.majority] for i in judged], [codes[i.judge] for i in judged],
        labels=[0, 1, 2], weights="quadratic")


def test_numpy_bootstrap_of_a_single_resample_equals_the_statistic_of_that_sample():
    items = synthetic(queries=15, seed=3)
    fast = fast_bootstrap(items, resamples=1, seed=5)
    drawn = np.random.default_rng(5).integers(0, 15, size=(1, 15))[0]
    order = list(dict.fromkeys(i.query_id for i in items))
    sample = [i for q in drawn for i in items if i.query_id == order[q]]
    from raer.evals.agreement import agreement, matches_any
    assert fast["agreement"][0] == pytest.approx(agreement(sample))
    assert fast["matches_any"][0] == pytest.approx(matches_any(sample))
    assert fast["kappa_quadratic"][0] == pytest.approx(quadratic_kappa(sample))


def test_an_empty_label_file_is_an_error_not_a_silent_success(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("query,product_id,title,label\n", encoding="utf-8")
    with pytest.raises(InputError, match="no labels in the file"):
        read_label_table_full(path, ["label"])
    result = invoke("labels", "import", "table", path, "--db", tmp_path / "c.db")
    assert result.exit_code == 2


def test_a_ceiling_is_estimated_from_aggregate_and_spread_with_its_assumption(tmp_path):
    from raer.evals.ceiling import estimate_leave_one_out

    three = parse_mapping(">=3:highly relevant,>=2:acceptable substitute,*:irrelevant")
    assert estimate_leave_one_out(3, 0, 3, (1, 3), three) == 1.0
    # one of three raters off by a point: the two agreeing ones match the others' majority
    # only when the tie of the other two goes their way, so the ceiling falls well below 1
    assert 0.3 < estimate_leave_one_out(2.33, 0.58, 3, (1, 3), three, draws=4000) < 0.8
    db = str(tmp_path / "a.db")
    result = invoke("labels", "import", "table", REPO / "tests" / "data" / "crowd_aggregate.csv",
                    "--db", db, "--annotators", "mean", "--mapping",
                    ">=2.67:highly relevant,>=1.67:acceptable substitute,*:irrelevant",
                    "--spread", "sd", "--raters", "3", "--scale", "1,3", "--source", "agg")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ceiling_estimated_pairs"] == 5
    run = json.loads(invoke("baseline", "lexical", "--db", db, "--source", "agg",
                            "--fit-split", "", "--split", "").stdout)["run_id"]
    out = invoke("agree", run, "--db", db, "--source", "agg", "--resamples", "10")
    assert "(estimated)" in out.output and "ratings ~ Normal(aggregate, spread)" in out.output
    overall = json.loads(invoke("agree", run, "--db", db, "--source", "agg", "--resamples",
                                "10", "--json").stdout)["results"][run]["overall"]
    assert overall["human_loo_estimated"] and 0.5 < overall["human_loo"] < 1
