#!/usr/bin/env bash
# The cheap first stage and the cost–agreement curve on ESCI-US (../shared/data/esci-us,
# read in place): fit on dev only, report on test beside the lexical baseline, then judge a
# sample of test queries pairwise, listwise (N = 5, 10, 20) and through the cascade.
# Usage: evals/esci_cascade.sh [TEST_QUERIES]   (default 2; the offline model takes minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
queries="${1:-2}"
raer=.venv/bin/raer
out=evals/out
mkdir -p "$out"
db="$out/esci-cascade.db"
rm -f "$db" "$db-wal" "$db-shm"
$raer labels import esci-sample ../shared/data/esci-us/pairs.jsonl --db "$db" --source esci-us
for target in 0.6 0.7; do
  $raer cascade fit --db "$db" --source esci-us --fit-split dev --target-agreement "$target" \
    -o "$out/first-stage-$target.json"
  $raer cascade report "$out/first-stage-$target.json" --db "$db" --source esci-us \
    --split test
done | tee "$out/cascade.md"
$raer labels pairs --db "$db" --source esci-us --split test --max-queries "$queries" \
  -o "$out/esci-curve-pairs.jsonl"
$raer curve "$out/esci-curve-pairs.jsonl" --labels-db "$db" --source esci-us \
  --sizes 5,10,20 --first-stage "$out/first-stage-0.6.json" --price-as gpt-4o \
  --work-dir "$out/curve" | tee "$out/curve.md"
