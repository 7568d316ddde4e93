"""`raer baseline majority|lexical`: floors for every agreement number, stored as runs."""

from __future__ import annotations

import json
import sys

import click

from raer.cli.options import EXIT_BAD_INPUT, db_option, ties_option
from raer.evals.baselines import run_lexical_baseline, run_majority_baseline
from raer.store import open_store


@click.command()
@click.argument("kind", type=click.Choice(["majority", "lexical"]))
@db_option
@click.option("--source", required=True, help="Human-label source (see `raer labels import`).")
@click.option("--fit-split", default="dev", show_default=True,
              help="Split the baseline is fitted on.")
@click.option("--split", default="test", show_default=True, help="Split it predicts.")
@ties_option
def baseline(kind: str, db_path: str, source: str, fit_split: str, split: str,
             ties: str) -> None:
    """Write a baseline run's labels for the labelled pairs; prints the run id.

    The run is named by everything that changes its labels (source, fit split, predicted
    split, tie rule), so predicting another split writes another run."""
    run = {"majority": run_majority_baseline, "lexical": run_lexical_baseline}[kind]
    try:
        run_id = run(open_store(db_path), source, fit_split, split, ties)
    except ValueError as exc:
        click.echo(f"bad input: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    click.echo(json.dumps({"run_id": run_id}))
