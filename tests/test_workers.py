"""`raer judge --workers 2`: two processes, one store, against a real HTTP server on loopback
with a 5% fault rate; then a worker killed half-way. Asserts 0 lost, 0 duplicated, the
minimum number of valid answers (one per distinct image, two per query, one per pair) and
a rerun that makes no call."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

from tests.fake_openai import FakeOpenAI

QUERIES, PRODUCTS, IMAGES = 24, 10, 30
MINIMUM = 2 * QUERIES + IMAGES + QUERIES * PRODUCTS


def workload(folder: Path) -> Path:
    (folder / "img").mkdir()
    for i in range(IMAGES):
        Image.new("RGB", (24, 24), (i * 8, 255 - i * 8, 90)).save(folder / "img" / f"{i}.png")
    rows = [{"query": f"blue shirt {q}", "language": "en", "engine": "A", "rank": p + 1,
             "product_id": f"prod-{q}-{p}", "title": f"Shirt {q}-{p}",
             "image": f"img/{(q * PRODUCTS + p) % IMAGES}.png"}
            for q in range(QUERIES) for p in range(PRODUCTS)]
    path = folder / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def counts(db: Path) -> dict:
    with sqlite3.connect(db) as conn:
        one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
        return {"judgments": one("select count(*) from judgments"),
                "finished": one("select count(*) from judgments where status in "
                                "('done', 'escalated')"),
                "pending": one("select count(*) from judgments where status = 'pending'"),
                "failed": one("select count(*) from judgments where status = 'failed'"),
                "duplicated": one("select count(*) - count(distinct query_id || engine || "
                                  "product_id) from judgments"),
                "answers": one("select count(*) from llm_calls where parsed is not null"),
                "answered_keys": one("select count(distinct cache_key) from llm_calls "
                                     "where parsed is not null"),
                "calls": one("select count(*) from llm_calls")}


def command(pairs: Path, db: Path, base_url: str) -> list[str]:
    return [str(Path(sys.executable).parent / "raer"), "judge", str(pairs), "--db", str(db),
            "--json", "--workers", "2", "--base-url", base_url, "--model", "gpt-4o-mini",
            "--vision-model", "gpt-4o-mini", "--concurrency", "16", "--query-concurrency",
            "16", "--max-retries", "4"]


def workers_of(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children
            if b"resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes()]


def test_two_workers_with_faults_lose_nothing_and_pay_the_minimum(tmp_path):
    pairs, db = workload(tmp_path), tmp_path / "w.db"
    server = FakeOpenAI(latency=0.02, fail_every=20)  # 5% of requests answer 500
    env = {**os.environ, "OPENAI_API_KEY": "test"}
    try:
        first = subprocess.run(command(pairs, db, server.base_url), env=env,
                               capture_output=True, text=True, timeout=240)
        assert first.returncode == 0, first.stderr[-2000:]
        summary = json.loads(first.stdout)
        assert summary["workers"] == 2
        after = counts(db)
        assert after["finished"] == QUERIES * PRODUCTS and after["pending"] == 0
        assert after["duplicated"] == 0 and after["failed"] == 0
        # one valid answer per distinct call: the minimum, across both processes
        assert after["answers"] == after["answered_keys"] == MINIMUM
        assert len(server.requests) > MINIMUM * 1.04  # the faults happened and were retried
        rerun = subprocess.run(command(pairs, db, server.base_url), env=env,
                               capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0 and json.loads(rerun.stdout)[
            "model_calls_this_invocation"] == 0
    finally:
        server.close()


def test_a_killed_worker_is_restarted_and_nothing_is_lost(tmp_path):
    pairs, db = workload(tmp_path), tmp_path / "k.db"
    server = FakeOpenAI(latency=0.15)
    env = {**os.environ, "OPENAI_API_KEY": "test"}
    try:
        proc = subprocess.Popen(command(pairs, db, server.base_url), env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline, killed = time.monotonic() + 180, None
        while time.monotonic() < deadline and proc.poll() is None and killed is None:
            time.sleep(0.3)
            try:
                done = counts(db)["finished"] if db.exists() else 0
            except sqlite3.OperationalError:
                continue
            workers = workers_of(proc.pid)
            if done >= QUERIES * PRODUCTS // 3 and len(workers) == 2:
                killed = workers[0]
                os.kill(killed, signal.SIGKILL)
        assert killed, "the run finished before a worker could be killed"
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err[-2000:]
        assert json.loads(out)["worker_restarts"] == 1
        final = counts(db)
        assert final["finished"] == QUERIES * PRODUCTS and final["pending"] == 0
        assert final["duplicated"] == 0
        # answers paid twice: at most what the killed worker had in flight (16 calls)
        assert final["answered_keys"] == MINIMUM
        assert final["answers"] - MINIMUM <= 16
    finally:
        server.close()


def test_progress_keeps_a_dead_workers_counts_and_ignores_its_late_messages():
    from raer.run.processes import WorkerProgress

    progress = WorkerProgress(total=100)
    progress.update(0, 111, (10, 0, 1, 2, 20, 500, 0.5))
    progress.update(1, 222, (5, 0, 0, 0, 9, 100, 0.1))
    progress.bank(0)  # worker 0 (pid 111) died; it is restarted as pid 333
    progress.update(0, 333, (3, 0, 0, 0, 4, 50, 0.05))
    progress.update(0, 111, (12, 0, 1, 2, 24, 600, 0.6))  # its last message, read late
    assert (progress.done, progress.failed, progress.calls) == (18, 1, 33)


def test_workers_die_with_a_killed_driver(tmp_path):
    """Issue 22: `--workers` processes outlived a driver killed with SIGKILL and went on
    judging (and paying) indefinitely. Now they end within seconds of it."""
    pairs, db = workload(tmp_path), tmp_path / "d.db"
    server = FakeOpenAI(latency=0.3)
    env = {**os.environ, "OPENAI_API_KEY": "test"}
    try:
        proc = subprocess.Popen(command(pairs, db, server.base_url), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline, workers = time.monotonic() + 120, []
        while time.monotonic() < deadline and proc.poll() is None and len(workers) < 2:
            time.sleep(0.3)
            workers = workers_of(proc.pid)
        assert len(workers) == 2, "the workers never started"
        time.sleep(1.0)  # judging now
        proc.kill()
        proc.wait(timeout=30)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(Path(f"/proc/{w}").exists()
                                                  for w in workers):
            time.sleep(0.2)
        alive = [w for w in workers if Path(f"/proc/{w}").exists()]
        for pid in alive:  # a failed test leaves no orphans behind either
            os.kill(pid, signal.SIGKILL)
        assert alive == []
        settled = len(server.requests)
        time.sleep(1.0)
        assert len(server.requests) == settled  # nobody is calling the model any more
    finally:
        server.close()
