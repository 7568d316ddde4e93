"""The LangGraph server against a client that writes settings into a thread's state, and a
browser page on another origin (issue 22, findings 1, 2 and the wrong-interrupt resume).

Each attack ran against a real `langgraph dev` on loopback. Before the fix, a client wrote
`run_settings: {"context": {...}}` into a paused thread's state three ways (a resume
`command` with `update` + `goto`, `POST /threads/{id}/state`, `POST /threads` with
`supersteps`) and the next step sent a secret of its choosing to its own URL, read files
outside any images folder and created a store at its path; a page on another origin read
the review queue (CORS `*` plus Private-Network on every route)."""

import sqlite3

import httpx
import pytest
from PIL import Image

from tests.fake_openai import FakeOpenAI
from tests.test_server import Served, _wait_for, private_home

pytestmark = pytest.mark.server

PAIR = {"query": "black jeans", "products": [{"product_id": "p1",
                                              "title": "Levi's 501 black jeans"}]}


def evil_context(catcher: FakeOpenAI, tmp_path) -> dict:
    """Everything the operator decides, chosen by the attacker."""
    return {"context": {"base_url": catcher.base_url, "model": "gpt-4o",
                        "api_key_env": "SERVER_SECRET_KEY",
                        "db_path": str(tmp_path / "evil.db"), "images_root": "/",
                        "run_name": "operator-run", "review_mode": "queue"}}


def serve(tmp_path, model: FakeOpenAI, **env: str) -> Served:
    return Served(tmp_path, cwd=private_home(tmp_path), RAER_BASE_URL=model.base_url,
                  RAER_MODEL="fake-4o", RAER_API_KEY_ENV="SERVER_SECRET_KEY", **env)


def paused_thread(server: str) -> tuple[str, str]:
    """A thread paused for a person (interactive review), and its interrupt id."""
    thread = httpx.post(f"{server}/threads", json={}, timeout=30).json()["thread_id"]
    run = httpx.post(f"{server}/threads/{thread}/runs", timeout=30, json={
        "assistant_id": "raer", "input": PAIR,
        "context": {"review_mode": "interactive", "review_below": 0.95}}).json()
    assert _wait_for(server, thread, run["run_id"]) in ("interrupted", "success")
    state = httpx.get(f"{server}/threads/{thread}/state", timeout=30).json()
    [paused] = [i for task in state["tasks"] for i in task["interrupts"]]
    return thread, paused["id"]


def test_no_client_writes_a_threads_state_or_settings(tmp_path):
    model, catcher = FakeOpenAI(), FakeOpenAI()
    secret = tmp_path / "private" / "secret.png"
    secret.parent.mkdir()
    Image.new("RGB", (8, 8), (200, 0, 0)).save(secret)
    served = serve(tmp_path, model)
    evil = evil_context(catcher, tmp_path)
    try:
        server = served.start()
        thread, interrupt_id = paused_thread(server)
        before = httpx.get(f"{server}/threads/{thread}/state", timeout=30).json()
        forged_product = {**PAIR["products"][0], "image": str(secret)}
        attacks = [
            # 1. a resume that also writes the state and jumps to a node
            (f"/threads/{thread}/runs", {"assistant_id": "raer", "command": {
                "resume": {interrupt_id: {"label": "irrelevant"}},
                "update": {"run_settings": evil, "product": forged_product},
                "goto": "extract_requirements"}}),
            (f"/threads/{thread}/runs/wait", {"assistant_id": "raer", "command": {
                "update": {"run_settings": evil}, "goto": "draft_guidelines"}}),
            # 2. a state update
            (f"/threads/{thread}/state", {"values": {"run_settings": evil},
                                          "as_node": "extract_requirements"}),
            # 3. a new thread created with its history written by the client
            ("/threads", {"supersteps": [{"updates": [{
                "values": {**PAIR, "run_settings": evil}, "as_node": "extract_requirements"}]}]}),
            # a batch of runs, one with a state-writing command
            ("/runs/batch", [{"assistant_id": "raer", "input": PAIR},
                             {"assistant_id": "raer", "command": {"goto": "record"}}]),
            # the server would post the run's output to the client's address
            ("/runs/wait", {"assistant_id": "raer", "input": PAIR,
                            "webhook": catcher.base_url + "/hook"}),
        ]
        for path, body in attacks:
            refused = httpx.post(f"{server}{path}", json=body, timeout=60)
            assert refused.status_code in (403, 422), (path, refused.status_code, refused.text)
        # a resume naming an interrupt the thread is not paused on, or a non-label answer:
        # refused before the thread changes (it used to end in `error`, the pair unwritten)
        for resume in ({"not-an-interrupt": {"label": "irrelevant"}},
                       {interrupt_id: {"label": "meh"}}):
            refused = httpx.post(f"{server}/threads/{thread}/runs", timeout=30, json={
                "assistant_id": "raer", "command": {"resume": resume}})
            assert refused.status_code == 422, refused.text
        after = httpx.get(f"{server}/threads/{thread}/state", timeout=30).json()
        assert after["values"] == before["values"]
        assert after["checkpoint"] == before["checkpoint"]
        assert [t["name"] for t in after["tasks"]] == [t["name"] for t in before["tasks"]]
        # the person's real answer still lands, once
        sent = httpx.post(f"{server}/threads/{thread}/runs", timeout=30, json={
            "assistant_id": "raer", "command": {"resume": {interrupt_id: {
                "label": "acceptable substitute"}}}})
        assert sent.status_code == 200, sent.text
        assert _wait_for(server, thread, sent.json()["run_id"]) == "success"
        again = httpx.post(f"{server}/threads/{thread}/runs", timeout=30, json={
            "assistant_id": "raer", "command": {"resume": {"label": "irrelevant"}}})
        assert again.status_code == 409, again.text  # nothing is paused any more
    finally:
        served.stop()
        model.close()
        catcher.close()
    assert catcher.requests == []
    assert not (tmp_path / "evil.db").exists()
    with sqlite3.connect(tmp_path / "served.db") as conn:
        assert conn.execute("select status, human_label from reviews").fetchall() == [
            ("resolved", "acceptable substitute")]
        assert conn.execute("select count(*) from runs where id = 'operator-run'"
                            ).fetchone() == (0,)
        assert conn.execute("select count(*) from products where coalesce(image, '') != ''"
                            ).fetchone() == (0,)


def test_state_edits_allowed_by_the_operator_still_never_choose_settings(tmp_path):
    """With state edits on (Studio's edit-and-rerun on a trusted server), a state that
    carries full settings is ignored: the run goes to the operator's model and store."""
    model, catcher = FakeOpenAI(), FakeOpenAI()
    served = serve(tmp_path, model, RAER_ALLOW_STATE_EDITS="1")
    try:
        server = served.start()
        thread = httpx.post(f"{server}/threads", timeout=30, json={
            "metadata": {"graph_id": "raer"}}).json()["thread_id"]
        # the client writes the input and forged settings as if the first node had run
        updated = httpx.post(f"{server}/threads/{thread}/state", timeout=30, json={
            "values": {**PAIR, "run_settings": evil_context(catcher, tmp_path),
                       "language": "en", "run_id": "run-forged", "query_id": "q-forged",
                       "requirements_key": "forged", "requirements": {
                           "reasoning": "", "requirements": [{
                               "kind": "product type", "value": "jeans",
                               "importance": "must", "brand_or_literal": False}]}},
            "as_node": "extract_requirements"})
        assert updated.status_code == 200, updated.text
        run = httpx.post(f"{server}/threads/{thread}/runs", timeout=30,
                         json={"assistant_id": "raer", "input": None})
        assert run.status_code == 200, run.text
        _wait_for(server, thread, run.json()["run_id"])
    finally:
        served.stop()
        model.close()
        catcher.close()
    assert catcher.requests == []
    assert model.requests  # the operator's endpoint answered the continued run
    assert not (tmp_path / "evil.db").exists()


def test_other_origins_and_rebound_host_names_are_refused(tmp_path):
    model = FakeOpenAI()
    served = serve(tmp_path, model, RAER_ALLOWED_ORIGINS="https://studio.example")
    try:
        server = served.start()
        port = server.rsplit(":", 1)[1]
        evil = {"origin": "http://127.0.0.1:9"}  # another local origin
        for method, path in (("POST", "/threads/search"), ("GET", "/review/api/runs"),
                             ("GET", "/assistants/search"), ("POST", "/runs/wait")):
            answer = httpx.request(method, f"{server}{path}", headers=evil, json={},
                                   timeout=30)
            assert answer.status_code == 403, (path, answer.status_code)
            assert not any(h.lower().startswith("access-control-") for h in answer.headers)
        preflight = httpx.options(f"{server}/threads/search", timeout=30, headers={
            **evil, "access-control-request-method": "POST",
            "access-control-request-private-network": "true"})
        assert "access-control-allow-origin" not in preflight.headers
        assert "access-control-allow-private-network" not in preflight.headers
        # a DNS name re-pointed at 127.0.0.1 arrives with its own Host header
        rebound = httpx.get(f"{server}/review/api/runs", timeout=30, headers={
            "host": f"evil.example:{port}", "origin": f"http://evil.example:{port}"})
        assert rebound.status_code == 421
        # same origin, no origin (curl, the SDK) and the operator's named origin: answered
        assert httpx.post(f"{server}/threads/search", json={}, timeout=30,
                          headers={"origin": server}).status_code == 200
        assert httpx.post(f"{server}/threads/search", json={}, timeout=30).status_code == 200
        studio = httpx.options(f"{server}/threads/search", timeout=30, headers={
            "origin": "https://studio.example", "access-control-request-method": "POST"})
        assert studio.headers.get("access-control-allow-origin") in (
            "*", "https://studio.example")
        # bodies past the operator's limit are refused before anything reads them
        huge = httpx.post(f"{server}/threads", timeout=30, content=b"{" + b" " * (33 << 20)
                          + b"}", headers={"content-type": "application/json"})
        assert huge.status_code == 413
    finally:
        served.stop()
        model.close()
