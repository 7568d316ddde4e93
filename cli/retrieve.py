"""`raer retrieve` (ask the engines, keep snapshots, write pairs) and `raer experiment`
(run, list, show: the Repeat, for a nightly scheduler or a CI job)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from raer.cli.options import (
    EXIT_BAD_INPUT,
    EXIT_NOTHING_JUDGED,
    db_option,
    json_option,
    new_db_option,
    say_if_new,
)
from raer.nodes.inputs import InputError
from raer.retrieve.config import EngineConfigError, load_engines
from raer.retrieve.http import EngineError

EXIT_ENGINE = EXIT_NOTHING_JUDGED  # an engine could not answer: nothing retrieved


def _fail(exc: Exception) -> None:
    if isinstance(exc, EngineError):
        click.echo(f"engine error, nothing written:\n{exc}", err=True)
        sys.exit(EXIT_ENGINE)
    click.echo(f"bad input, nothing written:\n{exc}", err=True)
    sys.exit(EXIT_BAD_INPUT)


@click.command()
@click.argument("queries", type=click.Path(dir_okay=False))
@click.option("--engine", "engine_files", multiple=True, required=True,
              type=click.Path(dir_okay=False),
              help="An engine config (YAML or TOML); repeat for several engines.")
@new_db_option
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="The pairs file to write (JSONL), ready for `raer judge`.")
@click.option("--sample", default=0, type=click.IntRange(0),
              help="Draw this many queries, stratified by query type (0: all).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--tag", default="", help="Names the snapshots (a date, a release).")
@click.option("--update-products", is_flag=True,
              help="A product the store has with other content takes the engine's content "
                   "(default: refused, naming it).")
@json_option
def retrieve(queries: str, engine_files: tuple[str, ...], db_path: str, out: str,
             sample: int, seed: int, tag: str, update_products: bool, as_json: bool) -> None:
    """Run the QUERIES (a text file, one query a line, or CSV/JSONL with query, language,
    query_type, weight) against each --engine, keep each engine's results as a snapshot in
    the store, and write them as pairs for `raer judge`. Nothing is written unless every
    engine answered every query. Exit 2 on a bad file, 4 when an engine could not answer."""
    import asyncio

    from raer.retrieve import snapshot
    from raer.retrieve.query_set import read_queries
    from raer.retrieve.query_set import sample as draw
    from raer.store import open_store

    out_path = Path(out).resolve()
    if out_path == Path(db_path).resolve() or out_path.suffix.lower() != ".jsonl":
        _fail(InputError([(out, None, "--out", "write the pairs to a new .jsonl file, "
                           "never the store")]))
    try:
        engines = load_engines(list(engine_files))
        asked = read_queries(queries)
        if sample:
            asked = draw(asked, sample, seed)
        found = asyncio.run(snapshot.retrieve(engines, asked))
        say_if_new(db_path)
        store = open_store(db_path)
        rows = snapshot.save(store, found, asked, query_set=str(Path(queries).resolve()),
                             tag=tag, update_products=update_products, db_path=db_path)
        pairs = snapshot.pairs_of(store, [r["id"] for r in rows], asked)
        snapshot.write_pairs(out_path, pairs)
    except (EngineConfigError, InputError, EngineError) as exc:
        _fail(exc)
    outside = [p["image"] for p in pairs if p["image"].startswith("/")
               and not Path(p["image"]).is_relative_to(out_path.parent)]
    # the judge confines local packshots to the pairs file's folder unless told another
    images_root = os.path.commonpath([str(Path(i).parent) for i in outside]) if outside else ""
    report = {"queries": len(asked), "pairs": len(pairs), "out": str(out_path),
              "images_root": images_root,
              "snapshots": [{"id": r["id"], "engine": r["engine"],
                             "config_hash": r["config_hash"],
                             "results": sum(len(h) for h in f.results),
                             "empty_queries": f.empty(asked), "seconds": round(f.seconds, 2)}
                            for r, f in zip(rows, found, strict=True)]}
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    err = Console(stderr=True, highlight=False)
    for s in report["snapshots"]:
        empty = s["empty_queries"]
        err.print(f"{s['engine']}: {s['results']} results for {len(asked)} queries in "
                  f"{s['seconds']} s · snapshot {s['id']} (config {s['config_hash']})"
                  + (f" · no result for {len(empty)}: {', '.join(empty[:5])}" if empty
                     else ""))
    hint = f" --images-root {images_root}" if images_root else ""
    err.print(f"{len(pairs)} pairs written to {out_path}: `raer judge {out} --db {db_path}"
              f"{hint}`" + (" (the catalogue's packshots are outside the pairs file's "
                            "folder)" if hint else ""))


@click.group()
def experiment() -> None:
    """Named experiments: a query set × engine configs × judge settings, rerun on a
    schedule (retrieve → judge, reusing labels → evaluate → compare with the last run)."""


@experiment.command("run")
@click.argument("config", type=click.Path(dir_okay=False))
@new_db_option
@click.option("--tag", default="", help="Names this run's snapshots (default: its time).")
@click.option("--summary", "summary_out", default="", type=click.Path(dir_okay=False),
              help="Also write the Markdown summary here.")
@json_option
def experiment_run(config: str, db_path: str, tag: str, summary_out: str,
                   as_json: bool) -> None:
    """Run the experiment in CONFIG once. Exit 0: nothing regressed; 1: an engine's measure
    or a query regressed (as the file's fail_on says), with the regressed queries and the
    products that sank them; 2: a bad file; 4: an engine could not answer (nothing
    written)."""
    import time

    from raer.cli.judge import OFFLINE_WARNING, PLAIN_EVERY
    from raer.retrieve.experiment import as_dict, load_experiment, run_experiment

    started, last = time.monotonic(), [0.0]

    def progress(p, total: int, run_id: str) -> None:
        """A plain line at most every PLAIN_EVERY seconds, so a nightly log shows life."""
        now = time.monotonic()
        if p is None:
            click.echo(f"judging {total} pairs into run {run_id}", err=True)
        elif now - last[0] >= PLAIN_EVERY or p.done + p.skipped == total:
            last[0] = now
            click.echo(f"judged {p.done + p.skipped} of {total} pairs · review "
                       f"{p.escalated} · failed {p.failed} · {now - started:.0f} s", err=True)

    try:
        loaded = load_experiment(config)
        say_if_new(db_path)
        outcome = run_experiment(loaded, db_path, tag=tag,
                                 on_progress=None if as_json else progress)
    except (EngineConfigError, InputError, EngineError) as exc:
        _fail(exc)
    from raer.store import open_store

    text = open_store(db_path).experiment_runs(loaded.config.name)[-1]["summary"]
    if summary_out:
        Path(summary_out).write_text(text, encoding="utf-8")
    if as_json:
        click.echo(json.dumps(as_dict(outcome), indent=2, ensure_ascii=False))
    else:
        click.echo(text, nl=False)
        if not loaded.config.judge:
            click.echo(f"note: {OFFLINE_WARNING}", err=True)
    sys.exit(outcome.exit_code)


@experiment.command("list")
@db_option
@json_option
def experiment_list(db_path: str, as_json: bool) -> None:
    """The store's experiments: their file, runs and the last run's exit code."""
    from raer.store import open_store

    rows = open_store(db_path).experiment_rows()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table("experiment", "file", "runs", "last run", "last exit")
    for r in rows:
        table.add_row(r["name"], r["path"], str(r["runs"]), (r["last_run"] or "")[:19],
                      "" if r["last_exit_code"] is None else str(r["last_exit_code"]))
    Console(highlight=False).print(table)


@experiment.command("show")
@click.argument("name")
@db_option
@click.option("--run", "which", default=-1, type=int,
              help="Which run (1 = first, -1 = the last).")
def experiment_show(name: str, db_path: str, which: int) -> None:
    """Print one run's Markdown summary (the last by default)."""
    from raer.store import open_store

    runs = open_store(db_path).experiment_runs(name)
    if not runs:
        click.echo(f"no runs of experiment {name!r} in {db_path}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    index = which - 1 if which > 0 else which
    if not -len(runs) <= index < len(runs):
        click.echo(f"experiment {name!r} has {len(runs)} runs", err=True)
        sys.exit(EXIT_BAD_INPUT)
    click.echo(runs[index]["summary"], nl=False)


@experiment.command("report")
@click.argument("names", nargs=-1)
@db_option
@click.option("--out", "out_dir", default="report", show_default=True,
              type=click.Path(file_okay=False), help="Folder for experiments.html.")
def experiment_report(names: tuple[str, ...], db_path: str, out_dir: str) -> None:
    """Write experiments.html (opens offline): each experiment's runs, every engine's
    measure over them, the last run's fallen queries with the products behind them."""
    from raer.evals.experiment_report import write_experiment_page
    from raer.store import open_store

    try:
        path = write_experiment_page(open_store(db_path), list(names) or None, out_dir)
    except LookupError as exc:
        click.echo(f"bad input: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    click.echo(json.dumps({"html": path}))
