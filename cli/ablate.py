"""`raer ablate PAIRS --vary …`: two runs that differ in one setting, compared pair by pair."""

from __future__ import annotations

import asyncio
import json
import math

import click

from raer.cli.options import images_root_option, json_option, model_options, new_db_option
from raer.evals.ablation import VARIANTS, paired_comparison, variant_settings
from raer.evals.agreement import load_items
from raer.evals.report_data import OFFLINE_NOTE
from raer.evals.tables import ci, pct
from raer.nodes.inputs import read_pairs
from raer.nodes.settings import for_pairs_file
from raer.run.local import judge_pairs


@click.command()
@click.argument("pairs", type=click.Path(exists=True, dir_okay=False))
@new_db_option
@click.option("--vary", required=True, type=click.Choice([*VARIANTS, "judge-model"]))
@click.option("--judge-model-b", default="", help="The other judge for --vary judge-model.")
@click.option("--source", default="", help="Human-label source to compare against.")
@click.option("--split", default="", help="Only pairs of this split.")
@click.option("--resamples", default=1000, show_default=True)
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(1))
@images_root_option
@model_options
@json_option
def ablate(pairs: str, db_path: str, vary: str, judge_model_b: str, source: str, split: str,
           resamples: int, concurrency: int, images_root: str | None, as_json: bool,
           **models: str) -> None:
    """Judge PAIRS under both variants of one setting and compare their agreement."""
    base = for_pairs_file(pairs, db_path=db_path, images_root=images_root,
                          max_concurrency=concurrency, **models)
    variants = variant_settings(base, vary, judge_model_b)
    records = read_pairs(pairs)
    runs = []
    for name, settings in variants:
        click.echo(f"judging: {name} (run {settings.run_id})", err=True)
        asyncio.run(judge_pairs(records, settings))
        runs.append((name, settings.run_id))
    from raer.store import open_store

    store = open_store(db_path)
    items = [load_items(store, run_id, source, split) for _, run_id in runs]
    held_out = ""
    if vary == "feedback":
        # a reviewed pair's own label is among the examples: score only the others
        reviewed = store.resolved_review_pairs()
        items = [[i for i in run if (i.query_id, i.product_id) not in reviewed]
                 for run in items]
        held_out = (f"Scored on held-out pairs only: {len(reviewed)} reviewed (query, "
                    f"product) pairs left out.")
    result = paired_comparison(items[0], items[1], resamples)
    verdict = _verdict(vary, result)
    offline = any(s.endpoints["judge"].offline for _, s in variants)
    summary = {"vary": vary, "a": {"name": runs[0][0], "run_id": runs[0][1]},
               "b": {"name": runs[1][0], "run_id": runs[1][1]}, **result,
               "offline_model": offline, "held_out": held_out, "verdict": verdict}
    if as_json:
        click.echo(json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v)
                               for k, v in summary.items()}, indent=2))
        return
    click.echo(f"| variant | run | agreement % (n={result['pairs']}) |\n|---|---|---|\n"
               f"| A: {runs[0][0]} | {runs[0][1]} | {pct(result['agreement_a'])} |\n"
               f"| B: {runs[1][0]} | {runs[1][1]} | {pct(result['agreement_b'])} |\n\n"
               f"B − A: {pct(result['difference'])} points, 95% CI "
               f"{ci(result['difference_ci'])} (bootstrap over queries); McNemar exact "
               f"p = {result['mcnemar_p']:.3g} ({result['only_a_right']} pairs only A got "
               f"right, {result['only_b_right']} only B).")
    if held_out:
        click.echo(f"\n{held_out}")
    if verdict:
        click.echo(f"\n{verdict}")
    if offline:
        click.echo(f"\n> {OFFLINE_NOTE} Differences between its variants are noise.")


def _verdict(vary: str, result: dict) -> str:
    """For a change a team might adopt (reviewed examples), say whether the measurement
    supports it; nothing is switched on by this command."""
    if vary != "feedback":
        return ""
    low = result["difference_ci"][0]
    if result["pairs"] and not math.isnan(low) and low > 0:
        return ("Verdict: the reviewed examples improved agreement (the 95% interval is above "
                "0). Adopt them with `raer judge --learn-from-reviews`.")
    return ("Verdict: no measured improvement from the reviewed examples (the 95% interval "
            "includes 0 or lies below it). Not adopted: keep judging without "
            "--learn-from-reviews.")
