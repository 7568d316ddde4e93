"""Repeat: an experiment (a query set × engine configs × judge settings, one YAML or TOML
file) run on a schedule — retrieve, judge (reusing labels), evaluate, compare with the last
run, and say what changed, with an exit code a scheduler or CI job acts on.

One experiment run is: a snapshot per engine (retrieve/snapshot.py), one judging run named
`EXPERIMENT@STAMP` with the experiment's judge settings (a product already judged for the
query with the same content and judge costs no call: the judge's cache is keyed by its
input), an evaluation per engine stored for `raer trend` (tagged with the stamp), and the
comparison with the experiment's previous run.

The comparison is fair to an engine that did not change: both runs' rankings are scored
on one set of grades — every label either run has for the query — so the ideal ranking is
the same on both days (with the judged pool of one day, an engine whose results did not
move can drop because another engine found a relevant product). A query the engine
answered with nothing scores 0. An engine regressed when its measure fell by more than half
its interval (the rule of `raer trend`), and a query regressed when its value fell by more
than `query_drop`; each regressed query is listed with the products that sank it. A change
of judge settings starts over: labels of two judges are not compared.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from raer.evals.engines import (
    Gains,
    Labelled,
    bootstrap_mean,
    effective_labels,
    evaluate_engines,
    offending,
    qrels_of,
    summary,
)
from raer.evals.label_sources import (
    LabelSpec,
    judge_identity,
    labels_of,
    parse_label_spec,
    relabel,
)
from raer.nodes.context import Context
from raer.nodes.inputs import Pair
from raer.nodes.settings import for_pairs_file
from raer.retrieve import snapshot
from raer.retrieve.config import EngineConfigError, explain, load_engines, read_config_file
from raer.retrieve.query_set import read_queries, sample
from raer.store import open_store
from raer.store.ids import query_identity
from raer.store.reviews import carry_decisions

FORBIDDEN_JUDGE_KEYS = ("db_path", "images_root", "run_name", "local_images")


class Experiment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[\w.+-]+$")
    queries: str
    """The query set, relative to this file."""
    sample: int = Field(0, ge=0)
    """Draw this many queries, stratified (0: all)."""
    seed: int = 0
    engines: list[str] = Field(min_length=1)
    """Engine config files, relative to this file."""
    judge: dict[str, Any] = Field(default_factory=dict)
    """`raer judge`'s settings (base_url, model, api_key_env, …); empty: the offline model."""
    labels: str = ""
    """Grade with these labels instead of judging: human:SOURCE[:SPLIT] (people's labels in
    the store, e.g. a Quepid or SRW import) or qrels:FILE (relative to this file). No model
    is called; results without a label are unjudged."""
    k: list[int] = Field(default_factory=lambda: [5, 10], min_length=1)
    measure: str = "nDCG@10"
    gains: str = "2,1,0"
    query_drop: float = Field(0.1, ge=0, le=1)
    """A query regressed when the measure fell by more than this (0: never listed)."""
    fail_on: Literal["any", "measure", "never"] = "any"
    """Exit 1 when an engine's measure regressed or a query did (any), only the measure, or
    never (a failed pair exits 1 whatever this says)."""
    images_root: str = "."
    """The folder local packshots are confined to, relative to this file."""
    update_products: bool = False
    summary: str = ""
    """Also write the Markdown summary here (relative to this file)."""

    @field_validator("judge")
    @classmethod
    def _judge(cls, value: dict[str, Any]) -> dict[str, Any]:
        bad = [k for k in value if k in FORBIDDEN_JUDGE_KEYS]
        if bad:
            raise ValueError(f"{', '.join(bad)}: the store and the packshot folder are the "
                             f"operator's command-line options, not the experiment's")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: str) -> str:
        try:  # the shared reader of label specs, less run: (an experiment judges its own)
            refused = bool(value) and parse_label_spec(value).kind == "run"
        except ValueError:
            refused = True
        if refused:
            raise ValueError(f"{value!r}: labels are human:SOURCE[:SPLIT] or qrels:FILE (a "
                             f"judge is set with judge:)")
        return value

    @field_validator("measure")
    @classmethod
    def _measure(cls, value: str) -> str:
        name, _, k = value.partition("@")
        if name not in ("nDCG", "P", "P+sub", "ERR", "irrelevant", "MRR") or (
                name != "MRR" and not k.isdigit()):
            raise ValueError(f"{value!r} is not a measure raer computes (e.g. nDCG@10, P@5, "
                             f"ERR@10, MRR)")
        return value


@dataclass
class LoadedExperiment:
    config: Experiment
    path: Path

    def at(self, relative: str) -> Path:
        return (self.path.parent / relative).resolve()

    @property
    def ks(self) -> tuple[int, ...]:
        k = self.config.measure.partition("@")[2]
        return tuple(sorted(set(self.config.k) | ({int(k)} if k else set())))


def load_experiment(path: str | Path) -> LoadedExperiment:
    path = Path(path)
    data = read_config_file(path)
    try:
        config = Experiment.model_validate(data)
    except ValidationError as exc:
        error = explain(path, exc)
        raise EngineConfigError(str(error).replace(f"{path}: engine.", f"{path}: ")) from None
    loaded = LoadedExperiment(config, path.resolve())
    if config.judge.get("first_stage"):  # a file beside the experiment, like its queries
        config.judge["first_stage"] = str(loaded.at(str(config.judge["first_stage"])))
    # the first stage's digest is read from its file, never written by hand
    known = {f.name for f in dataclasses.fields(Context)} - set(FORBIDDEN_JUDGE_KEYS) - {
        "first_stage_digest"}
    unknown = sorted(set(config.judge) - known)
    if unknown:
        raise EngineConfigError(f"{path}: judge: unknown setting {', '.join(unknown)} "
                                f"(known: {', '.join(sorted(known))})")
    try:
        Context(**config.judge)
    except (TypeError, ValueError) as exc:
        raise EngineConfigError(f"{path}: judge: {exc}") from None
    return loaded


@dataclass
class EngineOutcome:
    engine: str
    snapshot_id: str
    config_changed: bool
    now: dict[str, float]
    before: dict[str, float] | None
    regressed: bool
    queries: list[dict[str, Any]] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    experiment: str
    stamp: str
    run_id: str
    previous_run: str | None
    judge_changed: bool
    engines: list[EngineOutcome]
    calls: int
    pairs: int
    failed: int
    reviews_carried: int = 0
    """Pairs whose review people already decided in the last run (same judge input)."""
    reviews_open: int = 0
    judge: str = ""
    """What made the labels (a judge's settings, or the label source): a change starts over."""
    exit_code: int = 0

    def regressions(self) -> list[str]:
        return [e.engine for e in self.engines if e.regressed]

    def regressed_queries(self) -> int:
        return sum(len(e.queries) for e in self.engines)


def run_experiment(loaded: LoadedExperiment, db_path: str, *, tag: str = "",
                   operational: dict[str, Any] | None = None,
                   on_progress: Any = None) -> Outcome:
    """One run of the experiment (see the module docstring); raises EngineConfigError,
    InputError or EngineError before anything is written."""
    config = loaded.config
    engines = load_engines([str(loaded.at(e)) for e in config.engines])
    queries = read_queries(loaded.at(config.queries))
    if config.sample:
        queries = sample(queries, config.sample, config.seed)
    gains = Gains.parse(config.gains)
    retrieved = asyncio.run(snapshot.retrieve(engines, queries))
    store = open_store(db_path)
    previous = store.experiment_runs(config.name)
    last = previous[-1] if previous else None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    settings = for_pairs_file(None, db_path=db_path, images_root=str(loaded.at(
        config.images_root)), run_name=f"{config.name}@{stamp}", **config.judge,
        **(operational or {}))
    store.save_experiment(config.name, str(loaded.path), config.model_dump())
    snapshots = snapshot.save(store, retrieved, queries, query_set=str(loaded.at(
        config.queries)), tag=tag or stamp, experiment=config.name,
        update_products=config.update_products, db_path=db_path)
    snapshot_ids = [s["id"] for s in snapshots]
    if config.labels:  # graded by labels the store or a file has: no judging run
        spec = _label_spec(loaded)
        labels = labels_of(store, spec, gains)
        run_id, rows, carried = "", [], 0
        judge = judge_identity(store, str(spec))
        now_items = relabel(snapshot_items(store, snapshot_ids), labels)
    else:
        pairs = [Pair.model_validate(p) for p in snapshot.pairs_of(store, snapshot_ids,
                                                                   queries)]
        from raer.run.local import judge_pairs

        if on_progress:
            on_progress(None, len(pairs), settings.run_id)
        rows = asyncio.run(judge_pairs(pairs, settings, on_progress=(
            lambda p: on_progress(p, len(pairs), settings.run_id)) if on_progress else None))
        run_id = settings.run_id
        judge = judge_identity(store, f"run:{run_id}")
        now_items = effective_labels(store, run_id)
    last_judge = (json.loads(last["outcome"]).get("judge") or judge_identity(
        store, f"run:{last['run_id']}")) if last else ""
    judge_changed = bool(last) and last_judge != judge
    same_judge = bool(last) and not judge_changed
    if not config.labels:
        carried = carry_decisions(store, last["run_id"], run_id) if same_judge else 0
    if not same_judge:
        before_items = []
    elif config.labels:
        before_items = relabel(snapshot_items(store, json.loads(last["snapshots"])), labels)
    else:
        before_items = effective_labels(store, last["run_id"])
    before_run = last["run_id"] if same_judge else None
    outcome = Outcome(config.name, stamp, run_id, (last["run_id"] or last["created_at"])
                      if last else None, judge_changed, [],
                      store.call_counts(run_id)["calls"] if run_id else 0, len(rows or
                                                                                now_items),
                      sum(r["status"] == "failed" for r in rows), carried,
                      store.review_status_counts(run_id).get("open", 0) if run_id else 0,
                      judge)
    all_queries = [query_identity(q.text, q.language).id for q in queries]
    fair = qrels_of(now_items + before_items, gains)  # one set of grades for both days
    now_results = evaluate_engines(store, run_id, ks=loaded.ks, gains=gains, items=now_items,
                                   qrels=fair) if now_items else {}
    before_results = evaluate_engines(store, before_run or "", ks=loaded.ks, gains=gains,
                                      items=before_items, qrels=fair) if before_items else {}
    old_configs = {s["engine"]: s["config_hash"] for s in store.snapshot_rows(
        experiment=config.name) if last and s["id"] in json.loads(last["snapshots"])}
    k_named = int(config.measure.partition("@")[2] or max(loaded.ks))
    for found, snap in zip(retrieved, snapshots, strict=True):
        name = found.name
        now_values = _per_query(now_results.get(name), config.measure, all_queries)
        before_values = (_per_query(before_results.get(name), config.measure, all_queries)
                         if name in before_results else None)
        now = _interval(now_values)
        before = _interval(before_values) if before_values else None
        regressed = bool(before) and before["mean"] - now["mean"] > (now["high"] - now["low"]) / 2
        engine_outcome = EngineOutcome(name, snap["id"], name in old_configs and old_configs[
            name] != snap["config_hash"], now, before, regressed, empty=found.empty(queries))
        if before_values and config.query_drop > 0:
            texts = {query_identity(q.text, q.language).id: q.text for q in queries}
            mine = [i for i in now_items if i.engine == name]
            theirs = [i for i in before_items if i.engine == name]
            for q in all_queries:
                drop = before_values[q] - now_values[q]
                if drop > config.query_drop + 1e-12:
                    engine_outcome.queries.append({
                        "query_id": q, "query": texts[q], "before": round(before_values[q], 4),
                        "now": round(now_values[q], 4),
                        "offending": offending(mine, q, k_named),
                        **top_k_changes(theirs, mine, q, k_named)})
            engine_outcome.queries.sort(key=lambda r: r["now"] - r["before"])
        outcome.engines.append(engine_outcome)
        if name in now_results:
            store.save_evaluation({
                "run_id": run_id or None, "engine": name, "tag": tag or stamp,
                "options": json.dumps({"k": list(loaded.ks), "gains": gains.__dict__,
                                       "unjudged": "exclude", "ideal": "pool",
                                       "labels": config.labels and str(_label_spec(
                                           loaded)) or f"run:{run_id}",
                                       "experiment": config.name, "snapshot": snap["id"]}),
                "judge": judge, "measures": json.dumps(summary(now_results[name])),
                "coverage": json.dumps(now_results[name].coverage),
                "per_query": json.dumps(now_results[name].per_query)})
    measure_fell = bool(outcome.regressions())
    query_fell = outcome.regressed_queries() > 0
    # exit 1, as `raer judge` does, when a pair failed: the measures miss its label
    outcome.exit_code = int(outcome.failed > 0 or (config.fail_on != "never" and (
        measure_fell or (config.fail_on == "any" and query_fell))))
    text = markdown(outcome, config)
    store.save_experiment_run({
        "experiment": config.name, "run_id": run_id,
        "snapshots": json.dumps([s["id"] for s in snapshots]),
        "outcome": json.dumps(as_dict(outcome)), "exit_code": outcome.exit_code,
        "summary": text})
    if config.summary:
        target = loaded.at(config.summary)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return outcome


def _label_spec(loaded: LoadedExperiment) -> LabelSpec:
    spec = parse_label_spec(loaded.config.labels)
    if spec.kind == "qrels":  # a file named relative to the experiment
        spec = LabelSpec("qrels", str(loaded.at(spec.name)))
    return spec


def snapshot_items(store, snapshot_ids: list[str]) -> list[Labelled]:
    """The snapshots' results as unlabelled engine results (relabel grades them)."""
    items = []
    for snapshot_id in snapshot_ids:
        for r in store.snapshot_pairs(snapshot_id):
            items.append(Labelled("", r["query_id"], r["query"], r["language"] or "",
                                  r["query_type"] or "", r["engine"], r["rank"], r["id"],
                                  r["title"], None, "unjudged: no label", ""))
    return items


def top_k_changes(before: list, now: list, query_id: str, k: int) -> dict[str, list]:
    """What moved in the query's top k: the products that left it (with the label they had)
    and those that entered it — why a query fell when nothing in its new top k is wrong
    (a highly relevant product that is gone is the usual reason)."""
    def top(items):
        ranked = sorted((i for i in items if i.query_id == query_id), key=lambda i: i.rank)
        return {i.product_id: i for i in ranked[:k]}

    old, new = top(before), top(now)

    def row(i):
        return {"rank": i.rank, "product_id": i.product_id, "title": i.title,
                "label": i.label or "unjudged", "judgment_id": i.judgment_id}

    return {"left_top_k": [row(i) for pid, i in old.items() if pid not in new],
            "entered_top_k": [row(i) for pid, i in new.items() if pid not in old]}


def _per_query(result, measure: str, queries: list[str]) -> dict[str, float]:
    """The measure per query of the query set; a query with no result scores 0."""
    values = result.per_query.get(measure, {}) if result else {}
    return {q: float(values.get(q, 0.0)) for q in queries}


def _interval(values: dict[str, float]) -> dict[str, float]:
    mean, low, high = bootstrap_mean(np.array(list(values.values())))
    return {"mean": round(mean, 4), "low": round(low, 4), "high": round(high, 4)}


def k_of(measure: str) -> str:
    return measure.partition("@")[2] or "k"


def as_dict(outcome: Outcome) -> dict[str, Any]:
    from dataclasses import asdict

    return {**asdict(outcome), "regressions": outcome.regressions()}


def markdown(outcome: Outcome, config: Experiment) -> str:
    """The short summary a nightly job posts: what changed, and why."""
    m = config.measure
    lines = [f"# {outcome.experiment} · {outcome.stamp}", ""]
    if config.labels:
        lines.append(f"Graded by {config.labels}: {outcome.pairs} results, no model call "
                     f"(a result without a label is unjudged).")
    else:
        lines.append(f"Judging run `{outcome.run_id}`: {outcome.pairs} pairs, {outcome.calls} "
                     f"model calls (labels already known cost none), {outcome.failed} failed; "
                     f"{outcome.reviews_open} pairs wait for people (`raer review list --run "
                     f"{outcome.run_id}`), {outcome.reviews_carried} settled by last run's "
                     f"decisions.")
    if outcome.previous_run is None:
        lines.append("First run of this experiment: nothing to compare with yet.")
    elif outcome.judge_changed:
        lines.append(f"The judge's settings changed since `{outcome.previous_run}`: labels "
                     f"of two judges are not compared; this run starts a new series.")
    else:
        lines.append(f"Compared with `{outcome.previous_run}` on one set of grades (every "
                     f"label either run has for the query).")
    lines += ["", f"| engine | {m} now | before | change | 95% interval now | status |",
              "|---|---:|---:|---:|---|---|"]
    for e in outcome.engines:
        before = f"{e.before['mean']:.3f}" if e.before else "–"
        change = f"{e.now['mean'] - e.before['mean']:+.3f}" if e.before else "–"
        status = "REGRESSED" if e.regressed else ("queries regressed" if e.queries else "ok")
        if e.config_changed:
            status += " · config changed"
        lines.append(f"| {e.engine} | {e.now['mean']:.3f} | {before} | {change} | "
                     f"[{e.now['low']:.3f}, {e.now['high']:.3f}] | {status} |")
    for e in outcome.engines:
        if e.empty:
            lines += ["", f"{e.engine} returned nothing for {len(e.empty)} queries: "
                      + ", ".join(f"`{q}`" for q in e.empty[:10])]
        if not e.queries:
            continue
        lines += ["", f"## {e.engine}: {len(e.queries)} queries fell by more than "
                  f"{config.query_drop:g} in {m}", ""]
        for q in e.queries[:20]:
            lines.append(f"- `{q['query']}`: {q['before']:.3f} → {q['now']:.3f}")
            for p in q["offending"][:3]:
                lines.append(f"  - rank {p['rank']} {p['product_id']} \"{p['title'][:60]}\": "
                             f"{p['why']} ({p['label']}; `raer show` {p['judgment_id']})")
            for p in q["left_top_k"][:3]:
                lines.append(f"  - left the top {k_of(m)}: {p['product_id']} "
                             f"\"{p['title'][:60]}\" ({p['label']}, was rank {p['rank']})")
            for p in q["entered_top_k"][:3]:
                lines.append(f"  - entered the top {k_of(m)}: {p['product_id']} "
                             f"\"{p['title'][:60]}\" ({p['label']}, rank {p['rank']})")
    if outcome.failed:
        lines += ["", f"{outcome.failed} pairs failed (their reasons: `raer status "
                  f"{outcome.run_id}`; `raer retry-failed {outcome.run_id}` redoes them): the "
                  f"measures above leave them out."]
    fell = bool(outcome.regressions() or outcome.regressed_queries())
    verdict = ("regression" if fell and outcome.exit_code else
               f"regression reported, not failed (fail_on: {config.fail_on})" if fell else
               "pairs failed" if outcome.failed else "nothing regressed")
    return "\n".join(lines + ["", f"Exit {outcome.exit_code}: {verdict}."]) + "\n"
