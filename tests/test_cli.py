"""The CLI through click's CliRunner, on the fake model."""

import json

from click.testing import CliRunner

from raer.graph.cli import main
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
    assert "nothing was judged: all 2 pairs failed" in out.output
    assert "requirements failed" in out.output
