"""`raer cascade fit|report`: the cheap first-stage judge (nodes/models/first_stage.py,
evals/cascade.py, run/cascade.py).

    raer cascade fit --db D --source esci-us --fit-split dev --target-agreement 0.7 -o fs.json
    raer judge pairs.jsonl --first-stage fs.json      # kept pairs cost no model call
    raer cascade report fs.json --db D --source esci-us --split test [--llm-run RUN]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from raer.cli.options import EXIT_BAD_INPUT, db_option, json_option, resolve_run, ties_option
from raer.store import open_store


@click.group()
def cascade() -> None:
    """Fit and measure the first-stage judge that labels the pairs it is sure of."""


@cascade.command("fit")
@db_option
@click.option("--source", required=True, help="Human labels to fit on.")
@click.option("--fit-split", default="dev", show_default=True, help="The only split fitted on.")
@ties_option
@click.option("--target-agreement", type=click.FloatRange(0, 1), default=None,
              help="Keep the most pairs whose out-of-fold agreement reaches this.")
@click.option("--max-onward-share", type=click.FloatRange(0, 1), default=None,
              help="Or: the best kept agreement sending at most this share onward.")
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="The model file to write (JSON).")
@click.option("--run-split", "run_splits", multiple=True,
              help="Also write the model's labels for this split as a run (repeatable), for "
                   "`raer agree` and `raer calibrate`.")
@json_option
def fit(db_path: str, source: str, fit_split: str, ties: str, target_agreement: float | None,
        max_onward_share: float | None, out_path: str, run_splits: tuple[str, ...],
        as_json: bool) -> None:
    """Fit the first stage on FIT_SPLIT's human labels; choose where it stops trusting itself
    on out-of-fold predictions (raer calibrate's rule); write the model file."""
    from raer.evals.cascade import first_stage_run, fit_first_stage

    if (target_agreement is None) == (max_onward_share is None):
        raise click.UsageError("give exactly one of --target-agreement and --max-onward-share")
    store = open_store(db_path)
    try:
        model = fit_first_stage(store, source, fit_split, ties, target_agreement,
                                max_onward_share)
        runs = {split: first_stage_run(store, model, source, split, ties)
                for split in run_splits}
    except ValueError as exc:
        click.echo(f"bad input: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    Path(out_path).write_text(json.dumps(model.to_json(), indent=1) + "\n", encoding="utf-8")
    result = {"model": out_path, "digest": model.digest,
              "keep_at_or_above": model.keep_at_or_above, "fitted_on": model.fitted_on,
              "runs": runs}
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    oof = model.fitted_on["out_of_fold"]
    met = "" if model.fitted_on["target_met"] else " (target NOT reachable: closest point)"
    click.echo(f"first stage {model.digest} fitted on {model.fitted_on['pairs']} pairs of "
               f"{source} {fit_split}; keeps pairs with confidence >= "
               f"{model.keep_at_or_above:.6g}{met}: out of fold {_pct(1 - oof['onward_share'])} "
               f"kept at {_pct(oof['kept_agreement'])} agreement. Written to {out_path}.")
    for split, run_id in runs.items():
        click.echo(f"run for {split}: {run_id}")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


@cascade.command("report")
@click.argument("model_path", type=click.Path(dir_okay=False))
@db_option
@click.option("--source", required=True, help="Human labels to measure against.")
@click.option("--split", default="test", show_default=True,
              help="Split to report on (not the one fitted on).")
@click.option("--llm-run", default="", help="An LLM run over those pairs: measure the cascade.")
@json_option
def report(model_path: str, db_path: str, source: str, split: str, llm_run: str,
           as_json: bool) -> None:
    """The first stage on a held-out split against the lexical baseline as a first stage."""
    from raer.evals.cascade import cascade_report
    from raer.nodes.models.first_stage import FirstStageError, load_first_stage

    store = open_store(db_path)
    try:
        model = load_first_stage(model_path)
        result = cascade_report(store, model, source, split,
                                resolve_run(store, llm_run) if llm_run else "")
    except (FirstStageError, ValueError) as exc:
        click.echo(f"bad input: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    lines = [f"# First stage on {source} {split} (fitted on {result['fit_split']}; target "
             f"{result['target']})", "",
             "| first stage | pairs | keep ≥ | kept | sent onward | kept agree | kept κ | "
             "agree (all) | κ (all) |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["stages"]:
        lines.append(f"| {r['first_stage']} | {r['pairs']} | {r['keep_at_or_above']:.4g} | "
                     f"{r['kept']} | {_pct(r['onward_share'])} | {_pct(r['kept_agreement'])} "
                     f"| {_num(r['kept_kappa'])} | {_pct(r['agreement_all'])} | "
                     f"{_num(r['kappa_all'])} |")
    c = result.get("cascade")
    if c:
        lines += ["", f"Cascade with {c['llm_run']} on {c['pairs']} pairs it labelled: "
                      f"agreement {_pct(c['agreement'])} (κ {_num(c['kappa'])}) vs the LLM alone "
                      f"{_pct(c['llm_alone_agreement'])} (κ {_num(c['llm_alone_kappa'])}); "
                      f"LLM calls saved {_pct(c['llm_calls_saved_share'])}, to people "
                      f"{_pct(c['to_people_share'])}."]
    click.echo("\n".join(lines))


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
