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


class Served:
    """`langgraph dev` as an operator starts it (`make server`): the store path and the
    model profile come from its environment. `cwd` holds the server's own persistence
    (.langgraph_api), so a restart in the same folder finds its threads again."""

    def __init__(self, tmp_path: Path, cwd: Path | None = None, **env: str):
        self.tmp_path, self.cwd = tmp_path, cwd or REPO
        self.env = {**os.environ, "LANGGRAPH_CLI_NO_ANALYTICS": "1",
                    "LANGGRAPH_NO_VERSION_CHECK": "true", "LANGSMITH_TRACING": "false",
                    "RAER_DB": str(tmp_path / "served.db"),
                    "SERVER_SECRET_KEY": "sk-server-secret-0123456789", **env}
        self.env.pop("RAER_SERVER_CONFIG", None)
        self.proc: subprocess.Popen | None = None
        self.base = ""

    def start(self) -> str:
        port = free_port()
        log = (self.tmp_path / "server.log").open("a")
        langgraph = Path(sys.executable).parent / "langgraph"
        self.proc = subprocess.Popen(
            [str(langgraph), "dev", "--no-browser", "--no-reload", "--config",
             str(REPO / "langgraph.json"), "--host", "127.0.0.1", "--port", str(port),
             "--n-jobs-per-worker", "4"],  # as `make server` starts it
            cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.tmp_path / "server.log").read_text()[-3000:])
            try:
                if httpx.get(f"{self.base}/ok", timeout=2).status_code == 200:
                    return self.base
            except httpx.HTTPError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError("langgraph dev did not answer within 120 s")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=20)
        self.proc = None


def private_home(tmp_path: Path) -> Path:
    """A folder of the test's own for the server's persistence (.langgraph_api): runs left
    running by an earlier test or session are not resumed into this test's store."""
    home = tmp_path / "server-home"
    home.mkdir(exist_ok=True)
    for folder in ("graph", "web"):  # the server reads the graph and http.app from its cwd
        if not (home / folder).exists():
            (home / folder).symlink_to(REPO / folder)
    return home


@pytest.fixture
def server(tmp_path):
    served = Served(tmp_path, cwd=private_home(tmp_path))
    try:
        yield served.start()
    finally:
        served.stop()


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
    # every field a client sends or reads says what it is (issue 24: none did)
    product = schemas["input_schema"]["$defs"]["Product"]["properties"]
    for fields in (schemas["input_schema"]["properties"], product,
                   schemas["output_schema"]["properties"],
                   schemas["context_schema"]["properties"]):
        assert all(f.get("description") for f in fields.values()), fields


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


def _wait_for(server: str, thread: str, run: str) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = httpx.get(f"{server}/threads/{thread}/runs/{run}", timeout=30).json()["status"]
        if status not in ("pending", "running"):
            return status
        time.sleep(0.3)
    raise AssertionError(f"run {run} still {status} after 120 s")


@pytest.mark.parametrize("resend", [True, False], ids=["with-settings", "without-settings"])
def test_an_interactive_review_resumed_over_the_api_lands_once(tmp_path, resend):
    """Issue 10: resumed without the run settings, the review ran on the defaults (queue
    mode) and the person's label was lost. The thread now knows its own run: with or
    without settings, before and after a server restart, the label lands exactly once."""
    from tests.fake_openai import FakeOpenAI

    model = FakeOpenAI()  # the operator's endpoint: answers with confidence 0.9
    home = private_home(tmp_path)
    served = Served(tmp_path, cwd=home, RAER_BASE_URL=model.base_url, RAER_MODEL="fake-4o",
                    RAER_API_KEY_ENV="SERVER_SECRET_KEY")
    settings = {"review_mode": "interactive", "review_below": 0.95}
    try:
        server = served.start()
        thread = httpx.post(f"{server}/threads", json={}, timeout=30).json()["thread_id"]
        run = httpx.post(f"{server}/threads/{thread}/runs", timeout=30, json={
            "assistant_id": "raer", "context": settings,
            "input": {"query": "black jeans", "products": [
                {"product_id": "p1", "title": "Levi's 501 black jeans"}]}}).json()
        assert _wait_for(server, thread, run["run_id"]) in ("interrupted", "success")
        state = httpx.get(f"{server}/threads/{thread}/state", timeout=30).json()
        [paused] = [i for task in state["tasks"] for i in task["interrupts"]]
        assert paused["value"]["product_id"] == "p1"
        served.stop()
        server = served.start()  # the server's own persistence keeps the paused thread
        for label, status in (("acceptable substitute", 200), ("irrelevant", 409)):
            # the second is refused: the thread is no longer paused for a person
            resume = {"assistant_id": "raer", "command": {"resume": {"label": label}}}
            if resend:
                resume["context"] = settings
            again = httpx.post(f"{server}/threads/{thread}/runs", json=resume, timeout=30)
            assert again.status_code == status, again.text
            if status == 200:
                _wait_for(server, thread, again.json()["run_id"])
        # the review page is served by the same server, on the operator's store
        page = httpx.get(f"{server}/review/", timeout=30)
        assert page.status_code == 200 and "raer review" in page.text
        [listed] = httpx.get(f"{server}/review/api/runs", timeout=30).json()["runs"]
        assert listed["resolved"] == 1
    finally:
        served.stop()
        model.close()
    import sqlite3

    with sqlite3.connect(tmp_path / "served.db") as conn:
        reviews = conn.execute("select status, human_label from reviews").fetchall()
        judgments = conn.execute("select status from judgments").fetchall()
    assert reviews == [("resolved", "acceptable substitute")]
    assert judgments == [("escalated",)]
    assert not (home / "raer.db").exists()


def test_the_review_page_resumes_a_paused_thread_through_the_server(tmp_path):
    """The page on the LangGraph server lists interactive threads paused for a person and
    resumes one with the person's label, through the server's own API; the label lands
    once. A forged thread id or label is refused before anything is sent."""
    from tests.fake_openai import FakeOpenAI

    model = FakeOpenAI()
    home = private_home(tmp_path)  # its own persistence: no other test's paused threads
    served = Served(tmp_path, cwd=home, RAER_BASE_URL=model.base_url, RAER_MODEL="fake-4o",
                    RAER_API_KEY_ENV="SERVER_SECRET_KEY")
    try:
        server = served.start()
        thread = httpx.post(f"{server}/threads", json={}, timeout=30).json()["thread_id"]
        run = httpx.post(f"{server}/threads/{thread}/runs", timeout=30, json={
            "assistant_id": "raer", "context": {"review_mode": "interactive",
                                                "review_below": 0.95},
            "input": {"query": "black jeans", "products": [
                {"product_id": "p1", "title": "Levi's 501 black jeans"}]}}).json()
        assert _wait_for(server, thread, run["run_id"]) in ("interrupted", "success")
        [paused] = httpx.get(f"{server}/review/api/paused", timeout=30).json()["items"]
        assert paused["thread_id"] == thread and paused["product_id"] == "p1"
        for forged in ({**paused, "thread_id": "../../runs"}, {**paused, "label": "meh"}):
            refused = httpx.post(f"{server}/review/api/resume", json=forged, timeout=30)
            assert refused.status_code == 422, refused.text
        sent = httpx.post(f"{server}/review/api/resume", timeout=30, json={
            "thread_id": thread, "interrupt_id": paused["interrupt_id"],
            "label": "acceptable substitute", "reviewer": "ana"})
        assert sent.status_code == 200, sent.text
        assert _wait_for(server, thread, sent.json()["run_id"]) == "success"
        assert httpx.get(f"{server}/review/api/paused", timeout=30).json()["items"] == []
    finally:
        served.stop()
        model.close()
    import sqlite3

    with sqlite3.connect(tmp_path / "served.db") as conn:
        assert conn.execute("select status, human_label from reviews").fetchall() == [
            ("resolved", "acceptable substitute")]
