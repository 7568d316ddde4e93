#!/usr/bin/env bash
# Agreement with real people on the ESCI-US sample (../shared/data/esci-us, read in place):
# majority and lexical baselines on the whole test split, the offline model on a sample of
# test queries (it needs ~3 s a pair on 2 cores), then `raer agree` and `raer report`.
# Usage: evals/esci_us.sh [QUERIES]   (default 4 test queries for the model)
set -euo pipefail
cd "$(dirname "$0")/.."
queries="${1:-4}"
raer=.venv/bin/raer
data=../shared/data/esci-us/pairs.jsonl
out=evals/out
mkdir -p "$out"
db="$out/esci.db"
rm -f "$db" "$db-wal" "$db-shm"
$raer labels import esci-sample "$data" --db "$db" --source esci-us
majority=$($raer baseline majority --db "$db" --source esci-us --fit-split dev --split test \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["run_id"])')
lexical=$($raer baseline lexical --db "$db" --source esci-us --fit-split dev --split test \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["run_id"])')
$raer labels pairs --db "$db" --source esci-us --split test --max-queries "$queries" \
  -o "$out/esci-test-sample.jsonl"
# exit 1 = some pairs failed (recorded with their reason): still measured
$raer judge "$out/esci-test-sample.jsonl" --db "$db" --json > "$out/judge.json" || test $? -eq 1
offline=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' \
  "$out/judge.json")
$raer agree "$majority" "$lexical" "$offline" --db "$db" --source esci-us --split test \
  | tee "$out/agree.md"
# the same three, scored only on the sample of pairs the model judged
$raer agree "$majority" "$lexical" "$offline" --db "$db" --source esci-us --split test \
  --common > "$out/agree-common.md"
$raer report "$majority" "$lexical" "$offline" --db "$db" --source esci-us --split test \
  --common --out "$out/report"
