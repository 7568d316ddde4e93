"""graph/: failure is a route, input is checked before any call, the server serves its schemas."""

from __future__ import annotations

import dataclasses

import pytest

from raer.graph.build import build_graph
from raer.graph.server_graph import graph as server_graph
from raer.nodes.inputs import InputError, Pair
from raer.run.local import judge_pairs
from tests.conftest import draw_packshot, product


def pair(pid: str, query: str = "black jeans", **extra) -> Pair:
    return Pair(query=query, language="en", product_id=pid, title=f"Jeans {pid}", **extra)


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
