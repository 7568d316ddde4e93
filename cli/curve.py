"""`raer curve PAIRS`: cost against agreement, pairwise vs listwise vs the cascade
(run/curve.py, evals/cost_curve.py).

    raer labels pairs --db esci.db --source esci-us --split test --max-queries 2 -o p.jsonl
    raer curve p.jsonl --labels-db esci.db --source esci-us --sizes 5,10,20 \\
        --first-stage fs.json --work-dir evals/out/curve
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from raer.cli.options import EXIT_BAD_INPUT, json_option, model_options, ties_option
from raer.nodes.context import MAX_PRODUCTS_PER_CALL


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise click.BadParameter(f"expected sizes such as 5,10,20, not {text!r}") from exc
    if any(not 1 <= n <= MAX_PRODUCTS_PER_CALL for n in sizes):
        raise click.BadParameter(f"each size must be 1 to {MAX_PRODUCTS_PER_CALL}")
    return sizes


HEADER = ("| configuration | pairs | judge calls | all calls | input tokens | output tokens | "
          "$ / 1,000 pairs | wall s | agreement | κ | τ vs pairwise | failed |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def _num(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def table_line(r: dict) -> str:
    return (f"| {r['configuration']} | {r['pairs']} | {r['judge_calls']} | {r['calls']} | "
            f"{r['input_tokens']:,} | {r['output_tokens']:,} | "
            f"{_num(r['usd_per_1000_pairs'], '.3f')} | {r['wall_s']:.0f} | "
            f"{_num(r['agreement'], '.1%')} | {_num(r['kappa'], '.3f')} | "
            f"{_num(r['tau_vs_pairwise'], '.3f')} | {r['statuses']['failed']} |")


@click.command()
@click.argument("pairs", type=click.Path(exists=True, dir_okay=False))
@click.option("--labels-db", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The store holding people's labels for these pairs.")
@click.option("--source", required=True, help="Their label source.")
@ties_option
@click.option("--sizes", default="5,10,20", show_default=True,
              help="Listwise products per call to compare with pairwise (always included).")
@click.option("--first-stage", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Add the cascade: this first-stage model (raer cascade fit), then pairwise.")
@click.option("--price-as", default="gpt-4o", show_default=True,
              help="Price every recorded token at this model's list price (price table).")
@click.option("--work-dir", default="evals/out/curve", show_default=True,
              type=click.Path(file_okay=False),
              help="Each configuration's own fresh store is made here (replaced each time).")
@model_options
@json_option
def curve(pairs: str, labels_db: str, source: str, ties: str, sizes: str,
          first_stage: str | None,
          price_as: str, work_dir: str, as_json: bool, **models: str) -> None:
    """Judge PAIRS pairwise, listwise and through the cascade; report cost and agreement."""
    from raer.evals.baselines import labelled_pairs
    from raer.nodes.inputs import InputError, read_pairs
    from raer.nodes.models.prices import price_of
    from raer.run.curve import cost_curve
    from raer.store import open_store

    chosen = _sizes(sizes)
    if price_of(price_as, "") is None:
        raise click.BadParameter(f"{price_as!r} is not in the price table", param_hint="--price-as")
    try:
        records = read_pairs(pairs)
    except InputError as exc:
        click.echo(f"bad input:\n{exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    humans = {(p["query_id"], p["product_id"]): p["majority"]
              for p in labelled_pairs(open_store(labels_db), source, "", ties)}
    if not humans:
        click.echo(f"bad input: no human labels of source {source!r} in {labels_db}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    base = {**{k: v for k, v in models.items() if v not in (None, "")},
            "images_root": str(Path(pairs).resolve().parent), "local_images": True}

    def progress(row: dict) -> None:
        click.echo(f"{row['configuration']}: {row['judge_calls']} judge calls, "
                   f"{row['wall_s']:.0f} s", err=True)

    rows = cost_curve(records, humans, base, Path(work_dir), chosen, first_stage or "", price_as,
                      on_point=progress)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(HEADER)
    for row in rows:
        click.echo(table_line(row))
