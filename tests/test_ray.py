"""`raer judge --ray`: a two-node Ray cluster on loopback addresses (127.0.0.2 head,
127.0.0.3 worker node, one CPU each), judging 200 pairs against a fake OpenAI server with a
5% fault rate; the worker node's processes are killed by PID half-way. Asserts 0 lost,
0 duplicated, the minimum number of answers in the store, answers paid twice bounded by one
shard, and a rerun that makes no call. (`ray stop` would stop every Ray process on the
machine: the fixture stops its own by PID.)"""

import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.fake_openai import FakeOpenAI
from tests.test_workers import counts

pytestmark = pytest.mark.server  # starts servers (here a cluster) on loopback addresses

QUERIES, PRODUCTS, IMAGES, SHARD = 20, 10, 190, 20
MINIMUM = 2 * QUERIES + IMAGES + QUERIES * PRODUCTS
BIN = Path(sys.executable).parent


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def ray_pids(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if marker.encode() in cmdline:
            pids.append(int(entry.name))
    return pids


def judging_on(marker: str) -> bool:
    """Whether the node whose raylet's command line holds `marker` is running a shard now:
    Ray names a worker process after the task it runs (`ray::judge_shard`, `ray::IDLE`
    between tasks), and workers are children of their node's raylet."""
    raylets = {str(pid) for pid in ray_pids(marker)}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            parent = (entry / "stat").read_text().rpartition(")")[2].split()[1]
        except OSError:
            continue
        if cmdline.startswith(b"ray::judge_shard") and parent in raylets:
            return True
    return False


def kill_all(marker: str) -> None:
    for pid in ray_pids(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


KEY = "sk-raer-ray-secret-0123456789abcdef"


@pytest.fixture
def cluster(tmp_path):
    """Started as the README says: token authentication on, the API key in each node's own
    environment (raer never sends it through Ray)."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "OPENAI_API_KEY": KEY,
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    port = free_port("127.0.0.2")
    temp = Path(tempfile.mkdtemp(prefix="raer-ray-", dir="/tmp"))  # AF_UNIX paths ≤ 107
    common = ["--num-cpus", "1", "--disable-usage-stats"]
    try:
        subprocess.run([str(BIN / "ray"), "start", "--head", "--node-ip-address", "127.0.0.2",
                        "--port", str(port), "--include-dashboard", "false", "--temp-dir",
                        str(temp), *common], env=env, check=True, capture_output=True,
                       timeout=120)
        subprocess.run([str(BIN / "ray"), "start", "--address", f"127.0.0.2:{port}",
                        "--node-ip-address", "127.0.0.3", *common], env=env, check=True,
                       capture_output=True, timeout=120)
        yield f"127.0.0.2:{port}", env, temp
    finally:
        kill_all("127.0.0.3")
        kill_all(str(temp))
        kill_all("127.0.0.2")
        shutil.rmtree(temp, ignore_errors=True)


def workload(folder: Path) -> Path:
    (folder / "img").mkdir()
    for i in range(IMAGES):
        Image.new("RGB", (16, 16), (i, 255 - i, 60)).save(folder / "img" / f"{i}.png")
    rows = [{"query": f"red scarf {q}", "language": "en", "engine": "A", "rank": p + 1,
             "product_id": f"s-{q}-{p}", "title": f"Scarf {q}-{p}",
             "image": str(folder / "img" / f"{(q * PRODUCTS + p) % IMAGES}.png")}
            for q in range(QUERIES) for p in range(PRODUCTS)]
    path = folder / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_two_node_cluster_loses_a_node_and_nothing_else(cluster, tmp_path):
    address, env, temp = cluster
    pairs, db = workload(tmp_path), tmp_path / "ray.db"
    server = FakeOpenAI(latency=0.05, fail_every=20)
    command = [str(BIN / "raer"), "judge", str(pairs), "--db", str(db), "--json", "--ray",
               address, "--shard-pairs", str(SHARD), "--base-url", server.base_url,
               "--model", "gpt-4o-mini", "--vision-model", "gpt-4o-mini", "--max-retries", "4",
               "--images-root", str(tmp_path)]
    try:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline, killed = time.monotonic() + 240, []
        while time.monotonic() < deadline and proc.poll() is None and not killed:
            time.sleep(0.2)
            try:
                done = counts(db)["finished"] if db.exists() else 0
            except sqlite3.OperationalError:
                continue
            # two shards merged and the worker node judging one: kill the node mid-shard
            # (between two of its shards there is nothing to run again)
            if done >= 2 * SHARD and judging_on("127.0.0.3"):
                killed = ray_pids("127.0.0.3")
                kill_all("127.0.0.3")
        assert killed, "the run ended before the node could be killed"
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        summary = json.loads(out)
        final = counts(db)
        assert final["finished"] == QUERIES * PRODUCTS and final["pending"] == 0
        assert final["judgments"] == QUERIES * PRODUCTS and final["duplicated"] == 0
        assert final["answers"] == final["answered_keys"] == MINIMUM
        assert summary["ray"]["merged"] == summary["ray"]["shards"]
        assert summary["ray"]["retried"] >= 1 and summary["ray"]["retried_pairs"] >= SHARD
        answered = len(server.requests) - len(server.requests) // 20  # minus the faults
        paid_twice = answered - MINIMUM
        print(json.dumps({"killed_pids": len(killed), "paid_twice": paid_twice,
                          "ray": summary["ray"], "seconds": summary["seconds"]}))
        # bounded by the shard the dead node was judging (its calls: 2 per query + images
        # + pairs of at most two queries sharing images, ~2 × SHARD)
        assert 0 <= paid_twice <= 2 * (4 + 2 * SHARD), paid_twice
        started = time.monotonic()
        rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        assert json.loads(rerun.stdout)["model_calls_this_invocation"] == 0
        assert time.monotonic() - started < 30
        # the key never landed in Ray's files (it logged a runtime env's variables on
        # every node), and a client without the cluster's token is turned away
        leaked = [str(f) for f in temp.rglob("*") if f.is_file() and KEY.encode() in
                  f.read_bytes()]
        assert leaked == []
        intruder = subprocess.run(
            [sys.executable, "-c", "import ray; ray.init(address='" + address + "')"],
            env={**env, "RAY_AUTH_MODE": "disabled", "RAY_AUTH_TOKEN": ""},
            capture_output=True, text=True, timeout=120)
        assert intruder.returncode != 0
        assert "Authentication token is missing or incorrect" in intruder.stderr
    finally:
        server.close()


def test_ray_refuses_unauthenticated_clusters_secrets_in_urls_and_dead_addresses(tmp_path):
    """Each refused before the store exists or anything is sent (exit 2)."""
    pairs, db = workload(tmp_path), tmp_path / "ray.db"
    server = FakeOpenAI()
    closed = free_port("127.0.0.1")  # bound, then released: nothing listens there
    base = [str(BIN / "raer"), "judge", str(pairs), "--db", str(db), "--model", "gpt-4o-mini",
            "--images-root", str(tmp_path)]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "OPENAI_API_KEY": KEY}
    env.pop("RAY_AUTH_MODE", None)
    token = {**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    url = server.base_url
    try:
        for extra, environment, said in (
                (["--ray", f"127.0.0.1:{closed}", "--base-url", url], env,
                 "token authentication"),
                (["--ray", f"127.0.0.1:{closed}", "--base-url",
                  url.replace("http://", "http://user:pass@")], token, "carries credentials"),
                (["--ray", f"127.0.0.1:{closed}", "--base-url", url], token,
                 "nothing answers")):
            started = time.monotonic()
            out = subprocess.run(base + extra, env=environment, capture_output=True, text=True,
                                 timeout=120)
            assert out.returncode == 2, out.stderr[-2000:]
            assert said in out.stderr and KEY not in out.stderr + out.stdout
            assert time.monotonic() - started < 30  # Ray retried a dead address for minutes
            assert not db.exists()
    finally:
        server.close()
    assert server.requests == []


def test_a_killed_driver_leaves_its_finished_shards_to_the_next_one(cluster, tmp_path):
    """Issue 22: killing the driver mid-run paid many calls twice (finished shards lived
    only in the dead driver: 88 of 390 here before the fix) and left shard files in /tmp.
    The driver is paused while tasks finish (their shards pile up unmerged), then killed;
    the rerun merges what they left instead of paying for it again (0 paid twice here)."""
    address, env, _ = cluster
    pairs, db = workload(tmp_path), tmp_path / "ray.db"
    server = FakeOpenAI(latency=0.05)
    command = [str(BIN / "raer"), "judge", str(pairs), "--db", str(db), "--json", "--ray",
               address, "--shard-pairs", str(SHARD), "--base-url", server.base_url,
               "--model", "gpt-4o-mini", "--vision-model", "gpt-4o-mini",
               "--images-root", str(tmp_path)]
    try:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            try:
                if db.exists() and counts(db)["finished"] >= SHARD:
                    break
            except sqlite3.OperationalError:
                continue
        assert proc.poll() is None, "the run ended before the driver could be killed"
        os.kill(proc.pid, signal.SIGSTOP)  # tasks go on; their shards wait for a merge
        time.sleep(8)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
        merged_before = counts(db)["finished"]
        rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        summary = json.loads(rerun.stdout)
        final = counts(db)
        assert final["finished"] == QUERIES * PRODUCTS and final["duplicated"] == 0
        assert final["answers"] == final["answered_keys"] == MINIMUM
        assert summary["ray"]["recovered"] >= 1, (merged_before, summary["ray"])
        paid_twice = len(server.requests) - MINIMUM
        print(json.dumps({"merged_before_kill": merged_before, "paid_twice": paid_twice,
                          "ray": summary["ray"]}))
        # at most the shards running when the driver died (one per CPU: 2)
        assert 0 <= paid_twice <= 2 * (4 + 2 * SHARD), paid_twice
    finally:
        server.close()
    stale = [f for f in Path(tempfile.gettempdir()).glob("raer-shard-*")
             if not Path(f"/proc/{f.name.split('-')[2]}").exists()]
    assert stale == []
    assert not list(Path(tempfile.gettempdir()).glob("raer-merge-*"))
