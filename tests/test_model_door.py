"""nodes/models/door.py with instructor: output modes, the validation context, one row per
attempt with its temperature and mode, seller text verbatim, the offline model's slots and
timeout."""

from __future__ import annotations

import dataclasses

import pytest

from raer.nodes.context import Context
from raer.nodes.models import door
from raer.nodes.models.door import StructuredCallFailed, structured_call, system_user
from raer.nodes.schemas import Judgment
from tests.conftest import judgment, product, requirements
from tests.fake_openai import FakeOpenAI


async def call(store, settings, schema=Judgment, context=None):
    return await structured_call(store=store, settings=settings, run_id="r1", node="judge_pair",
                                 role="judge", schema=schema, context=context,
                                 messages=system_user("sys", "user"), prompt_hash="ph",
                                 cache_key="")


@pytest.mark.parametrize("mode", ["tools", "json", "md_json"])
async def test_other_output_modes_work_and_are_recorded(fake_model, store, settings, mode):
    fake_model.queue("Judgment", judgment(confidence=0.8))
    moded = dataclasses.replace(settings, output_mode=mode)
    result = await call(store, moded)
    assert result.parsed == judgment(confidence=0.8)
    row = store.rows("select output_mode, temperature from llm_calls")[0]
    assert row == {"output_mode": mode, "temperature": 0.0}
    sent = fake_model.kwargs[0]
    assert ("tools" in sent) == (mode == "tools")


async def test_a_judgment_inconsistent_with_its_inputs_is_re_asked(fake_model, store,
                                                                  settings):
    reqs = requirements(("product type", "jeans", "must", False),
                        ("colour", "black", "should", False)).model_dump()["requirements"]
    unmet = Judgment.model_validate({**judgment().model_dump(), "verdicts": [
        {"requirement": "jeans", "verdict": "not met"}]})
    invented = Judgment.model_validate({**judgment().model_dump(), "verdicts": [
        {"requirement": "waterproof", "verdict": "met"}]})
    good = Judgment.model_validate({**judgment().model_dump(), "verdicts": [
        {"requirement": "jeans", "verdict": "met"}, {"requirement": "black", "verdict": "met"}]})
    fake_model.queue("Judgment", unmet, invented, good)
    result = await call(store, settings, context={"requirements": reqs})
    assert result.parsed == good
    rows = store.rows("select attempt, error, temperature from llm_calls order by id")
    assert [r["attempt"] for r in rows] == [1, 2, 3]
    assert "must-requirements are not met: ['jeans']" in rows[0]["error"]
    assert "not extracted: ['waterproof']" in rows[1]["error"]
    assert [r["temperature"] for r in rows] == [0.0, 0.5, 0.5]
    assert "must-requirements are not met" in fake_model.calls("Judgment")[1][-1].content


async def test_seller_text_reaches_the_model_verbatim(fake_model, store, settings):
    """instructor renders messages as Jinja templates when given a validation context; the
    door bypasses that step, so template syntax in seller text is sent as written."""
    fake_model.queue("Judgment", judgment())
    text = "Jeans {{ 7*7 }} {% if x %}{{ config }}{% endif %} {#"
    await structured_call(store=store, settings=settings, run_id="r1", node="judge_pair",
                          role="judge", schema=Judgment, context={"requirements": []},
                          messages=system_user("sys", text), prompt_hash="ph")
    assert fake_model.calls("Judgment")[0][-1].content == text


async def test_auto_mode_falls_back_when_the_endpoint_refuses_json_schema(settings, store):
    server = FakeOpenAI(refuse_json_schema=True)
    try:
        hosted = dataclasses.replace(settings, base_url=server.base_url, model="local-model",
                                     max_retries=0)
        first = await call(store, hosted)
        second = await call(store, hosted)
    finally:
        server.close()
    assert first.parsed.label == second.parsed.label == "highly relevant"
    rows = store.rows("select output_mode, error from llm_calls order by id")
    assert [r["output_mode"] for r in rows] == ["json_schema", "tools", "tools"]
    assert "400" in rows[0]["error"] and rows[1]["error"] is None
    assert len(server.requests) == 3  # detected once, remembered for the endpoint


def judge_state(reqs) -> dict:
    from tests.conftest import guidelines

    return {"run_id": "r", "query_id": "q", "query": "black jeans", "language": "en",
            "requirements": reqs, "guidelines": guidelines().model_dump(),
            "product": product("p1"), "description": None, "image_note": "no image given"}


async def test_a_transport_error_is_recorded_once_and_never_re_asked(fake_model, store,
                                                                    settings):
    fake_model.queue("Judgment", ConnectionResetError("peer reset"))
    with pytest.raises(StructuredCallFailed, match="ConnectionResetError"):
        await call(store, settings)
    assert len(store.rows("select id from llm_calls")) == 1
    assert len(fake_model.requests) == 1


async def test_an_inconsistent_judgment_after_every_re_ask_goes_to_a_person(fake_model,
                                                                           settings, store):
    from types import SimpleNamespace

    from raer.nodes.judge_pair import judge_pair

    reqs = requirements(("product type", "jeans", "must", False)).model_dump()
    invented = Judgment.model_validate({**judgment().model_dump(), "verdicts": [
        {"requirement": "waterproof", "verdict": "met"}]})
    fake_model.respond("Judgment", lambda m: invented)
    out = (await judge_pair(judge_state(reqs), SimpleNamespace(context=settings)))["judge"]
    assert out["judgment"]["label"] == "highly relevant"  # kept, not failed
    assert out["review_reasons"][0].startswith("the judgment is inconsistent with its inputs")
    assert len(fake_model.requests) == settings.max_reasks + 1


async def test_the_offline_model_is_not_held_to_the_consistency_checks(fake_model, tmp_path):
    """Measured: with the checks, 59 of 71 judge attempts of SmolLM2-135M on the demo failed
    them; 'auto' leaves the embedded model's answers unchecked, so its calls do not grow."""
    from types import SimpleNamespace

    from raer.nodes.judge_pair import judge_pair

    offline = Context(db_path=str(tmp_path / "o.db"))
    reqs = requirements(("product type", "jeans", "must", False)).model_dump()
    invented = Judgment.model_validate({**judgment().model_dump(), "verdicts": [
        {"requirement": "waterproof", "verdict": "met"}]})
    fake_model.respond("Judgment", lambda m: invented)
    out = (await judge_pair(judge_state(reqs), SimpleNamespace(context=offline)))["judge"]
    assert out["error"] == "" and len(fake_model.requests) == 1


def test_the_offline_model_is_queued_to_its_slots_not_timed_out():
    """A local model on a busy machine is slow, not down: requests beyond its decoding
    slots wait in raer's queue, and one being decoded gets a long timeout."""
    from raer.nodes.models import offline

    offline_settings = Context(max_concurrency=8, request_timeout=120)
    hosted = Context(base_url="http://127.0.0.1:9/v1", model="m", max_concurrency=8)
    assert door.in_flight_limit(offline_settings.endpoints["judge"], offline_settings) == \
        offline.SLOTS
    assert door.in_flight_limit(hosted.endpoints["judge"], hosted) == 8


def test_an_offline_request_gets_the_long_timeout(monkeypatch):
    from raer.nodes.models import offline

    built = {}
    monkeypatch.setattr(door, "offline_base_url", lambda threads: "http://127.0.0.1:9/v1")
    monkeypatch.setattr(door, "_chat_openai", lambda *args: built.setdefault("args", args))
    door.make_chat_model("judge", Context(request_timeout=120))
    assert built["args"][3] == offline.MIN_TIMEOUT == 600
    built.clear()
    door.make_chat_model("judge", Context(base_url="http://127.0.0.1:9/v1", model="m",
                                          request_timeout=120))
    assert built["args"][3] == 120
