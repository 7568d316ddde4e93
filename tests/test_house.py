"""One decision in one place (#7): each test here failed before the decision moved.

Endpoints resolved once and refused when they would lie; run identity free of operational
settings; the estimate reading the nodes' own cache keys; failure as a route; input checked
before any call; instructor at the model door (output modes, validation context, one row per
attempt with its temperature and mode).
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from raer.graph.build import build_graph
from raer.graph.server_graph import graph as server_graph
from raer.nodes.context import Context, SettingsError
from raer.nodes.inputs import InputError, Pair
from raer.nodes.models import door
from raer.nodes.models.door import StructuredCallFailed, structured_call, system_user
from raer.nodes.schemas import Judgment
from raer.run.estimate import estimate
from raer.run.local import group_by_query, judge_pairs
from tests.conftest import REPO, draw_packshot, judgment, product, requirements
from tests.fake_openai import FakeOpenAI


def pair(pid: str, query: str = "black jeans", **extra) -> Pair:
    return Pair(query=query, language="en", product_id=pid, title=f"Jeans {pid}", **extra)


# ------------------------------------------------------------ endpoints and identity

def test_a_model_named_without_an_endpoint_is_refused_not_answered_by_the_offline_model():
    with pytest.raises(SettingsError, match="judge_model 'gpt-4o' has no endpoint"):
        Context(judge_model="gpt-4o")
    with pytest.raises(SettingsError, match="model 'gpt-4o-mini' has no endpoint"):
        Context(model="gpt-4o-mini")
    hosted = Context(base_url="https://api.openai.com/v1", model="gpt-4o-mini",
                     judge_model="gpt-4o")
    assert hosted.endpoints["judge"].model == "gpt-4o"
    assert hosted.endpoints["requirements"].model == "gpt-4o-mini"
    with pytest.raises(SettingsError, match="requirements has an endpoint .* but no model"):
        Context(base_url="https://api.openai.com/v1", judge_model="gpt-4o")
    offline = Context()
    assert offline.endpoints["judge"].offline
    assert offline.endpoints["judge"].model == "SmolLM2-135M-Instruct-Q4_1"
    assert offline.endpoints["vision"].local_analysis


def test_prices_and_key_variable_do_not_change_the_run():
    base = Context(base_url="http://127.0.0.1:9/v1", model="m")
    same = dataclasses.replace(base, prices='{"m": [1, 2, 0]}', api_key_env="MY_KEY",
                               max_concurrency=3, output_mode="tools")
    assert same.run_id == base.run_id
    assert dataclasses.replace(base, temperature=0.3).run_id != base.run_id


def test_the_context_schema_describes_every_setting():
    schema = build_graph().compile().get_context_jsonschema()
    missing = [name for name, spec in schema["properties"].items() if not spec.get("description")]
    assert missing == []


# ------------------------------------------------------------ estimate reuses the nodes' keys

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


# ------------------------------------------------------------ failure is a route

async def test_a_failed_query_describes_no_packshot_and_judges_nothing(fake_model, settings,
                                                                      tmp_path):
    hosted = dataclasses.replace(settings, vision_model="gpt-4o-mini", max_reasks=0)
    fake_model.respond("Requirements", lambda m: "not json")
    images = [str(draw_packshot(tmp_path / f"{i}.png", colour=(i * 40, 0, 0)))
              for i in range(5)]
    rows = await judge_pairs([pair(f"p{i}", image=images[i]) for i in range(5)], hosted)
    assert {r["status"] for r in rows} == {"failed"}
    assert all(r["error"].startswith("requirements failed") for r in rows)
    assert [schema for schema, _ in fake_model.requests] == ["Requirements"]


def test_language_is_detected_once_per_query(monkeypatch):
    seen = []
    monkeypatch.setattr("raer.store.ids.detect_language",
                        lambda text: seen.append(text) or "en")
    monkeypatch.setattr("raer.store.ids._DETECTED", {})
    pairs = [Pair(query="schwarze Jeans", product_id=f"p{i}", title="Jeans") for i in range(5)]
    assert len(group_by_query(pairs)) == 1 and seen == ["schwarze Jeans"]


async def test_each_concurrency_limit_gets_its_own_bound():
    from raer.nodes.models.call_slots import call_slots

    first, second = call_slots(1), call_slots(5)
    assert first is not second and second.limit == 5
    assert call_slots(5) is second


async def test_a_query_call_waits_before_product_calls_and_cancelled_waiters_give_way():
    """Slots go to a query's first calls before queued product calls (they unlock the next
    wave of products), first come first served within a priority; a caller cancelled while
    waiting neither holds nor loses a slot."""
    from raer.nodes.models.call_slots import PRODUCT_CALL, QUERY_CALL, CallSlots

    slots, order = CallSlots(1), []
    gate = asyncio.Event()

    async def call(name, priority):
        async with slots.slot(priority):
            order.append(name)
            if name == "first":
                await gate.wait()

    first = asyncio.create_task(call("first", PRODUCT_CALL))
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(call(name, priority)) for name, priority in (
        ("product 1", PRODUCT_CALL), ("cancelled", QUERY_CALL), ("product 2", PRODUCT_CALL),
        ("query", QUERY_CALL))]
    await asyncio.sleep(0)
    assert slots.in_flight == 1 and slots.waiting == 4
    tasks[1].cancel()
    await asyncio.sleep(0)
    assert slots.waiting == 3
    gate.set()
    await asyncio.gather(first, tasks[0], tasks[2], tasks[3])
    assert order == ["first", "query", "product 1", "product 2"]
    assert slots.in_flight == 0 and slots.waiting == 0


# ------------------------------------------------------------ input checked before any call

@pytest.mark.parametrize("state, named", [
    ({"query": "jeans", "products": [{"product_id": "p1"}]}, "products[0].title"),
    ({"query": "jeans", "products": []}, "products"),
    ({"query": " ", "products": [product("p1")]}, "query"),
    ({"query": "jeans", "products": [{**product("p1"), "colour_code": 3}]},
     "products[0].colour_code"),
])
async def test_a_wrong_input_fails_before_any_call(fake_model, settings, state, named):
    graph = build_graph().compile()
    with pytest.raises(InputError, match=named.replace("[", r"\[").replace("]", r"\]")):
        await graph.ainvoke(state, context=settings)
    assert fake_model.requests == []


def test_the_server_serves_input_and_output_schemas():
    schema = server_graph.get_input_jsonschema()
    product_schema = schema["$defs"]["Product"]
    assert set(product_schema["required"]) == {"product_id", "title"}
    assert schema["required"] == ["query", "products"]
    assert "judgments" in server_graph.get_output_jsonschema()["properties"]


# ------------------------------------------------------------ instructor at the door

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


async def test_a_transport_error_is_recorded_once_and_never_re_asked(fake_model, store,
                                                                    settings):
    fake_model.queue("Judgment", ConnectionResetError("peer reset"))
    with pytest.raises(StructuredCallFailed, match="ConnectionResetError"):
        await call(store, settings)
    assert len(store.rows("select id from llm_calls")) == 1
    assert len(fake_model.requests) == 1


def judge_state(reqs) -> dict:
    from tests.conftest import guidelines

    return {"run_id": "r", "query_id": "q", "query": "black jeans", "language": "en",
            "requirements": reqs, "guidelines": guidelines().model_dump(),
            "product": product("p1"), "description": None, "image_note": "no image given"}


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


async def test_admission_starts_queries_while_slots_need_work_and_pairs_fit():
    """Queries start while the slots have little waiting and the started queries' open pairs
    fit the bound; a finished pair makes room; a query larger than the bound starts alone."""
    from raer.nodes.models.call_slots import CallSlots
    from raer.run.admission import Admission

    slots = CallSlots(4)
    admission = Admission(queries=10, pairs=40, slots=slots)
    first = await admission.start(20)
    second = await admission.start(20)
    third = asyncio.create_task(admission.start(20))
    await asyncio.sleep(0.12)
    assert not third.done() and admission.open_pairs == 40  # 60 would not fit
    for _ in range(20):
        first.finished()
    assert (await asyncio.wait_for(third, 1)).open == 20
    assert admission.open_pairs == 40 and admission.running == 3

    held = [slots.slot() for _ in range(8)]  # 4 in flight, 4 waiting: demand is high
    entered = [asyncio.create_task(h.__aenter__()) for h in held]
    await asyncio.sleep(0)
    assert slots.waiting == 4
    first.done()
    for _ in range(10):
        second.finished()
    fourth = asyncio.create_task(admission.start(1))
    await asyncio.sleep(0.12)
    assert not fourth.done()  # the pairs fit, but calls already wait for every slot
    for task in entered[:4]:
        await task
    for h in held[:4]:
        await h.__aexit__(None, None, None)  # the waiting calls get the slots
    await asyncio.wait_for(fourth, 1)
    for task, h in zip(entered[4:], held[4:], strict=True):
        await task
        await h.__aexit__(None, None, None)

    alone = Admission(queries=10, pairs=5, slots=None)
    big = await alone.start(50)  # larger than the bound: starts, but alone
    small = asyncio.create_task(alone.start(1))
    await asyncio.sleep(0.12)
    assert not small.done()
    big.done()
    await asyncio.wait_for(small, 1)
