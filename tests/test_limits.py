"""Money and provider limits: dry runs, budgets, rate limits, retrying failed pairs."""

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from raer.cli import main
from raer.nodes.context import Context
from raer.nodes.models.rate_limits import rate_limit
from raer.store import open_store
from tests.conftest import judgment, write_jsonl
from tests.fake_openai import FakeOpenAI

MODEL = ["--base-url", "http://fake.invalid/v1", "--model", "gpt-4o"]


def pairs_file(tmp_path, queries=2, products=3):
    return write_jsonl(tmp_path / "pairs.jsonl", [
        {"query": f"query {q}", "language": "en", "product_id": f"p{q}-{i}",
         "title": f"Product {i}", "description": "x" * 400}
        for q in range(queries) for i in range(products)])


def test_dry_run_counts_the_calls_and_writes_nothing(standard_answers, tmp_path):
    db = tmp_path / "d.db"
    result = CliRunner().invoke(main, ["judge", str(pairs_file(tmp_path)), "--db", str(db),
                                       "--dry-run", "--json", *MODEL])
    estimate = json.loads(result.stdout)
    assert {r["node"]: r["calls"] for r in estimate["by_node"]} == {
        "extract_requirements": 2, "draft_guidelines": 2, "judge_pair": 6}
    assert estimate["cost_usd"] > 0 and not db.exists()
    assert standard_answers.requests == []
    CliRunner().invoke(main, ["judge", str(pairs_file(tmp_path)), "--db", str(db), *MODEL])
    again = json.loads(CliRunner().invoke(main, ["judge", str(pairs_file(tmp_path)), "--db",
                                                 str(db), "--dry-run", "--json",
                                                 *MODEL]).stdout)
    assert again["calls"] == 0 and again["pairs_to_judge"] == 0


def test_max_cost_stops_cleanly_and_a_larger_budget_finishes(standard_answers, tmp_path):
    db = str(tmp_path / "b.db")
    args = ["judge", str(pairs_file(tmp_path, queries=3)), "--db", db, "--json",
            "--query-concurrency", "1", "--concurrency", "1", *MODEL]
    stopped = CliRunner().invoke(main, [*args, "--max-cost", "0.015"])
    assert stopped.exit_code == 3, stopped.output
    summary = json.loads(stopped.stdout)
    assert summary["statuses"]["pending"] > 0 and summary["statuses"]["failed"] == 0
    assert summary["run_totals"]["cost_usd"] <= 0.015
    done_before = summary["statuses"]["done"]
    finished = json.loads(CliRunner().invoke(main, [*args, "--max-cost", "5"]).stdout)
    assert finished["statuses"] == {"done": 9, "escalated": 0, "failed": 0, "pending": 0}
    assert finished["model_calls_this_invocation"] < 3 * 2 + 9  # done pairs were not redone
    assert done_before > 0


def test_retry_failed_redoes_only_the_failed_pairs(fake_model, tmp_path):
    from tests.conftest import guidelines, requirements

    fake_model.respond("Requirements", lambda m: requirements(("other", "x", "must", False)))
    fake_model.respond("Guidelines", lambda m: guidelines())
    fake_model.respond("Judgment", lambda m: "broken" if "Product 1" in m[1].content
                       else judgment())
    db = str(tmp_path / "r.db")
    first = CliRunner().invoke(main, ["judge", str(pairs_file(tmp_path)), "--db", db, "--json",
                                      *MODEL])
    run_id = json.loads(first.stdout)["run_id"]
    assert json.loads(first.stdout)["statuses"]["failed"] == 2
    fake_model.respond("Judgment", lambda m: judgment())
    judged_before = len(fake_model.calls("Judgment"))
    retried = CliRunner().invoke(main, ["retry-failed", run_id, "--db", db])
    assert retried.exit_code == 0, retried.output
    assert json.loads(retried.stdout)["retried"] == 2
    assert len(fake_model.calls("Judgment")) == judged_before + 2
    status = json.loads(CliRunner().invoke(main, ["status", run_id, "--db", db]).stdout)
    assert status == {"run_id": run_id, "pending": 0, "done": 6, "escalated": 0, "failed": 0}


async def test_requests_per_minute_are_enforced_per_endpoint():
    settings = Context(requests_per_minute=2)
    await rate_limit("http://a/v1", settings, 10)
    await rate_limit("http://a/v1", settings, 10)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(rate_limit("http://a/v1", settings, 10), timeout=0.5)
    await asyncio.wait_for(rate_limit("http://b/v1", settings, 10), timeout=0.5)


def test_429_with_retry_after_is_retried_by_the_client(tmp_path):
    server = FakeOpenAI(fail_first=2, fail_status=429)
    try:
        path = pairs_file(tmp_path, queries=1, products=1)
        result = CliRunner().invoke(main, ["judge", str(path), "--db", str(tmp_path / "x.db"),
                                           "--json", "--base-url", server.base_url, "--model",
                                           "gpt-4o-mini"], env={"OPENAI_API_KEY": "k"})
    finally:
        server.close()
    assert json.loads(result.stdout)["statuses"]["done"] == 1
    assert len(server.requests) == 2 + 3
    assert Path(tmp_path / "x.db").exists() and open_store(tmp_path / "x.db")


class Dripping:
    """A loopback server that sends its headers, then one byte a second: each read is
    quick, the answer never complete."""

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.base_url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.stop = threading.Event()
        self.requests = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        import threading

        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.requests += 1
            threading.Thread(target=self.drip, args=(conn,), daemon=True).start()

    def drip(self, conn) -> None:

        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100000\r\n\r\n{")
            for _ in range(40):  # bounded: 40 s at most
                if self.stop.wait(1.0):
                    return
                try:
                    conn.sendall(b" ")
                except OSError:
                    return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.mark.parametrize("pooled", [False, True], ids=["httpx", "aiohttp"])
async def test_request_timeout_is_an_overall_deadline(pooled):
    """Issue 22: `--request-timeout 5` let calls run 24–32 s against a dripping answer
    (each read arrived in time). Now each request ends by its deadline, body included."""
    import time

    from raer.nodes.context import Context
    from raer.nodes.models.door import make_chat_model, pooled_clients

    server = Dripping()
    settings = Context(base_url=server.base_url, model="m", request_timeout=1.5,
                       max_retries=1)
    try:
        started = time.monotonic()
        with pytest.raises(Exception) as caught:
            if pooled:
                async with pooled_clients():
                    chat, _ = make_chat_model("judge", settings)
                    await chat.ainvoke("hello")
            else:
                chat, _ = make_chat_model("judge", settings)
                await chat.ainvoke("hello")
        took = time.monotonic() - started
    finally:
        server.close()
    named = f"{type(caught.value).__name__} {caught.value}".lower()
    assert "timeout" in named or "timed out" in named
    assert server.requests == 2  # the first try and one retry, each cut at its deadline
    assert took < 1.5 * 2 + 3, took  # two deadlines plus the SDK's short backoff


def test_a_full_disk_stops_the_run_at_once_and_says_so(standard_answers, tmp_path):
    """Issue 22: a full disk ended with exit 3 and a message about --max-cost. SQLite's
    page limit stands in for the disk here (the same SQLITE_FULL error)."""
    db = tmp_path / "full.db"
    pairs = pairs_file(tmp_path, queries=30, products=4)
    store = open_store(db)  # the process's one store for this path: the run uses it too
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages + 40}")
    full = CliRunner().invoke(main, ["judge", str(pairs), "--db", str(db), *MODEL])
    assert full.exit_code == 5, full.output
    assert "disk is full" in full.stderr and "max-cost" not in full.stderr
    calls_when_full = len(standard_answers.requests)
    assert calls_when_full < 30 * 6  # stopped early: not every query went on paying
    store.db.execute("PRAGMA max_page_count = 1073741823")
    again = CliRunner().invoke(main, ["judge", str(pairs), "--db", str(db), "--json", *MODEL])
    assert again.exit_code == 0, again.output
    statuses = json.loads(again.stdout)["statuses"]
    assert statuses["pending"] == 0 and statuses["done"] + statuses["escalated"] == 120


def test_a_disk_running_out_stops_the_run_before_paying_twice(standard_answers, tmp_path,
                                                             monkeypatch):
    """A disk that fills mid-run lost the answers in flight (paid again on the rerun: 3 of
    48 calls with SQLite's own limit above). The run now stops while there is room left for
    them: the rerun pays for nothing twice."""
    import raer.store.store as store_module

    db = tmp_path / "room.db"
    pairs = pairs_file(tmp_path, queries=30, products=4)
    free = {"bytes": 10 * 2**30}
    real_free = store_module.free_bytes

    def shrinking(path):
        if len(standard_answers.requests) >= 40:  # the disk fills after 40 calls
            free["bytes"] = 10 * 2**20
        return free["bytes"]

    monkeypatch.setattr(store_module, "free_bytes", shrinking)
    full = CliRunner().invoke(main, ["judge", str(pairs), "--db", str(db), *MODEL])
    assert full.exit_code == 5, full.output
    assert "MB free on its disk" in full.stderr
    paid_before = len(standard_answers.requests)
    assert 40 <= paid_before < 180
    monkeypatch.setattr(store_module, "free_bytes", real_free)
    again = CliRunner().invoke(main, ["judge", str(pairs), "--db", str(db), "--json", *MODEL])
    assert again.exit_code == 0, again.output
    assert len(standard_answers.requests) == 180  # the minimum: nothing was paid twice
