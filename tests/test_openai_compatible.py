"""The real ChatOpenAI path against a fake OpenAI-compatible server on loopback."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from raer.nodes.context import Context
from raer.nodes.inputs import Pair
from raer.run.local import judge_pairs
from raer.store import open_store
from tests.fake_openai import FakeOpenAI


@pytest.fixture
def fake_server():
    servers = []

    def start(**kwargs):
        servers.append(FakeOpenAI(**kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def pairs(n):
    return [Pair(query="black jeans", language="en", product_id=f"p{i}", title=f"Jeans {i}")
            for i in range(n)]


async def test_server_faults_are_retried_and_usage_with_cached_tokens_recorded(fake_server,
                                                                               tmp_path):
    server = fake_server(fail_first=2, fail_status=500)
    settings = Context(db_path=str(tmp_path / "r.db"), base_url=server.base_url,
                       model="gpt-4o-mini", max_retries=3, query_concurrency=1,
                       max_concurrency=1)
    rows = await judge_pairs(pairs(2), settings)
    assert [r["status"] for r in rows] == ["done", "done"]
    assert len(server.requests) == 2 + 4  # two 500s retried inside the client, then 4 calls
    assert server.requests[0]["response_format"]["json_schema"]["name"] == "Requirements"
    calls = open_store(settings.db_path).rows("select * from llm_calls")
    assert len(calls) == 4 and all(c["error"] is None for c in calls)
    assert {(c["input_tokens"], c["output_tokens"], c["cached_tokens"]) for c in calls} == {
        (100, 20, 64)}
    # gpt-4o-mini: 36 fresh input tokens at 0.15, 64 cached at 0.075, 20 out at 0.60 per 1M
    assert calls[0]["cost_usd"] == pytest.approx((36 * 0.15 + 64 * 0.075 + 20 * 0.60) / 1e6)
    # `raer cost` shows the saving actually billed: 64 cached tokens a call at 0.15 − 0.075
    from raer.evals.usage import cost_report

    report = cost_report(open_store(settings.db_path), settings.run_id)
    assert report["cache_saving_usd"] == pytest.approx(4 * 64 * (0.15 - 0.075) / 1e6, abs=1e-6)
    assert report["cached_tokens"] == 4 * 64


async def test_an_endpoint_that_keeps_failing_fails_the_pairs_with_the_reason(fake_server,
                                                                              tmp_path):
    server = fake_server(fail_first=10_000, fail_status=503)
    settings = Context(db_path=str(tmp_path / "r.db"), base_url=server.base_url,
                       model="gpt-4o-mini", max_retries=1)
    rows = await judge_pairs(pairs(2), settings)
    assert [r["status"] for r in rows] == ["failed", "failed"]
    assert "InternalServerError" in rows[0]["error"] or "503" in rows[0]["error"]


@pytest.mark.slow  # kills a real `raer judge` half-way
def test_a_killed_run_continues_without_duplicates_or_repeated_calls(fake_server, tmp_path):
    server = fake_server(latency=0.15)
    pairs_file = tmp_path / "pairs.jsonl"
    pairs_file.write_text("".join(json.dumps(
        {"query": f"query {q}", "language": "en", "product_id": f"p{i}", "title": f"Jeans {i}"}
    ) + "\n" for q in range(4) for i in range(8)))
    db = tmp_path / "kill.db"
    raer = str(Path(sys.executable).parent / "raer")
    args = [raer, "judge", str(pairs_file), "--db", str(db), "--base-url", server.base_url,
            "--model", "gpt-4o-mini", "--json", "--concurrency", "2", "--query-concurrency", "2"]
    env = {**os.environ, "OPENAI_API_KEY": "test"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    done = 0
    while time.monotonic() < deadline and done < 8:
        time.sleep(0.2)
        if db.exists():
            try:
                done = open_store(db).rows("select count(*) as n from judgments "
                                           "where status = 'done'")[0]["n"]
            except Exception:  # the file may be mid-creation
                continue
    assert 8 <= done < 32, "the run should be killed part-way"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    killed = open_store(db).pair_statuses(json.loads(subprocess.run(
        [*args, "--dry-run"], env=env, capture_output=True, text=True).stdout)["run_id"])
    assert sum(killed.values()) == 32 and killed["pending"] > 0  # every pair accounted for

    finished = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    summary = json.loads(finished.stdout)
    assert summary["statuses"] == {"done": 32, "escalated": 0, "failed": 0, "pending": 0}
    store = open_store(db)
    assert store.rows("select count(*) as n from judgments")[0]["n"] == 32
    repeated = store.rows("select cache_key, count(*) as n from llm_calls where parsed is not "
                          "null group by cache_key having n > 1")
    assert repeated == []  # no answer that was already stored was asked for again
    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert json.loads(again.stdout)["model_calls_this_invocation"] == 0


@pytest.mark.parametrize("request_fields", [
    {"extra_body": {"response_format": {"type": "json_schema", "json_schema": {
        "name": "Judgment", "schema": {"type": "object"}, "strict": False}}}},
    {"tools": [{"type": "function", "function": {"name": "Judgment", "parameters": {
        "type": "object"}}}], "tool_choice": {"type": "function",
                                              "function": {"name": "Judgment"}}},
])
async def test_raer_sends_the_same_body_as_langchain_does(fake_server, request_fields):
    """raer's client hands the request fields to the SDK as extra body (skipping its slow
    parameter walk) and uses aiohttp inside a run: the server must see the same JSON."""
    from langchain_openai import ChatOpenAI

    from raer.nodes.models import door

    server = fake_server()
    conversation = [("system", "You judge."), ("human", [
        {"type": "text", "text": "Describe « this » packshot"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}])]
    args = dict(base_url=server.base_url, model="gpt-4o-mini", api_key="k", timeout=10,
                max_retries=0, max_completion_tokens=door.MAX_OUTPUT_TOKENS)
    await ChatOpenAI(**args).ainvoke(conversation, temperature=0.0, **request_fields)
    await door._chat_openai(*list(args.values())[:5]).ainvoke(
        conversation, temperature=0.0, **request_fields)
    async with door.pooled_clients():
        pooled = door._chat_openai(*list(args.values())[:5])
        await pooled.ainvoke(conversation, temperature=0.0, **request_fields)
    assert pooled.http_async_client is not None  # the run's own (aiohttp) client
    assert type(pooled).__name__ == "RaerChatOpenAI"
    assert len(server.requests) == 3
    assert server.requests[1] == server.requests[0]
    assert server.requests[2] == server.requests[0]
    assert server.requests[0]["messages"][1]["content"][1]["image_url"]["url"].startswith(
        "data:image/png")
