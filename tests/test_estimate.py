"""run/estimate.py: a dry run reads the nodes' own cache keys, so it counts what a real run
pays."""

from __future__ import annotations

import dataclasses

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
