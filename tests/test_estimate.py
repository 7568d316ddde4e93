"""run/estimate.py: a dry run reads the nodes' own cache keys, so it counts what a real run
pays."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from raer.nodes.inputs import Pair
from raer.run.estimate import estimate
from raer.run.local import judge_pairs
from tests.conftest import REPO, draw_packshot


def pair(pid: str, query: str = "black jeans", **extra) -> Pair:
    return Pair(query=query, language="en", product_id=pid, title=f"Jeans {pid}", **extra)


async def test_dry_run_counts_calls_a_prompt_edit_makes_necessary(standard_answers, settings,
                                                                 tmp_path):
    hosted = dataclasses.replace(settings, vision_model="gpt-4o-mini")
    image = str(draw_packshot(tmp_path / "a.png"))
    pairs = [pair("p1", image=image)]
    await judge_pairs(pairs, hosted)
    later = [pair("p2", image=image)]  # a new pair of the same query and image
    assert {r["node"]: r["calls"] for r in estimate(later, hosted)["by_node"]} == {
        "judge_pair": 1}
    edited = tmp_path / "prompts"
    edited.mkdir()
    for name in ("draft_guidelines", "describe_product"):
        text = (REPO / "prompts" / f"{name}.md").read_text()
        (edited / f"{name}.md").write_text(text + "\nBe brief.\n")
    changed = dataclasses.replace(hosted, prompt_set=str(edited))
    counted = {r["node"]: r["calls"] for r in estimate(later, changed)["by_node"]}
    assert counted == {"draft_guidelines": 1, "describe_product": 1, "judge_pair": 1}
    standard_answers.requests.clear()
    await judge_pairs(later, changed)  # and the real run pays exactly that
    asked = sorted(schema for schema, _ in standard_answers.requests)
    assert asked == ["Guidelines", "Judgment", "PackshotDescription"]


def test_a_dry_run_is_the_run_engines_plan_written_nowhere(standard_answers, settings,
                                                           tmp_path):
    """`--dry-run` priced its own grouping of the pairs (a sixth prelude); now it prices the
    plan `prepare_run` makes, without writing: a changed product is refused as a run would
    refuse it, and nothing is written to the store."""
    from click.testing import CliRunner

    from raer.cli import main
    from tests.conftest import write_jsonl

    first = write_jsonl(tmp_path / "a.jsonl", [{"query": "jeans", "language": "en",
                                                "product_id": "p1", "title": "Jeans"}])
    db = str(tmp_path / "d.db")
    args = ["--db", db, "--base-url", "http://fake.invalid/v1", "--model", "gpt-4o-mini",
            "--vision-model", "pillow"]
    assert CliRunner().invoke(main, ["judge", str(first), *args]).exit_code == 0
    changed = write_jsonl(tmp_path / "b.jsonl", [{"query": "jeans", "language": "en",
                                                  "product_id": "p1", "title": "Belt"}])
    before = (tmp_path / "d.db").stat().st_mtime_ns
    result = CliRunner().invoke(main, ["judge", str(changed), *args, "--dry-run"])
    assert result.exit_code == 2 and "'p1' is stored with other title" in result.output
    fresh = str(tmp_path / "never.db")
    dry = CliRunner().invoke(main, ["judge", str(first), "--db", fresh, "--dry-run", "--json",
                                    *args[2:]])
    assert dry.exit_code == 0 and not Path(fresh).exists()
    assert (tmp_path / "d.db").stat().st_mtime_ns == before


async def test_the_dry_run_counts_one_judge_call_per_product_two_engines_share(
        standard_answers, settings):
    """Seen on unseen data: 7,474 calls estimated where the run made 3,364 — two engines
    returning one product share the judge's answer, and the estimate counted both."""
    pairs = [Pair(query="black jeans", language="en", product_id=f"p{i}", title=f"Jeans {i}",
                  engine=engine, rank=i + 1) for engine in ("A", "B") for i in range(3)]
    counted = {r["node"]: r["calls"] for r in estimate(pairs, settings)["by_node"]}
    assert counted["judge_pair"] == 3
    await judge_pairs(pairs, settings)
    assert len(standard_answers.calls("Judgment")) == 3
    more = [*pairs, *(Pair(query="black jeans", language="en", product_id=f"p{i}",
                           title=f"Jeans {i}", engine="C", rank=i + 1) for i in range(4))]
    assert {r["node"]: r["calls"] for r in estimate(more, settings)["by_node"]} == {
        "judge_pair": 1}  # only p3 is new: p0–p2 are judged for A and B already
