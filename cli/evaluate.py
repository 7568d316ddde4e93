"""`raer evaluate`, `raer compare`, `raer trend`: search engines measured with a run's labels.

evaluate: measures per engine (overall, per language, per query type) with 95% bootstrap
intervals over queries, label coverage, the worst queries with the products that sink them;
each call stores a snapshot. compare: a candidate engine against a baseline, query by query,
with a permutation test and a paired t-test (Benjamini–Hochberg across measures and
candidates), wins/losses/ties and the smallest effect this many queries can detect. trend:
the snapshots over time; a drop beyond the interval is a regression (exit 1, for CI).
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from typing import NamedTuple

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from raer.cli.options import EXIT_BAD_INPUT, EXIT_FAILED, db_option, json_option, resolve_run
from raer.evals.engines import (
    DEFAULT_K,
    LOWER_IS_BETTER,
    EngineResult,
    Gains,
    Labelled,
    benjamini_hochberg,
    effective_labels,
    evaluate_engines,
    measure_names,
    offending,
    paired_difference,
    summary,
    test_family,
)
from raer.evals.label_sources import (
    LabelSpec,
    engine_results,
    judge_identity,
    labels_of,
    parse_label_spec,
    relabel,
)
from raer.nodes.inputs import InputError
from raer.store import Store, open_store

MAIN = "nDCG@10"


def _ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(sorted({int(k) for k in text.split(",")}))
    except ValueError as exc:
        raise click.BadParameter(f"--k takes integers like 5,10,20, not {text!r}") from exc
    if not ks or min(ks) < 1:
        raise click.BadParameter("--k values must be positive")
    return ks


def _common(func):
    for option in reversed([
        # "latest": the store's most recent judging run; unused with --engines FILE and a
        # --labels source other than a run's
        click.argument("run_id", required=False, default="latest"),
        db_option,
        click.option("--labels", "labels_text", default="",
                     help="Grade with run:RUN, human:SOURCE[:SPLIT] or qrels:FILE instead of "
                          "RUN_ID's own labels."),
        click.option("--engines-from", "engine_files", multiple=True,
                     type=click.Path(exists=True, dir_okay=False),
                     help="Score the rankings in this TREC run or pairs file (repeat) "
                          "instead of RUN_ID's engines."),
        click.option("--ideal", type=click.Choice(["pool", "labels"]), default="pool",
                     show_default=True,
                     help="nDCG's ideal ranking from the labelled results the engines "
                          "returned (the judged pool, as TREC), or from every label the "
                          "source has for the query (fixed across runs)."),
        click.option("--k", "k_text", default=",".join(map(str, DEFAULT_K)), show_default=True,
                     help="Cut-offs for the measures."),
        click.option("--gains", "gains_text", default="2,1,0", show_default=True,
                     help="Grades of highly relevant, acceptable substitute, irrelevant."),
        click.option("--gain", type=click.Choice(["linear", "exponential"]),
                     default="linear", show_default=True,
                     help="nDCG's gain of grade g: g (trec_eval) or 2^g-1 (Elasticsearch "
                          "and OpenSearch _rank_eval, the Search Relevance Workbench)."),
        click.option("--relevant-at", type=click.IntRange(1), default=None,
                     help="P@k and MRR count grades from this one as relevant (default: "
                          "highly relevant's grade; SRW: 1, any grade above 0)."),
        click.option("--unjudged", type=click.Choice(["exclude", "irrelevant"]),
                     default="exclude", show_default=True,
                     help="Failed, pending and 'cannot judge' pairs: dropped from the "
                          "rankings, or kept as irrelevant."),
        json_option]):
        func = option(func)
    return func


def _gains(spec: str | tuple[str, str, int | None]) -> Gains:
    """--gains, --gain and --relevant-at as one Gains."""
    text, gain, relevant_at = (spec, "linear", None) if isinstance(spec, str) else spec
    gains = replace(Gains.parse(text), gain=gain, relevant_at=relevant_at)
    if relevant_at is not None and relevant_at > gains.highly_relevant:
        raise ValueError(f"--relevant-at {relevant_at} is above the highest grade "
                         f"({gains.highly_relevant}): nothing would be relevant")
    return gains


class _Evaluated(NamedTuple):
    store: Store
    run_id: str  # "latest" resolved; "" when files were scored on a non-run label source
    gains: Gains
    items: list[Labelled]  # the results with their labels, read once
    results: dict[str, EngineResult]
    labels: str  # where the grades came from: "run:RUN", "human:SOURCE[:SPLIT]", "qrels:F"
    convention: str


def _evaluate(db_path, run_id, engines, k_text, gains_text, unjudged, labels_text="",
              engine_files=(), ideal="pool") -> _Evaluated:
    store = open_store(db_path)
    try:
        gains = _gains(gains_text)
        spec = parse_label_spec(labels_text) if labels_text else None
        if engine_files:
            items = engine_results(store, list(engine_files))
            if spec is None:  # files graded by the run's labels
                spec = LabelSpec("run", resolve_run(store, run_id))
            run_id = spec.name if spec.kind == "run" else ""
        else:
            run_id = resolve_run(store, run_id)
            items = effective_labels(store, run_id)
        labels = None
        if spec is not None:
            labels = labels_of(store, spec, gains)
            items = relabel(items, labels)
        source = str(spec) if spec else f"run:{run_id}"
        if not any(not i.source.startswith("unjudged") for i in items):
            if run_id and not engine_files and not labels_text:
                raise LookupError(f"nothing in run {run_id} is judged yet: "
                                  f"{unfinished_warning(store, run_id) or 'it has no pairs'}")
            raise LookupError(f"no result of the engines has a label in {source} (are the "
                              f"query and product ids the same?)")
        qrels = None
        if ideal == "labels" and labels is not None:
            asked = {i.query_id for i in items}
            qrels = {pair: gains.of(label) for pair, (label, _) in labels.items()
                     if pair[0] in asked}
        results = evaluate_engines(store, run_id, engines=engines, ks=_ks(k_text),
                                   gains=gains, unjudged=unjudged, items=items, qrels=qrels)
    except (ValueError, LookupError) as exc:
        click.echo(f"bad input: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except InputError as exc:
        click.echo(f"bad input:\n{exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    unfinished = unfinished_warning(store, run_id) if run_id and not labels_text else ""
    if unfinished:
        click.echo(f"warning: {unfinished}", err=True)
    return _Evaluated(store, run_id, gains, items, results, source,
                      convention(unjudged, ideal, source, gains))


CONVENTIONS = {
    "exclude": "unjudged pairs (failed, pending, cannot judge) dropped from the rankings "
               "(condensed lists, as trec_eval -J)",
    "irrelevant": "unjudged pairs (failed, pending, cannot judge) kept as irrelevant (as "
                  "trec_eval without -J)",
}
IDEALS = {
    "pool": "ideal from the judged pool (the labelled results of every engine evaluated, "
            "as TREC)",
    "labels": "ideal from every label the source has for the query (fixed across runs)",
}


def convention(unjudged: str, ideal: str, source: str, gains: Gains | None = None) -> str:
    """The conventions a table's numbers follow, said under it."""
    gains = gains or Gains()
    gain = ("nDCG gain 2^g-1 (exponential, as Elasticsearch/OpenSearch _rank_eval)"
            if gains.gain == "exponential" else "nDCG gain g (linear, as trec_eval)")
    return (f"labels {source}; {CONVENTIONS[unjudged]}; {IDEALS[ideal]}; {gain}; P and MRR "
            f"count grade >= {gains.relevant} as relevant")


def unfinished_warning(store: Store, run_id: str) -> str:
    """A sentence when RUN_ID is unfinished: its scores leave out what is not judged yet."""
    counts = store.pair_statuses(run_id)
    pending, failed = counts.get("pending", 0), counts.get("failed", 0)
    if not pending and not failed:
        return ""
    return (f"run {run_id} is unfinished: {pending} pairs pending, {failed} failed; its "
            f"measures cover only what is judged (finish it with the same `raer judge` "
            f"command, or `raer retry-failed {run_id}`)")


@click.command()
@_common
@click.option("--engines", default="", help="Comma-separated engines (default: all).")
@click.option("--tag", default="", help="Names the snapshot (a date, a release); stored.")
@click.option("--worst", default=5, show_default=True, type=click.IntRange(0),
              help="Worst queries listed per engine (by nDCG at the largest k <= 10).")
def evaluate(run_id: str, db_path: str, labels_text: str, engine_files: tuple[str, ...],
             ideal: str, k_text: str, gains_text: str, gain: str, relevant_at: int | None,
             unjudged: str, as_json: bool, engines: str, tag: str, worst: int) -> None:
    """Measure each engine in RUN_ID (or in --engines-from files) with the run's labels (or
    --labels): nDCG, P, ERR, MRR, irrelevant@k, judged@k."""
    gains_text = (gains_text, gain, relevant_at)
    store, run_id, gains, items, results, source, said = _evaluate(
        db_path, run_id, [e for e in engines.split(",") if e], k_text, gains_text, unjudged,
        labels_text, engine_files, ideal)
    ks = _ks(k_text)
    k_worst = max([k for k in ks if k <= 10] or [ks[0]])
    texts = {i.query_id: i.query for i in items}
    judge = judge_identity(store, source)
    report = {"run_id": run_id, "labels": source, "ideal": ideal, "gains": gains.__dict__,
              "k": list(ks), "unjudged": unjudged, "convention": said,
              "unfinished": unfinished_warning(store, run_id) if run_id else "",
              "engines": {}}
    for engine, result in results.items():
        overall = summary(result)
        groups = {kind: {name: summary(result, qs) for name, qs in members.items()}
                  for kind, members in result.groups.items()}
        ndcg = result.per_query[f"nDCG@{k_worst}"]
        worst_queries = []
        mine = [i for i in items if i.engine == engine]
        # a query with nothing judged yet (an unfinished run) scores 0 but says nothing
        # about the engine: it is not listed among the worst
        judged = {i.query_id for i in mine if not i.source.startswith("unjudged")}
        for q in sorted((q for q in result.queries if q in judged),
                        key=lambda q: ndcg[q])[:worst]:
            worst_queries.append({"query_id": q, "query": texts[q], f"nDCG@{k_worst}":
                                  round(ndcg[q], 4), "offending": offending(mine, q, k_worst)})
        report["engines"][engine] = {"queries": len(result.queries), "measures": overall,
                                     "coverage": result.coverage, "groups": groups,
                                     "worst": worst_queries}
        store.save_evaluation({
            "run_id": run_id or None, "engine": engine, "tag": tag,
            "options": json.dumps({"k": list(ks), "gains": gains.__dict__,
                                   "unjudged": unjudged, "ideal": ideal,
                                   "labels": source}),
            "judge": judge, "measures": json.dumps(overall),
            "coverage": json.dumps(result.coverage),
            "per_query": json.dumps(result.per_query)})
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    _print_evaluation(report, ks)


def _print_evaluation(report: dict, ks: tuple[int, ...]) -> None:
    out = Console(highlight=False)
    names = [f"nDCG@{k}" for k in ks] + [f"P@{ks[0]}", f"ERR@{ks[-1]}", "MRR",
                                         f"irrelevant@{ks[0]}", f"judged@{ks[-1]}"]
    title = (f"{report['run_id']} · gains {report['gains']} · mean [95% interval over "
             f"queries]")
    cell = {e: {n: f"{d['measures'][n]['mean']:.3f} [{d['measures'][n]['low']:.2f}, "
                   f"{d['measures'][n]['high']:.2f}]" for n in names}
            for e, d in report["engines"].items()}
    if out.width >= WIDE_TABLE:
        table = Table(title=title, caption=report["convention"])
        table.add_column("engine")
        table.add_column("queries", justify="right")
        for name in names:
            table.add_column(name, justify="right", no_wrap=True)
        for engine, data in report["engines"].items():
            table.add_row(Text(engine or "(none)"), str(data["queries"]),
                          *(cell[engine][n] for n in names))
        out.print(table)
    else:  # 80 columns: measures down, engines across, a few engines a table
        engines = list(report["engines"])
        for start in range(0, len(engines), ENGINES_PER_NARROW_TABLE):
            shown = engines[start:start + ENGINES_PER_NARROW_TABLE]
            table = Table(title=title, caption=report["convention"])
            table.add_column("measure", no_wrap=True)
            for engine in shown:
                table.add_column(Text(engine or "(none)"), justify="right", no_wrap=True)
            table.add_row("queries", *(str(report["engines"][e]["queries"]) for e in shown))
            for name in names:
                table.add_row(name, *(cell[e][name] for e in shown))
            out.print(table)
    for engine, data in report["engines"].items():
        cov = ", ".join(f"{k} {v}" for k, v in data["coverage"].items())
        out.print(Text(f"{engine or '(none)'} labels: {cov}"))
        for w in data["worst"]:
            score = next(v for k, v in w.items() if k.startswith("nDCG@"))
            out.print(Text(f"  worst: {w['query']!r} nDCG {score:.3f}", style="bold"))
            for o in w["offending"][:3]:
                out.print(Text(f"    #{o['rank']} {o['title'][:50]} [{o['product_id']}] "
                               f"{o['why']}: {o['reasoning']} (raer show {o['judgment_id']})"))


@click.command()
@_common
@click.option("--baseline", required=True, help="The engine to compare against.")
@click.option("--candidate", "candidates", multiple=True, required=True,
              help="An engine to test (repeat for several).")
@click.option("--losses", default=5, show_default=True, type=click.IntRange(0),
              help="Queries with the largest losses listed per candidate.")
@click.option("--candidate-run", default="",
              help="Read the candidates from this run instead (yesterday's baseline in "
                   "RUN_ID, today's results judged in another run); queries are paired by "
                   "their text and language.")
def compare(run_id: str, db_path: str, labels_text: str, engine_files: tuple[str, ...],
            ideal: str, k_text: str, gains_text: str, gain: str, relevant_at: int | None,
            unjudged: str, as_json: bool, baseline: str, candidates: tuple[str, ...],
            losses: int, candidate_run: str) -> None:
    """Compare candidate engines with a baseline in RUN_ID (or in --engines-from files),
    query by query, on the run's labels (or --labels)."""
    gains_text = (gains_text, gain, relevant_at)
    if candidate_run:
        store, run_id, _, _, results, _, said = _evaluate(
            db_path, run_id, [baseline], k_text, gains_text, unjudged, labels_text,
            engine_files, ideal)
        theirs = _evaluate(db_path, candidate_run, list(candidates), k_text, gains_text,
                           unjudged, labels_text, (), ideal)
        # the same engine may be on both sides (yesterday's and today's): name them apart
        engine_of = {f"{c} ({candidate_run})": c for c in candidates}
        results.update({shown: theirs.results[c] for shown, c in engine_of.items()})
        candidates, items = tuple(engine_of), theirs.items
    else:
        engine_of = {c: c for c in candidates}
        store, run_id, _, items, results, _, said = _evaluate(
            db_path, run_id, [baseline, *candidates], k_text, gains_text, unjudged,
            labels_text, engine_files, ideal)
    texts = {i.query_id: i.query for i in items}
    ks = _ks(k_text)
    main = f"nDCG@{max([k for k in ks if k <= 10] or [ks[0]])}"
    base = results[baseline]
    report = {"run_id": run_id, "baseline": baseline, "main_measure": main,
              "unjudged": unjudged, "convention": said, "candidates": {}}
    tests = []
    for cand in candidates:
        shared = sorted(set(base.queries) & set(results[cand].queries))
        rows = {name: paired_difference(base.per_query[name], results[cand].per_query[name],
                                        shared, lower_is_better=name.startswith(
                                            LOWER_IS_BETTER))
                for name in base.per_query}
        # in the canonical order (nDCG, P, P+sub, …): the first of two equal tests is kept
        deltas = {name: [results[cand].per_query[name][q] - base.per_query[name][q]
                         for q in shared] for name in measure_names(ks) if name in rows}
        tests += [(cand, name) for name in test_family(deltas)]
        delta = {q: results[cand].per_query[main][q] - base.per_query[main][q] for q in shared}
        worst = [{"query": texts[q], "query_id": q,
                  "delta": round(delta[q], 4),
                  "offending": offending([i for i in items if i.engine == engine_of[cand]], q,
                                         int(main.split("@")[1]))}
                 for q in sorted(shared, key=lambda q: delta[q])[:losses] if delta[q] < 0]
        report["candidates"][cand] = {"queries": len(shared), "measures": rows,
                                      "largest_losses": worst}
    # one family of tests: every measure of every candidate (Benjamini–Hochberg)
    adjusted = benjamini_hochberg(
        [report["candidates"][c]["measures"][n]["p_permutation"] for c, n in tests])
    for data in report["candidates"].values():
        for row in data["measures"].values():
            row["p_adjusted"] = None  # not a test of its own: constant or a duplicate
    for (cand, name), p in zip(tests, adjusted, strict=True):
        report["candidates"][cand]["measures"][name]["p_adjusted"] = float(p)
    report["tests_in_family"] = len(tests)
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    out = Console(highlight=False)
    for cand, data in report["candidates"].items():
        _print_comparison(out, baseline, cand, data, report["convention"])
        for w in data["largest_losses"]:
            out.print(Text(f"  loss {w['delta']:+.3f} on {w['query']!r}", style="bold"))
            for o in w["offending"][:3]:
                out.print(Text(f"    #{o['rank']} {o['title'][:50]} [{o['product_id']}] "
                               f"{o['why']}: {o['reasoning']} (raer show {o['judgment_id']})"))


WIDE_TABLE = 150  # columns below which tables are laid out for 80 columns
ENGINES_PER_NARROW_TABLE = 3


def _print_comparison(out: Console, baseline: str, cand: str, data: dict,
                      convention: str) -> None:
    """One table when the terminal is wide; at 80 columns two narrower ones (effect, then
    tests), the engines named A and B in the title, every cell whole (no "[+0.0…")."""
    rows = data["measures"]
    effect = {n: (f"{r['baseline']:.3f}", f"{r['candidate']:.3f}", f"{r['delta']:+.3f}",
                  f"[{r['low']:+.2f}, {r['high']:+.2f}]", f"{r['wins']}/{r['losses']}/"
                                                          f"{r['ties']}")
              for n, r in rows.items()}
    tests = {n: (f"{r['p_permutation']:.3f}",
                 "-" if r["p_adjusted"] is None else f"{r['p_adjusted']:.3f}",
                 f"{r['p_t']:.3f}", f"{r['min_detectable_effect']:.3f}")
             for n, r in rows.items()}
    heading = (f"{cand} vs {baseline} on {data['queries']} queries · delta [95% bootstrap] · "
               f"p (permutation, BH-adjusted; -: constant or a duplicate, not a test) · "
               f"p (t-test)")
    if out.width >= WIDE_TABLE:
        layouts = [(heading, ("measure", baseline, cand, "delta", "95% interval", "W/L/T",
                              "p perm", "p adj", "p t", "MDE"),
                    {n: effect[n] + tests[n] for n in rows})]
    else:
        named = f"A = {baseline} · B = {cand} · {data['queries']} queries"
        layouts = [(f"{named}\ndelta B − A [95% bootstrap over queries]",
                    ("measure", "A", "B", "delta", "95% interval", "W/L/T"), effect),
                   ("p: permutation, BH-adjusted (- : constant or a duplicate, not a test), "
                    "t-test · MDE: minimal detectable effect",
                    ("measure", "p perm", "p adj", "p t", "MDE"), tests)]
    for title, columns, cells in layouts:
        table = Table(title=Text(title), caption=convention)
        for column in columns:
            table.add_column(Text(column), justify="right", no_wrap=True)
        for name, values in cells.items():
            table.add_row(name, *values)
        out.print(table)


@click.command()
@db_option
@click.option("--engine", default="", help="Only this engine.")
@click.option("--measure", default=MAIN, show_default=True, help="The measure to follow.")
@click.option("--labels", "labels_text", default="",
              help="Only evaluations graded by this label source (run:RUN, "
                   "human:SOURCE[:SPLIT], qrels:FILE; `run` alone: any judge run).")
@json_option
def trend(db_path: str, engine: str, measure: str, labels_text: str, as_json: bool) -> None:
    """Each engine's measure over its stored evaluations, one series per engine and judge
    (a change of judge starts a new series: it is not a regression of the engine); exit 1
    on a regression (the latest value below the previous one by more than the latest
    interval's half width)."""
    rows = open_store(db_path).evaluations(engine or None)
    if labels_text:
        rows = [r for r in rows if _graded_by(r, labels_text)]
    stored = sorted({name for r in rows for name in json.loads(r["measures"])})
    if rows and measure not in stored:
        click.echo(f"bad input: no stored evaluation has the measure {measure!r}; stored: "
                   f"{', '.join(stored)}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if not rows:
        click.echo(f"no stored evaluations{f' of engine {engine!r}' if engine else ''}"
                   f"{f' graded by {labels_text}' if labels_text else ''} in "
                   f"{db_path}: `raer evaluate RUN` stores one", err=True)
        sys.exit(EXIT_BAD_INPUT)
    by_judge: dict[tuple[str, str], list[dict]] = {}
    judges: dict[str, str] = {}  # judge identity → its short name in the series' title
    for r in rows:
        m = json.loads(r["measures"]).get(measure)
        if m is None:
            continue
        judge = r["judge"] or ""
        if judge not in judges:
            judges[judge] = _judge_name(judge, len(judges) + 1)
        by_judge.setdefault((r["engine"], judge), []).append(
            {"id": r["id"], "run_id": r["run_id"], "tag": r["tag"], "judge": judges[judge],
             "created_at": r["created_at"], **m})
    # a series is an engine under one judge; named by the engine alone when it has one
    judged_by: dict[str, int] = {}
    for engine, _ in by_judge:
        judged_by[engine] = judged_by.get(engine, 0) + 1
    series = {(engine if judged_by[engine] == 1 else f"{engine} · {judges[judge]}"): points
              for (engine, judge), points in by_judge.items()}
    regressions = []
    for name, points in series.items():
        for prev, last in zip(points, points[1:], strict=False):
            half = (last["high"] - last["low"]) / 2
            last["regression"] = prev["mean"] - last["mean"] > half
        if len(points) > 1 and points[-1]["regression"]:
            regressions.append(name)
    if as_json:
        click.echo(json.dumps({"measure": measure, "series": series,
                               "regressions": regressions}, indent=2))
    else:
        out = Console(highlight=False)
        for name, points in series.items():
            out.print(Text(f"{name or '(none)'} · {measure}", style="bold"))
            for p in points:
                flag = "  REGRESSION" if p.get("regression") else ""
                out.print(Text(f"  {p['created_at'][:19]} {p['tag'] or p['run_id']:<24} "
                               f"{p['mean']:.3f} [{p['low']:.3f}, {p['high']:.3f}]{flag}"))
    if regressions:
        click.echo(f"regression in {measure}: {', '.join(regressions)}", err=True)
        sys.exit(EXIT_FAILED)


def _graded_by(row: dict, wanted: str) -> bool:
    """Whether a stored evaluation's labels came from WANTED ("run" alone: any run)."""
    source = json.loads(row["options"] or "{}").get("labels") or f"run:{row['run_id']}"
    return source == wanted or (wanted == "run" and source.startswith("run:"))


def _judge_name(identity: str, number: int) -> str:
    """A series' judge as a reader knows it: the label source, or the judge model with the
    judge's number (two settings of one model are two judges)."""
    try:
        data = json.loads(identity)
    except ValueError:
        return f"judge {number}"
    if "labels" in data and len(data) == 1:
        return f"labels {data['labels']}"
    model = (data.get("models") or {}).get("judge", ["", "?"])
    return f"judge {number} ({model[-1] if isinstance(model, list) else model})"


def _report_or_exit(make, as_json: bool) -> dict:
    """Build a report; bad input ends with exit 2; --json prints it and ends."""
    try:
        report = make()
    except (LookupError, ValueError, InputError) as exc:
        if isinstance(exc, IndexError | KeyError):
            raise  # a bug in raer, not the user's input: a traceback, not "bad input"
        click.echo(f"bad input: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        sys.exit(0)
    return report


own_engines_option = click.option(
    "--engines-from", "engine_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
    help="Your engines' rankings (TREC run or pairs files, repeat) instead of the five "
         "built-in rankers.")


def _own_engines(store: Store, engine_files: tuple[str, ...]) -> dict | None:
    """engine → query → ranked product ids from --engines-from, or None (built-in rankers)."""
    if not engine_files:
        return None
    from raer.evals.meta_eval import rankings_of

    return rankings_of(engine_results(store, list(engine_files)))


@click.command("meta-eval")
@db_option
@click.option("--source", required=True, help="The imported human labels (e.g. esci-us).")
@click.option("--split", default="", help="Only this split (e.g. test).")
@click.option("--run", "runs", multiple=True,
              help="A label source to test: a judged run or a baseline (repeat).")
@own_engines_option
@click.option("--k", default=10, show_default=True, type=click.IntRange(1))
@json_option
def meta_eval(db_path: str, source: str, split: str, runs: tuple[str, ...],
              engine_files: tuple[str, ...], k: int, as_json: bool) -> None:
    """Do these labels rank engines as people's do? Your engines (--engines-from) or five
    built-in rankers (BM25, dense, hybrid, random, BM25 reversed), scored by each label
    source against people's labels."""
    from raer.evals.meta_eval import meta_evaluate

    def make() -> dict:
        store = open_store(db_path)
        runs_ = [resolve_run(store, r) for r in runs]
        engines = _own_engines(store, engine_files)
        return meta_evaluate(store, source, runs_, split, k, engines=engines)

    report = _report_or_exit(make, as_json)
    out = Console(highlight=False)
    names = report["engines"]
    scores = Table(title=f"nDCG@{k} per engine by label source ({source}"
                         + (f", {split}" if split else "") + ")")
    scores.add_column("engine", no_wrap=True)
    sources = list(report["label_sources"])
    for name in sources:
        scores.add_column(Text(name if len(name) <= 14 else name[:13] + "…"), justify="right",
                          no_wrap=True)
    for engine in names:
        scores.add_row(Text(engine), *(f"{report['label_sources'][s][f'nDCG@{k}'][engine]:.3f}"
                                       for s in sources))
    out.print(scores)
    agreement = Table(title=f"Ordering of {len(names)} engines ({report['engine_pairs']} "
                            f"pairs) against people's",
                      caption="τ: Kendall, with its 95% bootstrap interval over queries; "
                              "same decisions: pairs of engines a paired t-test (p < 0.05) "
                              "decides as people's labels do")
    for column in ("label source", "queries", "τ [95%]", "τ_AP", "per-query r",
                   "same decisions"):
        agreement.add_column(column, justify="right", no_wrap=column != "label source")
    for name, r in report["label_sources"].items():
        tau = "-" if r["kendall_tau"] is None else f"{r['kendall_tau']:.2f}" + (
            f" [{r['kendall_tau_ci'][0]:.2f}, {r['kendall_tau_ci'][1]:.2f}]"
            if r["kendall_tau_ci"] else "")
        decided = r["significant_decisions"]
        agreement.add_row(Text(name), str(r["queries"]), tau,
                          "-" if r["tau_ap"] is None else f"{r['tau_ap']:.2f}",
                          "-" if r["per_query_pearson"] is None
                          else f"{r['per_query_pearson']:.2f}",
                          f"{decided['agree']} of {decided['of']}")
    out.print(agreement)


@click.command("ppi")
@db_option
@click.option("--source", required=True, help="The imported human labels (e.g. esci-us).")
@click.option("--run", "run_id", required=True, help="The judge's labels (a run).")
@click.option("--split", default="", help="Only this split (e.g. test).")
@click.option("--budgets", default="50,200,500,1000", show_default=True,
              help="Human-labelled pairs to simulate (whole queries are sampled).")
@click.option("--repeats", default=1000, show_default=True, type=click.IntRange(1),
              help="Samples per budget (coverage is given with its standard error).")
@own_engines_option
@click.option("--k", default=10, show_default=True, type=click.IntRange(1))
@json_option
def ppi(db_path: str, source: str, run_id: str, split: str, budgets: str, repeats: int,
        engine_files: tuple[str, ...], k: int, as_json: bool) -> None:
    """How many human labels make the judge's engine scores trustworthy? Prediction-powered
    nDCG@k against people-only estimates, simulated at several human budgets."""
    from raer.evals.ppi import ppi_report

    def make() -> dict:
        store = open_store(db_path)
        try:
            sizes = [int(b) for b in budgets.split(",")]
        except ValueError as exc:
            raise ValueError(f"--budgets takes integers like 50,200, not {budgets!r}") from exc
        engines = _own_engines(store, engine_files)
        return ppi_report(store, source, resolve_run(store, run_id), sizes, split, k, repeats,
                          engines=engines)

    report = _report_or_exit(make, as_json)
    table = Table(title=f"nDCG@{k}: 95% interval width and coverage by human budget "
                        f"({report['queries']} queries, {repeats} samples each)",
                  caption="coverage ± its Monte Carlo standard error")
    for column in ("engine", "people (all)", "judge (all)", "budget", "people-only width",
                   "coverage", "PPI width", "coverage"):
        table.add_column(column, justify="right")

    def width(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    for engine, row in report["engines"].items():
        for budget, b in row["budgets"].items():
            people_only, ppi_ = b["people only"], b["ppi"]
            table.add_row(engine, f"{row['people_all']:.3f}", f"{row['judge_all']:.3f}",
                          str(budget), width(people_only["mean_width"]),
                          f"{people_only['coverage']:.0%} ± {people_only['coverage_se']:.0%}",
                          width(ppi_["mean_width"]),
                          f"{ppi_['coverage']:.0%} ± {ppi_['coverage_se']:.0%}")
    Console(highlight=False).print(table)
