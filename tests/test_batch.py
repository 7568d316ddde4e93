"""The Batch API mode against a local fake of the Files and Batches endpoints."""

import pytest

from raer.nodes.context import Context
from raer.nodes.inputs import Pair
from raer.run.local import judge_pairs
from raer.store import open_store
from tests.conftest import draw_packshot
from tests.fake_openai import FakeOpenAI


@pytest.fixture
def batch_server(request):
    server = FakeOpenAI(batch_mode=request.param)
    yield server
    server.close()


def workload(tmp_path, queries=2, products=3):
    image = str(draw_packshot(tmp_path / "a.png"))
    return [Pair(query=f"query {q}", language="en", product_id=f"p{q}-{i}", title=f"Shirt {i}",
                 image=image if i == 0 else "") for q in range(queries) for i in range(products)]


def settings(tmp_path, server):
    return Context(db_path=str(tmp_path / "b.db"), base_url=server.base_url,
                   model="gpt-4o-mini", batch=True, batch_idle_seconds=0.25,
                   batch_poll_seconds=0.05)


@pytest.mark.parametrize("batch_server", ["complete"], indirect=True)
async def test_each_stage_goes_out_as_one_batch_at_half_price(batch_server, tmp_path):
    rows = await judge_pairs(workload(tmp_path), settings(tmp_path, batch_server))
    assert [r["status"] for r in rows] == ["done"] * 6
    assert batch_server.requests == []  # nothing went through plain chat completions
    # 2 requirements, 2 guidelines, 1 packshot, 6 judgments: stages that arrive together
    # share a batch (timing decides how they group; on an idle machine: [2, 2, 5, 2])
    assert sum(batch_server.batch_sizes) == 11 and len(batch_server.batch_sizes) <= 6
    calls = open_store(tmp_path / "b.db").rows("select cost_usd from llm_calls")
    full = (36 * 0.15 + 64 * 0.075 + 20 * 0.60) / 1e6
    assert {round(c["cost_usd"], 12) for c in calls} == {round(full / 2, 12)}


@pytest.mark.parametrize("batch_server", ["partial"], indirect=True)
async def test_server_errors_in_a_batch_are_resubmitted_in_the_next(batch_server, tmp_path):
    rows = await judge_pairs(workload(tmp_path, queries=3, products=1),
                             settings(tmp_path, batch_server))
    assert [r["status"] for r in rows] == ["done"] * 3
    assert len(batch_server.batch_sizes) > 3  # the errored requests went out again
    assert open_store(tmp_path / "b.db").rows(
        "select count(*) as n from llm_calls where error is not null")[0]["n"] == 0


@pytest.mark.parametrize("batch_server", ["expire_once"], indirect=True)
async def test_requests_an_expired_batch_left_undone_are_resubmitted(batch_server, tmp_path):
    rows = await judge_pairs(workload(tmp_path, queries=4, products=1),
                             settings(tmp_path, batch_server))
    assert [r["status"] for r in rows] == ["done"] * 4
    assert any(b["status"] == "expired" for b in batch_server.batches.values())
    assert sum(batch_server.batch_sizes) > 4 + 4 + 4  # the unanswered half went out again


@pytest.mark.parametrize("batch_server", ["fail_all"], indirect=True)
async def test_a_failing_batch_fails_the_pairs_with_the_reason(batch_server, tmp_path):
    rows = await judge_pairs(workload(tmp_path, queries=1, products=2),
                             settings(tmp_path, batch_server))
    assert {r["status"] for r in rows} == {"failed"}
    assert "requirements failed" in rows[0]["error"] and "batch" in rows[0]["error"]
