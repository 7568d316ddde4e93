"""The model door: validation, bounded re-asks, raw text kept, every attempt recorded."""

import json

import pytest

from raer.nodes.models.door import (
    StructuredCallFailed,
    response_format,
    structured_call,
    system_user,
)
from raer.nodes.schemas import Judgment, Requirements
from tests.conftest import judgment


async def call(store, settings, schema=Judgment):
    return await structured_call(store=store, settings=settings, run_id="r1", node="judge_pair",
                                 role="judge", schema=schema,
                                 messages=system_user("sys", "user"), prompt_hash="ph",
                                 cache_key="ck")


async def test_valid_answer_is_parsed_and_recorded_with_tokens_and_cost(fake_model, store,
                                                                         settings):
    fake_model.queue("Judgment", judgment(confidence=0.8))
    result = await call(store, settings)
    assert result.parsed.label == "highly relevant" and result.parsed.confidence == 0.8
    row = store.rows("select * from llm_calls")[0]
    assert (row["node"], row["model"], row["prompt_hash"], row["error"]) == (
        "judge_pair", "gpt-4o-mini", "ph", None)
    assert row["input_tokens"] > 0 and row["cost_usd"] > 0
    assert json.loads(row["messages"])[0] == {"role": "system", "content": "sys"}


async def test_invalid_output_is_re_asked_with_the_error_then_accepted(fake_model, store,
                                                                        settings):
    fake_model.queue("Judgment", '{"reasoning": "x", "label": "maybe"}', judgment())
    result = await call(store, settings)
    assert result.parsed.label == "highly relevant"
    rows = store.rows("select attempt, error, raw_output from llm_calls order by id")
    assert [r["attempt"] for r in rows] == [1, 2]
    assert rows[0]["error"].startswith("invalid output") and rows[1]["error"] is None
    re_ask = fake_model.calls("Judgment")[1][-1].content
    assert "validation error" in re_ask and "label" in re_ask


async def test_after_the_last_re_ask_the_call_fails_keeping_the_raw_text(fake_model, store,
                                                                          settings):
    fake_model.queue("Judgment", "not json", "still not json", "{broken")
    with pytest.raises(StructuredCallFailed) as failed:
        await call(store, settings)
    assert failed.value.raw == "{broken"
    assert len(store.rows("select id from llm_calls where error is not null")) == 3


async def test_transport_errors_are_recorded_and_not_re_asked(fake_model, store, settings):
    fake_model.queue("Judgment", ConnectionResetError("peer reset"))
    with pytest.raises(StructuredCallFailed, match="ConnectionResetError"):
        await call(store, settings)
    assert len(store.rows("select id from llm_calls")) == 1


async def test_small_model_quirks_are_tolerated(fake_model, store, settings):
    # confidence out of bounds, over-long reasoning, a raw control character, a code fence
    raw = ('```json\n{"reasoning": "' + "a\tb " * 400 + '", "verdicts": [], '
           '"label": "irrelevant", "confidence": 2014, "brand_check": "differs"}\n```')
    fake_model.queue("Judgment", raw)
    result = await call(store, settings)
    assert result.parsed.confidence == 1.0 and len(result.parsed.reasoning) == 400


def test_the_schema_the_model_sees_offers_confidence_as_an_enum_and_caps_text():
    schema = response_format(Judgment)["json_schema"]["schema"]
    assert schema["properties"]["confidence"]["enum"][:3] == [0.0, 0.1, 0.2]
    assert schema["properties"]["reasoning"]["maxLength"] == 400
    assert list(schema["properties"])[:3] == ["reasoning", "verdicts", "label"]
    assert "brand_or_literal" in json.dumps(response_format(Requirements))


async def test_an_answer_already_recorded_under_the_key_is_not_asked_again(fake_model, store,
                                                                          settings):
    # as after a kill between recording the call and writing the artefact row
    fake_model.queue("Judgment", judgment(confidence=0.7))
    first = await call(store, settings)
    again = await call(store, settings)
    assert again.parsed == first.parsed and again.call_id == first.call_id
    assert len(fake_model.requests) == 1


async def test_no_aiohttp_session_is_left_open_after_an_offline_run(tmp_path, monkeypatch):
    """Seen at the end of the offline demo: "Unclosed client session" three times. Its
    clients were made in threads, so concurrent first calls raced to make the run's pooled
    client and the losers were never closed. The embedded model is stood in for by the
    fake OpenAI server on loopback (the race is in raer's client handling, not the model)."""
    import aiohttp

    from raer.nodes.context import Context
    from raer.nodes.inputs import Pair
    from raer.run import judge_pairs
    from tests.fake_openai import FakeOpenAI

    made: list[aiohttp.ClientSession] = []  # every session, kept: none escapes unseen
    init = aiohttp.ClientSession.__init__
    monkeypatch.setattr(aiohttp.ClientSession, "__init__",
                        lambda self, *a, **k: made.append(self) or init(self, *a, **k))
    server = FakeOpenAI(latency=0.05)
    monkeypatch.setattr("raer.nodes.models.door.offline_base_url", lambda threads=2: (
        __import__("time").sleep(0.05) or server.base_url))
    monkeypatch.setattr("raer.run.plan.require_offline_model", lambda settings: None)
    try:
        settings = Context(db_path=str(tmp_path / "o.db"), vision_model="pillow")
        assert settings.endpoints["judge"].offline
        pairs = [Pair(query=f"query {q}", language="en", product_id=f"p{q}-{i}", title="T")
                 for q in range(4) for i in range(3)]
        rows = await judge_pairs(pairs, settings)
        assert len(rows) == 12
    finally:
        server.close()
    assert made and [s for s in made if not s.closed] == []
