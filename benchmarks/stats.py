"""Statistics at the size of real label sets: `raer agree` and `raer evaluate` on 100,000
pairs over 10,000 queries with 1,000 bootstrap resamples (target ≤ 10 s each on a 2-core
machine).

A synthetic store is written once (three annotators per pair, a run whose labels agree
with the majority about 60% of the time, three query types), then `raer agree` runs
through the CLI `--repeat` times; the figures are wall seconds per run, read as a range.

Run: python -m benchmarks.stats [--pairs 100000] [--queries 10000] [--repeat 3]
A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from raer.nodes.common import judgment_id
from raer.store import open_store
from raer.store.store import now

LABELS = ["irrelevant", "acceptable substitute", "highly relevant"]


def build(db: Path, pairs: int, queries: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    store = open_store(db)
    store.ensure_run("bench", {"bench": True}, {"judge": "synthetic"}, {})
    per_query = pairs // queries
    query_rows, product_rows, human_rows, judgment_rows = [], [], [], []
    for q in range(queries):
        qid = f"q-{q:06d}"
        query_rows.append({"id": qid, "text": f"query {q}", "normalised": f"query {q}",
                           "language": "en", "query_type": f"type {q % 3}"})
        for p in range(per_query):
            pid = f"p-{q:06d}-{p:03d}"
            product_rows.append({"id": pid, "title": f"product {pid}", "attributes": "{}"})
            truth = int(rng.integers(0, 3))
            for annotator in ("A1", "A2", "A3"):
                code = truth if rng.random() < 0.7 else int(rng.integers(0, 3))
                human_rows.append({"query_id": qid, "product_id": pid, "annotator": annotator,
                                   "label": LABELS[code], "raw_label": str(code), "source":
                                   "bench", "split": "test", "created_at": now()})
            judge = truth if rng.random() < 0.6 else int(rng.integers(0, 3))
            judgment_rows.append({"id": judgment_id("bench", qid, "", pid), "run_id": "bench",
                                  "query_id": qid, "product_id": pid, "engine": "E1",
                                  "rank": p + 1,
                                  "status": "done", "label": LABELS[judge],
                                  "model": "synthetic"})
    with store.db.atomic():
        store.db["queries"].insert_all(query_rows, pk="id")
        store.db["products"].insert_all(product_rows, pk="id", alter=False)
        store.db["human_labels"].insert_all(human_rows)
        store.db["judgments"].insert_all(judgment_rows, pk="id")
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "stats.db"
        build(db, args.pairs, args.queries)
        raer = Path(sys.executable).with_name("raer")
        seconds = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            done = subprocess.run([str(raer), "agree", "bench", "--db", str(db), "--source",
                                   "bench", "--resamples", "1000", "--json"],
                                  capture_output=True, text=True, check=True)
            seconds.append(time.perf_counter() - start)
        overall = json.loads(done.stdout)["results"]["bench"]["overall"]
        evaluate_seconds = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            subprocess.run([str(raer), "evaluate", "bench", "--db", str(db), "--k", "5,10",
                            "--json"], capture_output=True, text=True, check=True)
            evaluate_seconds.append(time.perf_counter() - start)
    print(json.dumps({"pairs": overall["pairs"], "queries": overall["queries"],
                      "groups": 4, "resamples": 1000,
                      "agree_seconds": [round(s, 2) for s in seconds],
                      "evaluate_seconds": [round(s, 2) for s in evaluate_seconds],
                      "agreement": round(overall["agreement"], 4),
                      "agreement_ci": [round(x, 4) for x in overall["agreement_ci"]]}))


if __name__ == "__main__":
    main()
