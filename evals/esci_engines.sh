#!/usr/bin/env bash
# Meta-evaluation on ESCI-US test (../shared/data/esci-us, read in place): five rankers
# (BM25, dense, hybrid, random, BM25 reversed) over each query's labelled candidates, nDCG@10
# under people's labels and under each label source, with τ, τ_AP, per-query correlation and
# agreement of significance decisions. Adds the offline model's run from `make esci`'s store
# when there is one (evals/out/esci.db).
set -euo pipefail
cd "$(dirname "$0")/.."
raer=.venv/bin/raer
data=../shared/data/esci-us/pairs.jsonl
out=evals/out
mkdir -p "$out"
db="$out/esci-engines.db"
runs=()
if [ -f "$out/esci.db" ] && [ -f "$out/judge.json" ]; then
  cp "$out/esci.db" "$db"
  runs+=(--run "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' \
    "$out/judge.json")")
else
  rm -f "$db" "$db-wal" "$db-shm"
  $raer labels import esci-sample "$data" --db "$db" --source esci-us > /dev/null
fi
for kind in majority lexical; do
  runs+=(--run "$($raer baseline "$kind" --db "$db" --source esci-us --fit-split dev \
    --split test | python3 -c 'import json,sys; print(json.load(sys.stdin)["run_id"])')")
done
COLUMNS=200 $raer meta-eval --db "$db" --source esci-us --split test "${runs[@]}" \
  | tee "$out/esci-engines.md"
