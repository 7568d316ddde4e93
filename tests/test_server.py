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
    port = free_port()
    env = {**os.environ, "LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGGRAPH_NO_VERSION_CHECK": "true",
           "LANGSMITH_TRACING": "false"}
    log = (tmp_path / "server.log").open("w")
    langgraph = Path(sys.executable).parent / "langgraph"
    proc = subprocess.Popen([str(langgraph), "dev", "--no-browser", "--no-reload",
                             "--host", "127.0.0.1", "--port", str(port)],
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
    db = tmp_path / "served.db"
    body = {
        "assistant_id": "raer",
        "input": {"query": "adidas sneaker", "language": "en", "products": [
            {"product_id": "adidas-samba", "title": "adidas Samba OG Sneaker",
             "brand": "adidas", "engine": "api"},
            {"product_id": "nike-af1", "title": "Nike Air Force 1", "brand": "Nike"}]},
        "context": {"db_path": str(db)},
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
        assert conn.execute("select count(*) from judgments").fetchone()[0] == 2
        nodes = {r[0] for r in conn.execute("select node from llm_calls")}
    assert {"extract_requirements", "draft_guidelines", "judge_pair"} <= nodes
    assert json.dumps(out)  # the answer is plain JSON
