"""Calls per second over a `raer judge` run: where a run leaves the provider's slots idle.

Judges the scaling workload (benchmarks/run.py's synthetic pairs, mock at 1 s latency) through
the CLI and prints, from the store's llm_calls rows, how many calls finished in each 5-second
window, and the mock's mean number of calls in flight. A steady run sits near
`--concurrency` calls a second; a start-up ramp, waves or one worker judging alone at the end
show as dips.

Run: python -m benchmarks.timeline [--queries 300] [--workers 2] [--concurrency 128]
(This is how the fixed-shard imbalance was seen: 6,000 pairs, 2 workers, ~60 calls/s for
the last ~25 s while one worker judged alone.)
"""

from __future__ import annotations

import argparse
import collections
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from benchmarks.run import _mock_stats, _serving, make_workload, start_mock


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--window", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="raer-timeline-") as temp:
        folder = Path(temp)
        pairs = make_workload(folder, args.queries, 20, args.queries * 15)
        (folder / "pairs.jsonl").write_text("".join(p.model_dump_json() + "\n" for p in pairs))
        mock, url = start_mock(1.0, 0.0)
        try:
            before, started = _mock_stats(mock, url), time.time()
            subprocess.run([str(Path(sys.executable).parent / "raer"), "judge",
                            str(folder / "pairs.jsonl"), "--db", str(folder / "t.db"), "--json",
                            "--base-url", url, "--model", "gpt-4o-mini", "--vision-model",
                            "gpt-4o-mini", "--concurrency", str(args.concurrency),
                            "--query-concurrency", str(args.concurrency), "--workers",
                            str(args.workers)],
                           env={**os.environ, "OPENAI_API_KEY": "bench"},
                           stdout=subprocess.DEVNULL, check=True)
            wall = time.time() - started
            serving = _serving(before, _mock_stats(mock, url))
        finally:
            mock.kill()
        with sqlite3.connect(folder / "t.db") as db:
            moments = [datetime.fromisoformat(row[0]).timestamp() - started
                       for row in db.execute("select created_at from llm_calls")]
    windows = collections.Counter(int(m // args.window) for m in moments)
    print(f"{len(pairs)} pairs, {args.workers} workers: wall {wall:.1f} s, mean in flight "
          f"{serving['mean_in_flight']} of {args.concurrency}; first call recorded at "
          f"{min(moments):.1f} s, last at {max(moments):.1f} s")
    print(f"calls/s per {args.window:g} s:",
          [round(windows[i] / args.window) for i in range(max(windows) + 1)])


if __name__ == "__main__":
    main()
