"""`raer cost RUN`: calls, tokens by node, cache reuse, cost, speed, and people's price."""

from __future__ import annotations

import json

import click

from raer.cli.options import db_option, json_option, resolve_run
from raer.evals.report import cost_lines
from raer.evals.usage import cost_report


@click.command()
@click.argument("run_id")
@db_option
@click.option("--human-price-per-label", default=0.10, show_default=True,
              help="What one human label costs, USD.")
@click.option("--annotators", default=2, show_default=True, help="People per pair.")
@click.option("--prices", default="",
              help='Re-price tokens: {"model": [in, out, cached] USD per 1M tokens}.')
@json_option
def cost(run_id: str, db_path: str, human_price_per_label: float, annotators: int,
         prices: str, as_json: bool) -> None:
    """What RUN_ID cost and how fast it went, against labelling by people."""
    from raer.store import open_store

    store = open_store(db_path)
    run_id = resolve_run(store, run_id)
    report = cost_report(store, run_id, human_price_per_label, annotators, prices)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo("\n".join(cost_lines(report)))
    click.echo("\n| node | model | calls | tokens | cached | cost $ | model s |\n"
               "|---|---|---|---|---|---|---|")
    for row in report["by_node"]:
        click.echo(f"| {row['node']} | {row['model']} | {row['calls']} | {row['tokens']} | "
                   f"{row['cached_tokens']} | {row['cost_usd']} | {row['model_seconds']} |")
