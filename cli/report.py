"""`raer report RUN…`: Markdown and a self-contained HTML page for runs against people."""

from __future__ import annotations

import json
import sys

import click

from raer.cli.options import EXIT_BAD_INPUT, db_option, resolve_run, ties_option
from raer.evals.report import write_report
from raer.store import open_store


@click.command()
@click.argument("run_ids", nargs=-1, required=True)
@db_option
@click.option("--source", default="", help="Only human labels of this source.")
@click.option("--split", default="", help="Only this split.")
@click.option("--resamples", default=1000, show_default=True)
@click.option("--common", is_flag=True, help="Only the pairs all the runs judged.")
@ties_option
@click.option("--out", "out_dir", default="report", show_default=True,
              type=click.Path(file_okay=False), help="Folder for report.md / report.html.")
def report(run_ids: tuple[str, ...], db_path: str, source: str, split: str, resamples: int,
           common: bool, ties: str, out_dir: str) -> None:
    """Write report.md and report.html (charts inline, opens offline) for RUN_IDS."""
    try:
        store = open_store(db_path)
        run_ids = tuple(resolve_run(store, r) for r in run_ids)
        paths = write_report(store, list(run_ids), out_dir, source, split,
                             resamples, common, ties)
    except LookupError as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_BAD_INPUT)
    click.echo(json.dumps(paths))
