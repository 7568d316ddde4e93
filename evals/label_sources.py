"""Any labels for any engines: where the grades come from (`--labels`) and whose rankings are
scored (`--engines`), for `raer evaluate`, `compare`, `meta-eval` and `ppi`.

Label sources (`--labels`):
- `run:RUN` — a judged run's effective labels (a resolved review's label, else the judge's),
  or a baseline run's; the default is the evaluated run itself;
- `human:SOURCE[:SPLIT]` — people's labels imported under SOURCE (the majority of the
  annotators of each pair, ties broken by the median rule);
- `qrels:FILE` — a TREC qrels file (`query_id 0 doc_id grade`); grades map onto the scale
  through `--gains` (a grade at or above the highly-relevant gain is highly relevant, at
  or above the substitute gain and above the irrelevant gain a substitute, else irrelevant).

Engines (`--engines FILE…`): TREC run files (`query_id Q0 doc_id rank score tag`, the tag
names the engine) or pairs files (JSONL/CSV/Parquet with `query`, `product_id`, `engine`,
`rank`; their queries are named by raer's query identity, as a label import names them).
A TREC run's query ids are matched as they are: use raer's (`raer export queries`) or a
qrels file with the same ids.

A result with no label in the source is unjudged (`--unjudged` decides: dropped or kept as
irrelevant), as a pair the judge has not judged yet.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

from raer.evals.engines import Gains, Labelled, effective_labels
from raer.nodes.inputs import InputError, read_pairs
from raer.store import Store
from raer.store.ids import query_identity
from raer.store.scale import LABELS

KINDS = ("run", "human", "qrels")


@dataclass(frozen=True)
class LabelSpec:
    kind: str
    name: str
    split: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}" + (f":{self.split}" if self.split else "")


def parse_label_spec(text: str) -> LabelSpec:
    kind, _, rest = text.partition(":")
    if kind not in KINDS or not rest:
        raise ValueError(f"--labels takes run:RUN, human:SOURCE[:SPLIT] or qrels:FILE, not "
                         f"{text!r}")
    if kind == "human":
        name, _, split = rest.partition(":")
        return LabelSpec(kind, name, split)
    return LabelSpec(kind, rest)


def grade_label(grade: float, gains: Gains) -> str:
    if grade >= gains.highly_relevant:
        return LABELS[0]
    if grade >= gains.substitute and grade > gains.irrelevant:
        return LABELS[1]
    return LABELS[2]


def read_qrels(path: str | Path) -> dict[tuple[str, str], float]:
    """A TREC qrels file; a bad line is named by file and line, and nothing is read."""
    grades: dict[tuple[str, str], float] = {}
    problems = []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError([(str(path), None, "(file)", f"unreadable: {exc.strerror}")]) from exc
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 4:
            problems.append((str(path), number, "(line)",
                             "expected 4 fields: query_id iteration doc_id grade"))
            continue
        try:
            grades[(parts[0], parts[2])] = float(parts[3])
        except ValueError:
            problems.append((str(path), number, "grade", f"not a number: {parts[3]!r}"))
    if problems:
        raise InputError(problems)
    if not grades:
        raise InputError([(str(path), None, "(file)", "no judgments in the file")])
    return grades


def labels_of(store: Store, spec: LabelSpec, gains: Gains
              ) -> dict[tuple[str, str], tuple[str, str]]:
    """(query_id, product_id) → (label, where it came from) for a label source."""
    if spec.kind == "human":
        from raer.evals.agreement import majority_vote

        by_pair = store.human_labels_by_pair(spec.name, spec.split)
        if not by_pair:
            raise LookupError(f"no human labels of source {spec.name!r}"
                              + (f" in split {spec.split!r}" if spec.split else ""))
        return {pair: (majority_vote(labels), "people") for pair, labels in by_pair.items()
                if labels and all(v in LABELS for v in labels.values())}
    if spec.kind == "qrels":
        return {pair: (grade_label(g, gains), "qrels") for pair, g in
                read_qrels(spec.name).items()}
    if store.run_row(spec.name) is None:
        raise LookupError(f"no run {spec.name!r} in {store.path}")
    votes: dict[tuple[str, str], Counter] = defaultdict(Counter)
    reviewed: dict[tuple[str, str], str] = {}
    for item in effective_labels(store, spec.name):
        if item.label is None:
            continue
        votes[(item.query_id, item.product_id)][item.label] += 1
        if item.source == "reviewer":
            reviewed[(item.query_id, item.product_id)] = item.label
    if not votes:
        raise LookupError(f"run {spec.name} has no judged pairs")
    return {pair: (reviewed.get(pair) or counter.most_common(1)[0][0],
                   "reviewer" if pair in reviewed else "judge")
            for pair, counter in votes.items()}


def relabel(items: list[Labelled], labels: dict[tuple[str, str], tuple[str, str]]
            ) -> list[Labelled]:
    """The same results with the source's labels; a result it has no label for is
    unjudged."""
    out = []
    for item in items:
        found = labels.get((item.query_id, item.product_id))
        label, source = found if found else (None, "unjudged: no label")
        out.append(replace(item, label=label, source=source))
    return out


def engine_results(store: Store, paths: list[str]) -> list[Labelled]:
    """The rankings in TREC run files or pairs files, as unlabelled results."""
    queries = store.queries_by_id()
    products = store.products_by_id()
    items: list[Labelled] = []
    seen: set[tuple[str, str, str]] = set()
    for path in paths:
        for item in (_trec_run(path, queries, products) if _is_trec(path)
                     else _pairs(path)):
            key = (item.engine, item.query_id, item.product_id)
            if key in seen:
                raise InputError([(path, None, "doc_id", f"{item.product_id!r} is listed "
                                   f"twice for query {item.query_id} by engine "
                                   f"{item.engine!r}")])
            seen.add(key)
            items.append(item)
    if not items:
        raise InputError([(", ".join(paths), None, "(file)", "no results in the files")])
    return items


def _is_trec(path: str) -> bool:
    if Path(path).suffix.lower() in (".jsonl", ".json", ".csv", ".parquet"):
        return False
    first = next((line for line in Path(path).read_text(encoding="utf-8").split("\n")
                  if line.strip()), "")
    return len(first.split()) == 6


def _trec_run(path: str, queries: dict, products: dict) -> list[Labelled]:
    items, problems = [], []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").split("\n"), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 6:
            problems.append((path, number, "(line)",
                             "expected 6 fields: query_id Q0 doc_id rank score tag"))
            continue
        qid, _, pid, rank, score, tag = parts
        try:
            rank_number, _ = int(rank), float(score)
        except ValueError:
            problems.append((path, number, "rank", f"rank and score must be numbers: "
                                                   f"{rank!r}, {score!r}"))
            continue
        query = queries.get(qid, {})
        items.append(Labelled("", qid, query.get("text") or qid, query.get("language") or "",
                              query.get("query_type") or "", tag, rank_number, pid,
                              (products.get(pid) or {}).get("title") or pid, None,
                              "unjudged: no label", ""))
    if problems:
        raise InputError(problems)
    return items


def _pairs(path: str) -> list[Labelled]:
    engine_default = Path(path).stem
    items = []
    for pair in read_pairs(path):
        identity = query_identity(pair.query, pair.language)
        items.append(Labelled("", identity.id, pair.query, identity.language,
                              pair.query_type, pair.engine or engine_default,
                              pair.rank or 0, pair.product_id, pair.title, None,
                              "unjudged: no label", ""))
    return items


def judge_identity(store: Store, source: str) -> str:
    """What made the labels of an evaluation, stored with it so `raer trend` follows one
    judge: a run's judging settings (without its name: the same judge under another run
    name is the same series), or the label source itself."""
    kind, _, name = source.partition(":")
    row = store.run_row(name) if kind == "run" else None
    if row is None:
        return json.dumps({"labels": source})
    settings = {k: v for k, v in json.loads(row["settings"]).items() if k != "run_name"}
    return json.dumps(settings, sort_keys=True)
