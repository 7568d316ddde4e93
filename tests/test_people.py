"""People in the loop: interactive reviews never lose a label, the effective label, the
review page's store side, calibration and review samples."""

from dataclasses import replace

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from raer.graph.build import build_graph
from tests.conftest import judgment, product


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
