"""The CLI through click's CliRunner, on the fake model."""

import json

from click.testing import CliRunner

from raer.cli import main
from raer.store import open_store
from tests.conftest import draw_packshot, judgment, write_jsonl

MODEL = ["--base-url", "http://fake.invalid/v1", "--model", "gpt-4o-mini"]


def demo_file(tmp_path):
    image = draw_packshot(tmp_path / "red.png")
    return write_jsonl(tmp_path / "pairs.jsonl", [
        {"query": "black levis jeans", "language": "en", "engine": "A", "rank": 1,
         "product_id": "p1", "title": "Levi's 501 black", "brand": "Levi's",
         "image": image.name},
        {"query": "black levis jeans", "language": "en", "engine": "A", "rank": 2,
         "product_id": "p2", "title": "Wrangler jeans", "brand": "Wrangler"},
    ])


def test_judge_writes_every_pair_and_a_rerun_makes_no_call(standard_answers, tmp_path):
    db = tmp_path / "out.db"
    args = ["judge", str(demo_file(tmp_path)), "--db", str(db), "--json", *MODEL]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert summary["pairs"] == 2 and summary["statuses"]["done"] == 2
    # requirements + guidelines + 1 packshot (pillow is not the default with an endpoint) + 2
    assert summary["model_calls_this_invocation"] == 5
    second = json.loads(CliRunner().invoke(main, args).stdout)
    assert second["model_calls_this_invocation"] == 0
    assert open_store(db).db["judgments"].count == 2


def test_show_prints_each_nodes_prompt_raw_output_and_tokens(standard_answers, tmp_path):
    db = tmp_path / "out.db"
    CliRunner().invoke(main, ["judge", str(demo_file(tmp_path)), "--db", str(db), *MODEL])
    result = CliRunner().invoke(main, ["show", "--db", str(db), "--query", "Black Levis Jeans",
                                       "--product", "p1"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for expected in ("extract_requirements", "draft_guidelines", "describe_product",
                     "judge_pair", "prompt", "raw output", "<product_data>",
                     "Levi's 501 black", "tokens in"):
        assert expected in result.output
    as_json = json.loads(CliRunner().invoke(main, ["show", "--db", str(db), "--query",
                                                   "black levis jeans", "--product", "p2",
                                                   "--json"]).stdout)
    judge_step = as_json["steps"][-1]
    assert judge_step["node"] == "judge_pair" and judge_step["calls"][0]["parsed"]["label"]
    assert as_json["steps"][2]["calls"] == []  # p2 has no packshot


def test_review_list_and_resolve(standard_answers, tmp_path):
    standard_answers.respond("Judgment", lambda m: judgment(confidence=0.2))
    db = tmp_path / "out.db"
    CliRunner().invoke(main, ["judge", str(demo_file(tmp_path)), "--db", str(db), *MODEL])
    listed = json.loads(CliRunner().invoke(main, ["review", "list", "--db", str(db),
                                                  "--json"]).stdout)
    assert len(listed) == 2 and listed[0]["reasons"] == ["low confidence 0.2 < 0.5"]
    table = CliRunner().invoke(main, ["review", "list", "--db", str(db)], env={"COLUMNS": "200"})
    assert "2 pairs for review" in table.output and "low confidence" in table.output
    target = listed[0]["judgment_id"]
    resolved = CliRunner().invoke(main, ["review", "resolve", target, "irrelevant", "--db",
                                         str(db), "--reviewer", "ana"])
    assert resolved.exit_code == 0
    remaining = json.loads(CliRunner().invoke(main, ["review", "list", "--db", str(db),
                                                     "--json"]).stdout)
    assert [r["judgment_id"] for r in remaining] == [listed[1]["judgment_id"]]
    bad = CliRunner().invoke(main, ["review", "resolve", target, "great", "--db", str(db)])
    assert bad.exit_code == 2


def test_bad_input_exits_2_naming_the_line_and_writes_nothing(fake_model, tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [
        {"query": "jeans", "product_id": "p1", "title": "fine"},
        {"query": "jeans", "product_id": "p2"}])
    db = tmp_path / "out.db"
    result = CliRunner().invoke(main, ["judge", str(path), "--db", str(db), *MODEL])
    assert result.exit_code == 2
    assert "bad.jsonl:2: title: Field required" in result.output
    assert not db.exists() and fake_model.requests == []


def test_failed_pairs_exit_1(standard_answers, tmp_path):
    standard_answers.respond("Judgment", lambda m: TimeoutError("provider down")
                             if "Wrangler" in m[-1].content else judgment())
    result = CliRunner().invoke(main, ["judge", str(demo_file(tmp_path)), "--db",
                                       str(tmp_path / "o.db"), "--json", "--max-retries", "0",
                                       *MODEL])
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["statuses"] == {"done": 1, "escalated": 0, "failed": 1,
                                                     "pending": 0}


def test_db_path_prints_the_absolute_path(tmp_path):
    result = CliRunner().invoke(main, ["db", "path", "--db", str(tmp_path / "x.db")])
    assert result.output.strip() == str((tmp_path / "x.db").resolve())


def test_judge_fails_loudly_when_no_pair_was_judged(fake_model, tmp_path):
    """Issue 11: with every requirements call timing out the demo judged nothing and still
    exited 0. Now: exit 4 and the reasons."""
    def timeout(messages):
        raise TimeoutError("the model did not answer in time")

    fake_model.respond("Requirements", timeout)
    out = CliRunner().invoke(main, ["judge", str(demo_file(tmp_path)), "--db",
                                    str(tmp_path / "x.db"), "--max-retries", "0", *MODEL])
    assert out.exit_code == 4, out.output
    assert "nothing was judged: 2 pairs failed" in out.output
    assert "requirements failed" in out.output


def test_read_commands_need_an_existing_store(tmp_path):
    """Issue 24: a mistyped --db created an empty store; read commands printed empty
    tables with exit 0 and `raer evaluate` crashed with a traceback."""
    missing = tmp_path / "mistyped.db"
    for args in (["evaluate", "latest"], ["review", "list"], ["runs"], ["trend"],
                 ["agree", "latest", "--source", "esci"], ["export", "qrels", "latest"],
                 ["status", "latest"]):
        out = CliRunner().invoke(main, [*args, "--db", str(missing)])
        assert out.exit_code == 2, (args, out.output)
        assert f"no store at {missing}" in out.stderr, args
        assert "Traceback" not in out.output
    assert not missing.exists()


def test_runs_lists_runs_and_every_command_takes_latest_or_a_prefix(standard_answers,
                                                                    tmp_path):
    db = tmp_path / "out.db"
    first = CliRunner().invoke(main, ["judge", str(demo_file(tmp_path)), "--db", str(db),
                                      *MODEL])
    assert first.exit_code == 0 and f"creating a new store at {db}" in first.stderr
    again = CliRunner().invoke(main, ["judge", str(demo_file(tmp_path)), "--db", str(db),
                                      "--run", "run-second", *MODEL])
    assert "creating a new store" not in again.stderr
    listed = json.loads(CliRunner().invoke(main, ["runs", "--db", str(db), "--json"]).stdout)
    ids = [r["run_id"] for r in listed["runs"]]
    assert len(ids) == 2 and "run-second" in ids
    [hashed] = [i for i in ids if i != "run-second"]
    row = next(r for r in listed["runs"] if r["run_id"] == hashed)
    assert row["kind"] == "judge" and row["pairs"] == {"done": 2} and row["engines"] == ["A"]
    text = CliRunner().invoke(main, ["runs", "--db", str(db)]).stdout
    assert hashed in text and "done 2" in text
    # a unique prefix and "latest" work wherever a run is named
    for args in (["status", hashed[:8]], ["evaluate", hashed[:8]], ["status", "latest"],
                 ["export", "qrels", hashed[:9]], ["review", "stats", hashed[:8]]):
        out = CliRunner().invoke(main, [*args, "--db", str(db)])
        assert out.exit_code == 0, (args, out.output)
    status = json.loads(CliRunner().invoke(main, ["status", hashed[:8], "--db",
                                                  str(db)]).stdout)
    assert status["run_id"] == hashed
    # ambiguous and unknown ids: exit 2 with the candidates, never zeros or a traceback
    ambiguous = CliRunner().invoke(main, ["status", "run-", "--db", str(db)])
    assert ambiguous.exit_code == 2 and "ambiguous" in ambiguous.stderr
    assert hashed in ambiguous.stderr and "run-second" in ambiguous.stderr
    for args in (["status", "run-nope"], ["evaluate", "run-nope"], ["diff", "run-nope",
                 hashed], ["export", "qrels", "run-nope"]):
        out = CliRunner().invoke(main, [*args, "--db", str(db)])
        assert out.exit_code == 2 and "no run 'run-nope'" in out.stderr, (args, out.output)


def test_trend_refuses_an_unknown_measure_and_evaluate_names_its_convention(
        standard_answers, tmp_path):
    db = tmp_path / "out.db"
    CliRunner().invoke(main, ["judge", str(demo_file(tmp_path)), "--db", str(db), *MODEL])
    evaluated = CliRunner().invoke(main, ["evaluate", "latest", "--db", str(db), "--json"])
    report = json.loads(evaluated.stdout)
    assert "trec_eval -J" in report["convention"] and report["unfinished"] == ""
    assert "trec_eval -J" in CliRunner().invoke(main, ["evaluate", "latest", "--db",
                                                       str(db)]).stdout
    typo = CliRunner().invoke(main, ["trend", "--db", str(db), "--measure", "nDGC@10"])
    assert typo.exit_code == 2 and "nDCG@10" in typo.stderr  # the stored measures listed
    # an unfinished run says so when evaluated
    store = open_store(db)
    store.db.execute("update judgments set status = 'pending', label = null "
                     "where product_id = 'p2'")
    store.db.conn.commit()
    warned = CliRunner().invoke(main, ["evaluate", "latest", "--db", str(db)])
    assert "is unfinished: 1 pairs pending" in warned.stderr
    # a run with nothing judged yet: exit 2 saying so (it was a KeyError traceback)
    store.db.execute("update judgments set status = 'pending', label = null")
    store.db.conn.commit()
    nothing = CliRunner().invoke(main, ["evaluate", "latest", "--db", str(db), "--json"])
    assert nothing.exit_code == 2 and "nothing in run" in nothing.stderr


def test_off_a_terminal_judge_prints_plain_progress_lines(standard_answers, tmp_path):
    """Issue 24: `make demo` printed nothing for ~9 minutes when not on a terminal."""
    out = CliRunner().invoke(main, ["judge", str(demo_file(tmp_path)), "--db",
                                    str(tmp_path / "p.db"), *MODEL])
    assert out.exit_code == 0, out.output
    assert "judging 2 pairs into run" in out.stderr
    assert "judged 2 of 2 pairs · calls" in out.stderr


def test_make_demo_keeps_its_store_and_fails_on_any_failed_pair():
    """Issue 24: `make demo` deleted demo.db (judging everything again) and accepted exit 1,
    so an interrupted run with 14 of 80 pairs judged passed."""
    import subprocess

    from tests.conftest import REPO

    recipe = subprocess.run(["make", "-n", "-W", "pyproject.toml", "demo"], cwd=REPO,
                            capture_output=True, text=True, timeout=60).stdout
    [judge] = [line for line in recipe.splitlines()
               if " experiment run demo/experiment.yaml" in line]
    assert "rm -f demo.db" not in recipe
    assert "||" not in judge and judge.rstrip().endswith("--db demo.db")


def test_judge_reads_a_shops_own_columns(standard_answers, tmp_path):
    """Issue 24: `raer judge` took no column mapping for a shop's own CSV."""
    shop = tmp_path / "shop.csv"
    shop.write_text("search_term,sku,name,lang\nblack jeans,p1,Levi's 501 black,en\n"
                    "black jeans,p2,Wrangler jeans,en\n")
    db = tmp_path / "shop.db"
    args = ["judge", str(shop), "--db", str(db), "--json", *MODEL, "--columns",
            "query=search_term,product_id=sku,title=name,language=lang"]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["statuses"]["done"] == 2
    rows = open_store(db).rows("select q.text, j.product_id from judgments j join queries q "
                               "on q.id = j.query_id order by j.product_id")
    assert [(r["text"], r["product_id"]) for r in rows] == [("black jeans", "p1"),
                                                            ("black jeans", "p2")]
    for columns, said in (("query=nope", "no column nope"), ("query=search_term", "title"),
                          ("quarry=search_term", "not a raer field"), ("query", "FIELD=COLUMN")):
        bad = CliRunner().invoke(main, ["judge", str(shop), "--db", str(tmp_path / "x.db"),
                                        *MODEL, "--columns", columns])
        assert bad.exit_code == 2 and said in bad.stderr, (columns, bad.output)
    assert not (tmp_path / "x.db").exists()  # refused before the store was created


def test_a_query_not_judged_yet_is_not_among_the_worst(standard_answers, tmp_path):
    """Issue 24: on an unfinished run, queries with nothing judged scored nDCG 0 and
    topped the worst-queries list."""
    pairs = write_jsonl(tmp_path / "two.jsonl", [
        {"query": q, "language": "en", "engine": "A", "rank": r, "product_id": f"{q}-{r}",
         "title": f"{q} {r}"} for q in ("black jeans", "red dress") for r in (1, 2)])
    db = tmp_path / "two.db"
    CliRunner().invoke(main, ["judge", str(pairs), "--db", str(db), *MODEL])
    store = open_store(db)
    store.db.execute("update judgments set status = 'pending', label = null where "
                     "product_id like 'red dress%'")
    store.db.conn.commit()
    out = CliRunner().invoke(main, ["evaluate", "latest", "--db", str(db), "--json"])
    worst = json.loads(out.stdout)["engines"]["A"]["worst"]
    assert [w["query"] for w in worst] == ["black jeans"]


def test_a_run_whose_first_pairs_all_fail_stops_early_with_exit_4(fake_model, tmp_path):
    """Every call failing (a wrong model name, a refused key) used to go through every pair
    of the file, each paying its retries. Now the run stops starting queries once 20 pairs
    failed with none judged; the rest stay pending for the same command."""
    from raer.run.local import EARLY_STOP_PAIRS

    def refused(messages):
        raise RuntimeError("401 the key was refused")

    fake_model.respond("Requirements", refused)
    rows = [{"query": f"query {q}", "language": "en", "product_id": f"p{q}-{i}",
             "title": "Jeans"} for q in range(60) for i in range(2)]
    pairs = write_jsonl(tmp_path / "many.jsonl", rows)
    out = CliRunner().invoke(main, ["judge", str(pairs), "--db", str(tmp_path / "x.db"),
                                    "--max-retries", "0", "--query-concurrency", "2", *MODEL])
    assert out.exit_code == 4, out.output
    asked = len(fake_model.calls("Requirements"))
    assert EARLY_STOP_PAIRS // 2 <= asked < 60 // 2  # stopped well before the 60 queries
    assert "stopped early" in out.output and "401 the key was refused" in out.output


def test_validate_checks_a_file_without_any_call_or_write(fake_model, tmp_path):
    """`--max-cost 0` means no limit and the embedded model costs $0, so nothing checked a
    file without running it; `--validate` reads it as a run would and sends nothing."""
    draw_packshot(tmp_path / "ok.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    pairs = write_jsonl(tmp_path / "p.jsonl", [
        {"query": "red bag", "language": "en", "product_id": "b1", "title": "Bag",
         "image": "ok.png"},
        {"query": "red bag", "language": "en", "product_id": "b2", "title": "Bag 2",
         "image": "missing.png"}])
    db = tmp_path / "v.db"
    out = CliRunner().invoke(main, ["judge", str(pairs), "--db", str(db), "--validate",
                                    "--json", *MODEL])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["pairs_to_judge"] == 2 and result["images"]["local"] == 2
    assert [u["product_id"] for u in result["images"]["unusable"]] == ["b2"]
    assert fake_model.requests == [] and not db.exists()
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"query": "red bag", "product_id": "b3"}])
    assert CliRunner().invoke(main, ["judge", str(bad), "--db", str(db), "--validate",
                                     *MODEL]).exit_code == 2
