#!/usr/bin/env bash
# Calibrated escalation on ESCI-US: fit on dev, report on test (README "People in the loop").
# Needs `make esci` first (its store holds the labels and the offline model's test sample).
# The lexical and majority baselines predict every split (their confidences fitted on dev);
# the offline model judges a sample of dev queries, then each is calibrated.
# Usage: evals/esci_calibrate.sh [DEV_QUERIES]   (default 4)
set -euo pipefail
cd "$(dirname "$0")/.."
queries="${1:-4}"
raer=.venv/bin/raer
out=evals/out
db="$out/esci.db"
test -f "$db" || { echo "run make esci first" >&2; exit 2; }
run_id() { python3 -c 'import json,sys; print(json.load(sys.stdin)["run_id"])'; }
lexical=$($raer baseline lexical --db "$db" --source esci-us --fit-split dev --split '' | run_id)
majority=$($raer baseline majority --db "$db" --source esci-us --fit-split dev --split '' | run_id)
$raer labels pairs --db "$db" --source esci-us --split dev --max-queries "$queries" \
  -o "$out/esci-dev-sample.jsonl"
$raer judge "$out/esci-dev-sample.jsonl" --db "$db" --json > "$out/judge-dev.json" || test $? -eq 1
offline=$(run_id < "$out/judge-dev.json")
# the test sample was judged by `make esci` with the same settings: the same run
for run in "$lexical" "$majority" "$offline"; do
  for target in "--target-agreement 0.7" "--max-review-share 0.2"; do
    # shellcheck disable=SC2086
    $raer calibrate "$run" --db "$db" --source esci-us --split dev --test-split test $target \
      --plot "$out/calibration-$run.svg" --policy-out "$out/policy-$run.json"
  done
done | tee "$out/calibrate.md"
