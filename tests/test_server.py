"""`langgraph dev` serves the graph offline and answers a run over HTTP on loopback."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """The server as an operator starts it: the store path comes from its environment."""
    port = free_port()
    env = {**os.environ, "LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGGRAPH_NO_VERSION_CHECK": "true",
           "LANGSMITH_TRACING": "false", "RAER_DB": str(tmp_path / "served.db"),
           "SERVER_SECRET_KEY": "sk-server-secret-0123456789"}
    env.pop("RAER_SERVER_CONFIG", None)
    log = (tmp_path / "server.log").open("w")
    langgraph = Path(sys.executable).parent / "langgraph"
    proc = subprocess.Popen([str(langgraph), "dev", "--no-browser", "--no-reload",
                             "--host", "127.0.0.1", "--port", str(port),
                             "--n-jobs-per-worker", "4"],  # as `make server` starts it
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError((tmp_path / "server.log").read_text()[-3000:])
            try:
                if httpx.get(f"{base}/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            raise RuntimeError("langgraph dev did not answer within 120 s")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_server_answers_a_run_of_one_query(server, tmp_path):
    db = tmp_path / "served.db"  # the operator's store (RAER_DB), not the client's choice
    body = {
        "assistant_id": "raer",
        "input": {"query": "adidas sneaker", "language": "en", "products": [
            {"product_id": "adidas-samba", "title": "adidas Samba OG Sneaker",
             "brand": "adidas", "engine": "api"},
            {"product_id": "nike-af1", "title": "Nike Air Force 1", "brand": "Nike"}]},
        "context": {"guideline_mode": "specific", "review_below": 0.5},
    }
    response = httpx.post(f"{server}/runs/wait", json=body, timeout=300)
    assert response.status_code == 200, response.text
    out = response.json()
    assert "run_id" in out, out
    assert out["run_id"].startswith("run-")
    assert sorted(j["product_id"] for j in out["judgments"]) == ["adidas-samba", "nike-af1"]
    assert all(j["status"] in {"done", "escalated", "failed"} for j in out["judgments"])
    import sqlite3

    with sqlite3.connect(db) as conn:
        rows = conn.execute("select run_id, query_id, product_id, engine, status from "
                            "judgments").fetchall()
        assert len(rows) == 2, rows
        nodes = {r[0] for r in conn.execute("select node from llm_calls")}
    assert {"extract_requirements", "draft_guidelines", "judge_pair"} <= nodes
    assert json.dumps(out)  # the answer is plain JSON


def test_a_client_cannot_choose_endpoints_keys_store_or_files(server, tmp_path):
    """The attack from issue 8: point the model at your own endpoint, name the variable
    holding a secret, pick the store path. Each is refused with 422 before any call."""
    from tests.fake_openai import FakeOpenAI

    catcher = FakeOpenAI()
    run = {"assistant_id": "raer", "input": {"query": "jeans", "products": [
        {"product_id": "p", "title": "Jeans"}]}}
    try:
        for context in ({"base_url": catcher.base_url, "api_key_env": "SERVER_SECRET_KEY"},
                        {"db_path": str(tmp_path / "evil.db")},
                        {"images_root": "/"},
                        {"judge_base_url": catcher.base_url},
                        {"no_such_setting": 1},
                        {"profile": "not-configured"}):
            response = httpx.post(f"{server}/runs/wait", json={**run, "context": context},
                                  timeout=60)
            assert response.status_code == 422, (context, response.text)
            assert "run settings refused" in response.text
        assistant = httpx.post(f"{server}/assistants", json={
            "graph_id": "raer", "context": {"base_url": catcher.base_url}}, timeout=60)
        assert assistant.status_code == 422
        configurable = httpx.post(f"{server}/runs/wait", json={
            **run, "config": {"configurable": {"api_key_env": "SERVER_SECRET_KEY"}}},
            timeout=60)
        assert configurable.status_code == 422
        # a wrong input shape: refused before the run starts, naming the field
        for bad, named in (({"query": "jeans", "items": []}, "unknown keys ['items']"),
                           ({"query": "jeans", "products": [{"product_id": "p"}]},
                            "products[0].title"),
                           ({"query": "", "products": [{"product_id": "p", "title": "J"}]},
                            "query")):
            response = httpx.post(f"{server}/runs/wait", json={**run, "input": bad},
                                  timeout=60)
            assert response.status_code == 422, (bad, response.text)
            assert "input refused" in response.text and named in response.text
    finally:
        catcher.close()
    assert catcher.requests == []
    assert not (tmp_path / "evil.db").exists()
    assert not (tmp_path / "served.db").exists()  # no run started, nothing written
    [assistant] = httpx.post(f"{server}/assistants/search", json={"graph_id": "raer"},
                             timeout=30).json()
    schemas = httpx.get(f"{server}/assistants/{assistant['assistant_id']}/schemas",
                        timeout=30).json()
    assert set(schemas["context_schema"]["properties"]) == {
        "profile", "guideline_mode", "describe_images", "scale", "review_below", "review_mode"}
    assert schemas["input_schema"]["required"] == ["query", "products"]
    assert "judgments" in schemas["output_schema"]["properties"]


def test_the_server_runs_several_jobs_at_once(server):
    """`langgraph dev` alone starts one background worker: a second run waits for the
    first. `make server` (and this fixture) asks for four; two runs overlap."""
    runs = []
    for query in ("black jeans", "red dress"):
        thread = httpx.post(f"{server}/threads", json={}, timeout=30).json()["thread_id"]
        run = httpx.post(f"{server}/threads/{thread}/runs", timeout=30, json={
            "assistant_id": "raer", "input": {"query": query, "products": [
                {"product_id": "p1", "title": "Levi's 501 jeans"}]}}).json()
        runs.append((thread, run["run_id"]))
    overlapped, deadline = False, time.monotonic() + 300
    while time.monotonic() < deadline:
        statuses = [httpx.get(f"{server}/threads/{t}/runs/{r}", timeout=30).json()["status"]
                    for t, r in runs]
        if statuses == ["running", "running"]:
            overlapped = True
            break
        if all(s in ("success", "error") for s in statuses):
            break
        time.sleep(0.5)
    assert overlapped, statuses
