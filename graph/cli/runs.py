"""`raer status RUN` and `raer retry-failed RUN`: where a run stands, and finishing it."""

from __future__ import annotations

import asyncio
import json
import sys

import click

from raer.graph.api import judge_pairs
from raer.graph.cli.options import EXIT_BAD_INPUT, EXIT_FAILED, db_option
from raer.graph.stored_runs import pairs_with_status, run_settings
from raer.store import open_store


@click.command()
@click.argument("run_id")
@db_option
def status(run_id: str, db_path: str) -> None:
    """Pairs of RUN_ID by status: pending, done, escalated, failed."""
    counts = open_store(db_path).pair_statuses(run_id)
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
