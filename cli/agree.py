"""`raer agree RUN…`: how far runs agree with people, with baselines in the same table."""

from __future__ import annotations

import asyncio
import json
import math
import sys

import click

from raer.cli.options import (
    EXIT_BAD_INPUT,
    db_option,
    json_option,
    model_options,
    resolve_run,
    ties_option,
)
from raer.evals.categorise import categorise as categorise_disagreements
from raer.evals.ceiling import ASSUMPTION as CEILING_ASSUMPTION
from raer.evals.report_data import OFFLINE_NOTE, agreement_data, scope_line
from raer.evals.tables import (
    breakdown_table,
    comparison_table,
    confusion_table,
    disagreements_table,
    per_label_table,
    raw_confusion_table,
    raw_confusion_title,
)
from raer.nodes.settings import for_pairs_file
from raer.store import open_store


def _clean(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


@click.command()
@click.argument("run_ids", nargs=-1, required=True)
@db_option
@click.option("--source", default="", help="Only human labels of this source.")
@click.option("--split", default="", help="Only this split (e.g. test).")
@click.option("--resamples", default=1000, show_default=True, help="Bootstrap resamples.")
@click.option("--common", is_flag=True,
              help="Score every run on exactly the pairs all the runs judged (a pair any "
                   "run failed on or could not judge is dropped for all).")
@ties_option
@click.option("--labels", type=click.Choice(["judge", "effective"]), default="judge",
              show_default=True,
              help="Score the judge's own labels, or the effective ones (a resolved review's "
                   "label wins): what the pipeline hands on with people in the loop.")
@click.option("--all-disagreements", is_flag=True,
              help="List every hard disagreement (default: the first 20).")
@click.option("--categorise", is_flag=True,
              help="Classify each hard disagreement of model runs through the model door.")
@model_options
@json_option
def agree(run_ids: tuple[str, ...], db_path: str, source: str, split: str, resamples: int,
          common: bool, ties: str, labels: str, all_disagreements: bool, categorise: bool,
          as_json: bool,
          **models: str) -> None:
    """Agreement of RUN_IDS with human labels: overall, per language, query type, engine."""
    store = open_store(db_path)
    run_ids = tuple(resolve_run(store, r) for r in run_ids)
    try:
        data = agreement_data(store, list(run_ids), source, split, resamples, common, ties,
                              labels)
    except LookupError as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_BAD_INPUT)
    categories: dict[str, dict[str, str]] = {}
    if categorise:
        settings = for_pairs_file(None, db_path=db_path, **models)
        for run_id in run_ids:
            if not data["names"][run_id].startswith("baseline"):
                categories[run_id] = asyncio.run(categorise_disagreements(
                    store, settings, f"{run_id}-analysis", data["hard"][run_id]))
    if as_json:
        click.echo(json.dumps(_clean({
            "runs": data["names"], "scope": scope_line(data), "common_pairs":
            data["common_pairs"], "results": data["results"], "cost": data["cost"],
            "hard_disagreements": {r: [{"judgment_id": i.judgment_id, "query": i.query,
                                        "product_id": i.product_id, "human": i.majority,
                                        "judge": i.judge,
                                        "category": categories.get(r, {}).get(i.judgment_id)}
                                       for i in data["hard"][r]] for r in run_ids}}), indent=2))
        return
    out = [f"# Agreement with people ({scope_line(data)})", "",
           comparison_table(data["results"], data["names"]), ""]
    if any(data["offline"].values()):
        out += [f"> {OFFLINE_NOTE}", ""]
    for run_id in run_ids:
        overall = data["results"][run_id]["overall"]
        out += [f"## {data['names'][run_id]}", "", breakdown_table(data["results"][run_id]), ""]
        if overall.get("human_loo_estimated"):
            out += [f"> rater vs others: {CEILING_ASSUMPTION}", ""]
        out += ["Confusion (rows: human majority, columns: judge)", "",
                confusion_table(overall), "", raw_confusion_title(overall), "",
                raw_confusion_table(overall), "", per_label_table(overall), ""]
        if data["hard"][run_id]:
            out += [f"Hard disagreements (two steps apart): {len(data['hard'][run_id])}", "",
                    disagreements_table(data["hard"][run_id], categories.get(run_id, {}),
                                        None if all_disagreements else 20), ""]
    click.echo("\n".join(out))
