"""Scale benchmark: a synthetic workload judged through a mock OpenAI server on loopback.

Default workload: 1,000 queries × 20 products = 20,000 pairs with 15,000 distinct packshots
(small PNGs made on the fly in a temp folder, never committed), mock latency 1 s, 128 calls
in flight. Scenarios:
  clean   one run: wall time against the ideal bound, pairs/s, CPU s per pair, peak RSS,
          calls against the minimum, then a rerun (must make 0 calls)
  faults  the same workload with injected faults (500s, timeouts, dropped connections,
          malformed and truncated JSON): done, failed with reason, lost, duplicated
  kill    `raer judge` killed with SIGKILL half-way, then restarted: duplicates, repeats
  scaling `raer judge` (the path users take) with 1 and 2 local workers and on a two-node
          Ray cluster on loopback addresses (127.0.0.2/127.0.0.3): pairs/s, wall ÷ bound,
          CPU ms per pair, peak RSS summed over every process, calls ÷ minimum, rerun

Run: python -m benchmarks.run [--queries 1000] [--scenario clean faults kill]
A benchmark, not a test: figures depend on the machine; read them as ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image

from raer.nodes.context import Context
from raer.nodes.inputs import Pair
from raer.run.local import judge_pairs


def make_workload(folder: Path, queries: int, products: int, images: int) -> list[Pair]:
    (folder / "img").mkdir(parents=True, exist_ok=True)
    for i in range(images):
        colour = (i % 256, (i // 256) % 256, (i // 65536) % 256)
        Image.new("RGB", (32, 32), colour).save(folder / "img" / f"{i}.png")
    pairs = []
    for q in range(queries):
        for p in range(products):
            n = q * products + p
            pairs.append(Pair(query=f"blue shirt {q}", language="en", engine="bench",
                              rank=p + 1, product_id=f"prod-{n}", title=f"Shirt {n}",
                              brand="Acme", colour="blue", image=str(folder / "img" /
                                                                     f"{n % images}.png")))
    return pairs


def start_mock(latency: float, fault_rate: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.mock_openai", "--latency",
                             str(latency), "--fault-rate", str(fault_rate)],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"mock server did not start: {line!r}")
    return proc, line.removeprefix("listening on ")


def settings_for(db: Path, base_url: str, concurrency: int, timeout: float) -> Context:
    return Context(db_path=str(db), base_url=base_url, model="gpt-4o-mini",
                   vision_model="gpt-4o-mini", max_concurrency=concurrency,
                   query_concurrency=concurrency, request_timeout=timeout, max_retries=4)


def counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        q = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "calls": q("select count(*) from llm_calls"),
            "judgments": q("select count(*) from judgments"),
            "done": q("select count(*) from judgments where status in ('done', 'escalated')"),
            "failed": q("select count(*) from judgments where status = 'failed'"),
            "failed_without_reason": q("select count(*) from judgments where status = "
                                       "'failed' and coalesce(error, '') = ''"),
            "pending": q("select count(*) from judgments where status = 'pending'"),
            "duplicate_rows": q("select count(*) - count(distinct query_id || '|' || engine || "
                                "'|' || product_id) from judgments"),
            "repeated_answers": q("select coalesce(sum(n - 1), 0) from (select count(*) as n "
                                  "from llm_calls where parsed is not null group by cache_key)"),
        }


def run_in_process(pairs: list[Pair], settings: Context) -> dict[str, float]:
    usage0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    asyncio.run(judge_pairs(pairs, settings))
    usage1, wall1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    return {"wall_s": wall1 - wall0, "cpu_s": cpu,
            "peak_rss_mb": usage1.ru_maxrss / 1024}


def clean(args, folder: Path, pairs: list[Pair]) -> dict:
    mock, base_url = start_mock(args.latency, 0.0)
    try:
        db = folder / "clean.db"
        settings = settings_for(db, base_url, args.concurrency, 60)
        first = run_in_process(pairs, settings)
        after_first = counts(db)
        rerun = run_in_process(pairs, settings)
        after_rerun = counts(db)
    finally:
        mock.kill()
    distinct_images = len({p.image for p in pairs})
    minimum = 2 * args.queries + distinct_images + len(pairs)
    bound = max(minimum * args.latency / args.concurrency, 0.0)
    return {
        "pairs": len(pairs), "distinct_images": distinct_images,
        "wall_s": round(first["wall_s"], 1), "ideal_bound_s": round(bound, 1),
        "wall_over_bound": round(first["wall_s"] / bound, 3),
        "pairs_per_s": round(len(pairs) / first["wall_s"], 1),
        "cpu_s_per_pair_ms": round(1000 * first["cpu_s"] / len(pairs), 2),
        "peak_rss_mb": round(first["peak_rss_mb"], 1),
        "calls": after_first["calls"], "minimum_calls": minimum,
        "rerun_calls": after_rerun["calls"] - after_first["calls"],
        "rerun_wall_s": round(rerun["wall_s"], 1),
        "done": after_first["done"], "lost": after_first["pending"],
        "duplicated": after_first["duplicate_rows"],
    }


def faults(args, folder: Path, pairs: list[Pair]) -> dict:
    mock, base_url = start_mock(args.latency, args.fault_rate)
    try:
        db = folder / "faults.db"
        settings = settings_for(db, base_url, args.concurrency, args.latency * 5 + 2)
        timing = run_in_process(pairs, settings)
        result = counts(db)
    finally:
        mock.kill()
    missing = len(pairs) - result["judgments"]
    return {"fault_rate": args.fault_rate, "pairs": len(pairs), "wall_s": round(
        timing["wall_s"], 1), "done": result["done"], "failed_with_reason": result["failed"]
        - result["failed_without_reason"], "lost": result["pending"] + missing
        + result["failed_without_reason"], "duplicated": result["duplicate_rows"]
        + result["repeated_answers"], "calls": result["calls"]}


def kill(args, folder: Path, pairs: list[Pair]) -> dict:
    pairs_file = folder / "pairs.jsonl"
    pairs_file.write_text("".join(p.model_dump_json() + "\n" for p in pairs))
    mock, base_url = start_mock(args.latency, 0.0)
    db = folder / "kill.db"
    raer = str(Path(sys.executable).parent / "raer")
    command = [raer, "judge", str(pairs_file), "--db", str(db), "--json", "--base-url",
               base_url, "--model", "gpt-4o-mini", "--vision-model", "gpt-4o-mini",
               "--concurrency", str(args.concurrency), "--query-concurrency",
               str(args.concurrency)]
    env = {**os.environ, "OPENAI_API_KEY": "bench"}
    try:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline, done = time.monotonic() + 3600, 0
        while done < len(pairs) // 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(1)
            if db.exists():
                try:
                    done = counts(db)["done"]
                except sqlite3.OperationalError:
                    pass
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        at_kill = counts(db)
        restarted = subprocess.run(command, env=env, capture_output=True, text=True)
        final = counts(db)
    finally:
        mock.kill()
    return {"done_at_kill": at_kill["done"], "restart_exit_code": restarted.returncode,
            "done": final["done"], "lost": final["pending"] + len(pairs) - final["judgments"],
            "duplicate_rows": final["duplicate_rows"],
            "repeated_answers": final["repeated_answers"],
            "calls_after_restart": final["calls"] - at_kill["calls"]}


def _tree_stats(markers: tuple[str, ...], root: int | None) -> dict[int, tuple[float, int]]:
    """{pid: (CPU seconds, RSS bytes)} of the live processes of `root`'s tree and those
    whose command line holds a marker (a Ray node's processes are not our children)."""
    tick, page = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    parents: dict[int, int] = {}
    chosen: set[int] = set()
    stats: dict[int, tuple[float, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        stats[pid] = ((int(fields[11]) + int(fields[12])) / tick, int(fields[21]) * page)
        if any(m.encode() in cmdline for m in markers):
            chosen.add(pid)
    if root is not None:
        chosen.add(root)
    if chosen:  # and every descendant (Ray renames its workers "ray::…": no marker left)
        changed = True
        while changed:
            changed = False
            for pid, parent in parents.items():
                if parent in chosen and pid not in chosen:
                    chosen.add(pid)
                    changed = True
    return {p: stats[p] for p in chosen if p in stats}


def _mock_stats(mock: subprocess.Popen, base_url: str) -> dict:
    """The mock server's counters and its own CPU seconds so far."""
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/stats", timeout=10) as r:
        stats = json.loads(r.read())
    fields = (Path("/proc") / str(mock.pid) / "stat").read_text().rpartition(")")[2].split()
    stats["cpu_s"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return stats


def _serving(before: dict, after: dict) -> dict:
    """What the mock saw between two reads: calls served, the mean number in flight (the
    bound assumes the full concurrency all the time), and its CPU seconds."""
    span = after["at"] - before["at"]
    return {"mean_in_flight": round((after["in_flight_seconds"] - before["in_flight_seconds"])
                                    / span, 1) if span > 0 else 0.0,
            "mock_cpu_s": round(after["cpu_s"] - before["cpu_s"], 1)}


def _measured(command: list[str], env: dict, markers: tuple[str, ...] = ()) -> dict:
    """Run a command; wall time, CPU of it and its children (and of the marked processes:
    a Ray node's, which are not our children, as last sampled every 0.5 s), and the peak
    of the summed RSS of all of them."""
    driver: list[int] = []  # the command itself names the cluster: counted as a child

    def marked() -> dict[int, float]:
        return {p: cpu for p, (cpu, _) in _tree_stats(markers, None).items()
                if p not in driver} if markers else {}

    before, last = marked(), {}
    children_0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    driver.append(proc.pid)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, sum(rss for _, rss in _tree_stats(markers, proc.pid).values()))
        last.update(marked())
        time.sleep(0.5)
    last.update(marked())
    out = proc.stdout.read()
    wall = time.perf_counter() - started
    children_1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (children_1.ru_utime - children_0.ru_utime) + (children_1.ru_stime
                                                         - children_0.ru_stime)
    cpu += sum(c - before.get(p, 0.0) for p, c in last.items())
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak / 2**20,
            "exit": proc.returncode, "summary": json.loads(out) if out.strip() else {}}


def _start_ray(env: dict) -> tuple[str, Path]:
    temp = Path(tempfile.mkdtemp(prefix="raer-ray-", dir="/tmp"))  # AF_UNIX paths ≤ 107
    ray = str(Path(sys.executable).parent / "ray")
    with socket.socket() as sock:
        sock.bind(("127.0.0.2", 0))
        port = sock.getsockname()[1]
    common = ["--num-cpus", "1", "--disable-usage-stats"]
    subprocess.run([ray, "start", "--head", "--node-ip-address", "127.0.0.2", "--port",
                    str(port), "--include-dashboard", "false", "--temp-dir", str(temp),
                    *common], env=env, check=True, capture_output=True)
    subprocess.run([ray, "start", "--address", f"127.0.0.2:{port}", "--node-ip-address",
                    "127.0.0.3", *common], env=env, check=True, capture_output=True)
    return f"127.0.0.2:{port}", temp


def _stop_ray(temp: Path) -> None:
    """By PID: `ray stop` would stop every Ray process on the machine."""
    for marker in ("127.0.0.3", str(temp), "127.0.0.2"):
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                try:
                    if marker.encode() in (entry / "cmdline").read_bytes():
                        os.kill(int(entry.name), signal.SIGKILL)
                except (OSError, ProcessLookupError):
                    pass


def scaling(args, folder: Path, pairs: list[Pair]) -> dict:
    pairs_file = folder / "pairs.jsonl"
    pairs_file.write_text("".join(p.model_dump_json() + "\n" for p in pairs))
    distinct_images = len({p.image for p in pairs})
    minimum = 2 * args.queries + distinct_images + len(pairs)
    bound = minimum * args.latency / args.concurrency
    mock, base_url = start_mock(args.latency, 0.0)
    env = {**os.environ, "OPENAI_API_KEY": "bench", "RAY_USAGE_STATS_ENABLED": "0"}
    raer = str(Path(sys.executable).parent / "raer")
    rows = {}
    try:
        for name in args.configs:
            db = folder / f"scaling-{name}.db"
            command = [raer, "judge", str(pairs_file), "--db", str(db), "--json",
                       "--base-url", base_url, "--model", "gpt-4o-mini", "--vision-model",
                       "gpt-4o-mini", "--concurrency", str(args.concurrency),
                       "--query-concurrency", str(args.concurrency)]
            markers: tuple[str, ...] = ()
            temp = None
            if name.startswith("ray"):
                address, temp = _start_ray(env)
                command += ["--ray", address, "--shard-pairs", str(args.shard_pairs)]
                markers = ("127.0.0.2", "127.0.0.3", str(temp))
            else:
                command += ["--workers", name.removeprefix("workers-")]
            try:
                print(f"  {name} …", file=sys.stderr, flush=True)
                served = _mock_stats(mock, base_url)
                first = _measured(command, env, markers)
                serving = _serving(served, _mock_stats(mock, base_url))
                after = counts(db)
                rerun = _measured(command, env, markers)
            finally:
                if temp is not None:
                    _stop_ray(temp)
            rows[name] = {
                "exit": first["exit"], "wall_s": round(first["wall_s"], 1),
                "pairs_per_s": round(len(pairs) / first["wall_s"], 1),
                "wall_over_bound": round(first["wall_s"] / bound, 3),
                "cpu_ms_per_pair": round(1000 * first["cpu_s"] / len(pairs), 2),
                "peak_rss_mb_all_processes": round(first["peak_rss_mb"], 1),
                "calls": after["calls"], "minimum_calls": minimum,
                "calls_over_minimum": round(after["calls"] / minimum, 4),
                "done": after["done"], "lost": after["pending"] + len(pairs)
                - after["judgments"], "duplicated": after["duplicate_rows"],
                "rerun_calls": counts(db)["calls"] - after["calls"],
                "rerun_wall_s": round(rerun["wall_s"], 2), **serving}
            print(json.dumps({name: rows[name]}), file=sys.stderr, flush=True)
    finally:
        mock.kill()
    return {"pairs": len(pairs), "ideal_bound_s": round(bound, 1), "configs": rows}


def table(result: dict) -> str:
    lines = ["| through `raer judge` | pairs/s | wall ÷ bound | CPU ms/pair | peak RSS (all "
             "processes) | calls ÷ minimum | lost / duplicated | rerun calls (s) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in result["configs"].items():
        lines.append(f"| {name} | {r['pairs_per_s']} | {r['wall_over_bound']} | "
                     f"{r['cpu_ms_per_pair']} | {r['peak_rss_mb_all_processes']} MB | "
                     f"{r['calls']} / {r['minimum_calls']} | {r['lost']} / {r['duplicated']} "
                     f"| {r['rerun_calls']} ({r['rerun_wall_s']}) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--products", type=int, default=20)
    parser.add_argument("--images", type=int, default=15000)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--scenario", nargs="+", default=["scaling", "clean", "faults", "kill"],
                        choices=["scaling", "clean", "faults", "kill"])
    parser.add_argument("--configs", nargs="+", default=["workers-1", "workers-2", "ray-2"],
                        help="scaling: workers-N (local processes) and ray-2 (two nodes)")
    parser.add_argument("--shard-pairs", type=int, default=1000)
    parser.add_argument("--out", default="benchmarks/out/results.json")
    args = parser.parse_args()
    results = {"args": vars(args)}
    with tempfile.TemporaryDirectory(prefix="raer-bench-") as tmp:
        folder = Path(tmp)
        pairs = make_workload(folder, args.queries, args.products,
                              min(args.images, args.queries * args.products))
        for scenario in args.scenario:
            print(f"scenario {scenario} …", file=sys.stderr, flush=True)
            results[scenario] = {"clean": clean, "faults": faults, "kill": kill,
                                 "scaling": scaling}[scenario](args, folder, pairs)
            print(json.dumps({scenario: results[scenario]}), flush=True)
        if "scaling" in results:
            print(table(results["scaling"]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
