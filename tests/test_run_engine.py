"""The run engine (run/): one plan for every door, one identity for every writer, one place
settings are built. Each test failed before the run engine gathered its decision."""

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from raer.cli import main
from raer.evals.agreement import load_items
from raer.evals.labels import HumanLabel, store_labels
from raer.nodes.inputs import Pair
from raer.run import judge_pairs
from raer.run.grouping import group_by_query
from raer.store import Store, open_store
from tests.conftest import REPO, draw_packshot, write_jsonl
from tests.fake_openai import FakeOpenAI


def _judge(pairs: Path, db: Path, base_url: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "raer"), "judge", str(pairs), "--db", str(db),
         "--json", "--base-url", base_url, "--model", "gpt-4o-mini", "--vision-model",
         "pillow", *extra], env={**os.environ, "OPENAI_API_KEY": "test"},
        capture_output=True, text=True, timeout=180)


def test_a_changed_product_is_refused_under_workers_as_in_one_process(tmp_path):
    rows = [{"query": "black jeans", "language": "en", "product_id": f"p{i}",
             "title": f"Jeans {i}"} for i in range(3)]
    first = write_jsonl(tmp_path / "first.jsonl", rows)
    changed = write_jsonl(tmp_path / "changed.jsonl",
                          [{**rows[0], "title": "Something else", "query": "red dress"}])
    db = tmp_path / "w.db"
    server = FakeOpenAI()
    try:
        assert _judge(first, db, server.base_url).returncode == 0
        sent = len(server.requests)
        for extra in ([], ["--workers", "2"]):
            result = _judge(changed, db, server.base_url, *extra)
            assert result.returncode == 2, (extra, result.stderr[-800:])
            assert "'p0' is stored with other title" in result.stderr
        assert len(server.requests) == sent  # refused before any call
    finally:
        server.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("select title from products where id = 'p0'").fetchone() == (
            "Jeans 0",)
        assert conn.execute("select count(*) from judgments where query_id in (select id "
                            "from queries where text = 'red dress')").fetchone() == (0,)


async def test_the_run_row_is_written_once(standard_answers, settings, monkeypatch):
    written = []
    ensure_run = Store.ensure_run
    monkeypatch.setattr(Store, "ensure_run",
                        lambda self, *a, **k: written.append(a[0]) or ensure_run(self, *a, **k))
    await judge_pairs([Pair(query="black jeans", product_id="p1", title="Jeans")], settings)
    assert written == [settings.run_id]
    written.clear()
    # a finished run is answered from the store: nothing is written
    await judge_pairs([Pair(query="black jeans", product_id="p1", title="Jeans")], settings)
    assert written == []


async def test_a_pair_without_language_has_one_query_for_label_import_and_judging(
        standard_answers, settings):
    pair = Pair(query="wasserdichte Jacke für Damen", product_id="j1", title="Regenjacke")
    store = open_store(settings.db_path)
    store_labels(store, [HumanLabel(pair, "ana", "E", "highly relevant")], "people")
    [group] = group_by_query([pair])
    assert group.language == "de"
    await judge_pairs([pair], settings)
    [item] = load_items(store, settings.run_id, "people")  # `raer agree` finds the label
    assert item.humans == {"ana": "highly relevant"}
    assert store.rows("select language from queries") == [{"language": "de"}]


def test_ablate_confines_packshots_to_the_pairs_folder_as_judge_does(standard_answers,
                                                                      tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    secret = draw_packshot(outside / "secret.png")
    folder = tmp_path / "pairs"
    folder.mkdir()
    pairs = write_jsonl(folder / "pairs.jsonl", [
        {"query": "red bag", "language": "en", "product_id": "b1", "title": "Bag",
         "image": str(secret)}])
    for command in (["judge", str(pairs)],
                    ["ablate", str(pairs), "--vary", "guidelines", "--resamples", "10"]):
        db = str(tmp_path / f"{command[0]}.db")
        result = CliRunner().invoke(main, [*command, "--db", db, "--base-url",
                                           "http://fake.invalid/v1", "--model", "gpt-4o",
                                           "--vision-model", "pillow"])
        assert result.exit_code in (0, 2), result.output  # ablate: no human labels
        notes = {r["image_note"] for r in open_store(db).rows(
            "select image_note from judgments")}
        assert notes == {"image path is outside the images folder (the pairs file's "
                         "folder, or --images-root)"}, command[0]


def test_settings_are_built_in_one_place():
    """Only nodes/settings.py (and the Context's own module) call `Context(`: every door's
    settings come from one builder (they were built in seven places)."""
    pattern = re.compile(r"\bContext\(")
    builders = {Path("nodes/settings.py"), Path("nodes/context.py")}
    found = sorted(str(path.relative_to(REPO)) for folder in ("graph", "run", "cli", "web",
                                                               "nodes", "evals", "store")
                   for path in (REPO / folder).rglob("*.py")
                   if path.relative_to(REPO) not in builders
                   and pattern.search(path.read_text(encoding="utf-8").split('"""', 2)[-1]))
    assert found == []


def test_a_graph_run_without_settings_is_refused():
    import pytest

    from raer.nodes.context import Context, SettingsError

    with pytest.raises(SettingsError, match="no run settings"):
        Context.coerce(None)


def test_the_server_settings_are_the_contexts_own_fields():
    """The client's five judging options were declared twice (type, default, description)
    and could drift; now ServerSettings is made from Context's fields."""
    import dataclasses

    from raer.nodes.context import Context
    from raer.nodes.server_settings import CLIENT_FIELDS, ServerSettings

    context = {f.name: f for f in dataclasses.fields(Context)}
    for f in dataclasses.fields(ServerSettings):
        if f.name == "profile":
            continue
        assert f.default == context[f.name].default
        assert f.metadata["description"] == context[f.name].metadata["description"]
    assert [f.name for f in dataclasses.fields(ServerSettings)] == list(CLIENT_FIELDS)
