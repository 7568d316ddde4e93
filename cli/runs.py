"""`raer status RUN` and `raer retry-failed RUN`: where a run stands, and finishing it."""

from __future__ import annotations

import asyncio
import json
import sys

import click

from raer.cli.options import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    db_option,
    json_option,
    resolve_run,
)
from raer.run.local import judge_pairs
from raer.run.stored import pairs_with_status, run_settings
from raer.store import open_store


@click.command()
@click.argument("run_id")
@db_option
def status(run_id: str, db_path: str) -> None:
    """Pairs of RUN_ID by status: pending, done, escalated, failed."""
    store = open_store(db_path)
    run_id = resolve_run(store, run_id)
    counts = store.pair_statuses(run_id)
    click.echo(json.dumps({"run_id": run_id, **{s: counts.get(s, 0) for s in
                                                ("pending", "done", "escalated", "failed")}}))


@click.command("retry-failed")
@click.argument("run_id")
@db_option
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(1))
@click.option("--include-pending", is_flag=True,
              help="Also do pairs left pending (a stopped or killed run).")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True,
              help="Name of the environment variable holding the API key (not part of the "
                   "run's stored settings).")
@click.option("--prices", default="", help="Price overrides as JSON, as for `raer judge`.")
def retry_failed(run_id: str, db_path: str, concurrency: int, include_pending: bool,
                 api_key_env: str, prices: str) -> None:
    """Redo only the failed pairs of RUN_ID, with the settings the run was made with."""
    store = open_store(db_path)
    run_id = resolve_run(store, run_id)
    try:
        settings = run_settings(store, run_id, db_path=db_path, max_concurrency=concurrency,
                                api_key_env=api_key_env, prices=prices)
    except LookupError as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_BAD_INPUT)
    statuses = ("failed", "pending") if include_pending else ("failed",)
    pairs = pairs_with_status(store, run_id, statuses)
    rows = asyncio.run(judge_pairs(pairs, settings)) if pairs else []
    counts = store.pair_statuses(run_id)
    click.echo(json.dumps({"run_id": run_id, "retried": len(pairs),
                           "now": {s: sum(r["status"] == s for r in rows)
                                   for s in ("done", "escalated", "failed")},
                           "run": counts}))
    if counts.get("failed"):
        sys.exit(EXIT_FAILED)


@click.command("runs")
@db_option
@json_option
def runs_list(db_path: str, as_json: bool) -> None:
    """The store's runs, newest first: id, kind, judge model, pairs by status, engines,
    created. Every command that takes a run accepts its id, a unique prefix, or "latest"."""
    runs = open_store(db_path).runs_overview()
    if as_json:
        click.echo(json.dumps({"runs": runs}, indent=2))
        return
    if not runs:
        click.echo(f"no runs in {db_path}")
        return
    for r in runs:
        pairs = r["pairs"]
        by_status = " ".join(f"{s} {pairs[s]}" for s in ("done", "escalated", "failed",
                                                         "pending") if pairs.get(s))
        click.echo(f"{r['run_id']}  {r['kind']:<8} {r['created_at'][:16]}  "
                   f"{r['judge_model'] or '-'}  {by_status or 'no pairs'}  engines: "
                   f"{', '.join(e or '(none)' for e in r['engines']) or '-'}")
