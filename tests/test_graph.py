"""Whole-graph paths with the fake model: record, review, interrupt → resume, caching."""

from dataclasses import replace

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from raer.graph.build import build_graph
from raer.nodes.inputs import Pair
from raer.run.local import judge_pairs
from tests.conftest import guidelines, judgment, product, requirements


def pairs(query="black levis jeans", engines=("A",), n=3, language="en"):
    return [Pair(query=query, language=language, engine=e, rank=i, product_id=f"p{i}",
                 title=f"Levi's jeans {i}", brand="Levi's")
            for e in engines for i in range(1, n + 1)]


def call_counts(store):
    return {r["node"]: r["n"] for r in store.rows(
        "select node, count(*) as n from llm_calls group by node")}


async def test_confident_judgments_are_recorded_without_review(standard_answers, settings,
                                                               store):
    rows = await judge_pairs(pairs(), settings)
    assert [r["status"] for r in rows] == ["done"] * 3
    assert [r["label"] for r in rows] == ["highly relevant"] * 3
    assert store.reviews() == []
    assert call_counts(store) == {"extract_requirements": 1, "draft_guidelines": 1,
                                  "judge_pair": 3}


async def test_low_confidence_goes_to_the_review_queue(standard_answers, settings, store):
    standard_answers.respond("Judgment", lambda m: judgment(confidence=0.2))
    rows = await judge_pairs(pairs(n=2), settings)
    assert {r["status"] for r in rows} == {"escalated"}
    queue = store.reviews()
    assert len(queue) == 2 and "low confidence 0.2 < 0.5" in queue[0]["reasons"]


async def test_ambiguous_brand_goes_to_review(standard_answers, settings, store):
    standard_answers.respond("Requirements", lambda m: requirements(
        ("brand", "On Vacation", "must", True), ("product type", "shirt", "must", False)))
    rows = await judge_pairs(pairs(query="on vacation shirt", n=1), settings)
    assert rows[0]["status"] == "escalated"
    assert "ambiguous brand-or-word term in the query: 'on vacation'" in store.reviews()[0][
        "reasons"]


async def test_interactive_review_pauses_and_resumes_with_a_persons_label(standard_answers,
                                                                          settings, store):
    standard_answers.respond("Judgment", lambda m: judgment(label="irrelevant", confidence=0.1))
    interactive = replace(settings, **{"review_mode": "interactive"})
    graph = build_graph().compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t1"}}
    state = {"query": "black jeans", "language": "en", "products": [product("p1")]}
    await graph.ainvoke(state, config=config, context=interactive)
    snapshot = await graph.aget_state(config)
    [paused] = snapshot.interrupts
    assert paused.value["label"] == "irrelevant" and paused.value["product_id"] == "p1"
    assert store.rows("select * from judgments") == []  # nothing recorded while paused
    out = await graph.ainvoke(Command(resume={paused.id: "acceptable substitute"}),
                              config=config, context=interactive)
    assert out["judgments"][0]["human_label"] == "acceptable substitute"
    [review] = store.rows("select status, human_label, reviewer from reviews")
    assert review == {"status": "resolved", "human_label": "acceptable substitute",
                      "reviewer": "interactive"}


async def test_judge_pairs_asks_the_reviewer_callback(standard_answers, settings, store):
    standard_answers.respond("Judgment", lambda m: judgment(confidence=0.1))
    interactive = replace(settings, **{"review_mode": "interactive"})
    seen = []

    async def reviewer(item):
        seen.append(item["product_id"])
        return "irrelevant"

    rows = await judge_pairs(pairs(n=2), interactive, reviewer=reviewer)
    assert sorted(seen) == ["p1", "p2"] and {r["status"] for r in rows} == {"escalated"}
    assert {r["human_label"] for r in store.rows("select human_label from reviews")} == {
        "irrelevant"}


async def test_two_engines_share_requirements_guidelines_and_identical_judgments(
        standard_answers, settings, store):
    rows = await judge_pairs(pairs(engines=("A", "B"), n=2), settings)
    assert len(rows) == 4 and len({r["id"] for r in rows}) == 4
    # same product text for both engines: the judge is asked once per product
    assert call_counts(store) == {"extract_requirements": 1, "draft_guidelines": 1,
                                  "judge_pair": 2}


async def test_a_rerun_makes_no_call_and_adds_no_row(standard_answers, settings, store):
    await judge_pairs(pairs(n=3), settings)
    before = {t: store.db[t].count for t in store.db.table_names()}
    requests = len(standard_answers.requests)
    rows = await judge_pairs(pairs(n=3), settings)
    assert len(standard_answers.requests) == requests
    assert {t: store.db[t].count for t in store.db.table_names()} == before
    assert [r["status"] for r in rows] == ["done"] * 3


async def test_an_interrupted_run_continues_where_it_stopped(standard_answers, settings, store):
    await judge_pairs(pairs(n=2), settings)  # the first two pairs were done before a kill
    rows = await judge_pairs(pairs(n=4), settings)
    assert [r["status"] for r in rows] == ["done"] * 4
    assert call_counts(store)["judge_pair"] == 4
    assert store.db["judgments"].count == 4


async def test_a_failing_judge_records_the_pair_as_failed_with_the_reason(fake_model, settings,
                                                                         store):
    fake_model.respond("Requirements", lambda m: requirements(("colour", "black", "must",
                                                               False)))
    fake_model.respond("Guidelines", lambda m: guidelines())
    fake_model.respond("Judgment", lambda m: "this is not JSON")
    rows = await judge_pairs(pairs(n=1), settings)
    assert rows[0]["status"] == "failed" and "invalid output" in rows[0]["error"]
    assert call_counts(store)["judge_pair"] == settings.max_reasks + 1


async def test_failed_requirements_fail_the_querys_pairs_and_are_not_cached(fake_model,
                                                                           settings, store):
    fake_model.queue("Requirements", TimeoutError("slow"))
    rows = await judge_pairs(pairs(n=2), settings)
    assert {r["status"] for r in rows} == {"failed"}
    assert "requirements failed: TimeoutError" in rows[0]["error"]
    assert store.db["requirements"].count == 0


async def test_concurrent_queries_make_each_shared_call_once(standard_answers, settings,
                                                             store, tmp_path):
    from tests.conftest import draw_packshot

    hosted = replace(settings, **{"vision_model": "gpt-4o-mini",
                        "query_concurrency": 4})
    image = str(draw_packshot(tmp_path / "shared.png"))
    many = [Pair(query=q, language="en", engine=e, product_id=f"p{i}", title=f"jeans {i}",
                 image=image) for q in ("jeans", "black jeans") for e in ("A", "B")
            for i in range(4)]
    rows = await judge_pairs(many, hosted)
    assert len(rows) == 16
    counts = call_counts(store)
    assert counts["extract_requirements"] == 2 and counts["draft_guidelines"] == 2
    assert counts["describe_product"] == 1  # one image, many products and queries
    assert counts["judge_pair"] == 8  # 2 queries x 4 products; engines share identical input


def test_graph_compiles_for_the_server_without_a_checkpointer():
    from raer.graph.server_graph import graph

    assert set(graph.get_graph().nodes) >= {"extract_requirements", "draft_guidelines",
                                            "judge_product"}
