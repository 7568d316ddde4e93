"""`raer calibrate`: fit the escalation threshold on human-labelled data, report it on other
data, and write the review-policy file `raer judge --review-policy` uses (evals/calibration.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from raer.cli.options import EXIT_BAD_INPUT, db_option, json_option, resolve_run
from raer.evals.calibration import (
    choose_threshold,
    escalation_at,
    policy,
    reliability,
    risk_coverage,
    scored_items,
)
from raer.store import open_store


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _line(name: str, e: dict) -> str:
    lift = "-" if e["lift"] is None else f"{e['lift']:.2f}×"
    return (f"| {name} | {e['pairs']} | {threshold_text(e['review_below'])} | "
            f"{_pct(e['review_share'])} | "
            f"{_pct(e['kept_agreement'])} | {_pct(e['base_error'])} | "
            f"{_pct(e['escalated_error'])} | {_pct(e['kept_error'])} | "
            f"{_pct(e['errors_caught'])} | {lift} |")


def threshold_text(value: float) -> str:
    """A threshold as it must be typed: exact (0.525 was printed 0.53, and typing 0.53 sent
    31% of pairs to people instead of 17%)."""
    return f"{value:.6g}"


HEADER = ("| data | pairs | review_below | sent to people | kept agree | error (all) | "
          "error (escalated) | error (kept) | errors caught | lift |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


@click.command()
@click.argument("run_id")
@db_option
@click.option("--source", required=True, help="Human labels to fit on (and test on).")
@click.option("--split", default="dev", show_default=True, help="Split to fit on.")
@click.option("--test-split", default="", help="Split to report on (e.g. test).")
@click.option("--test-run", default="",
              help="Report on this run's pairs instead (the same judge on other data).")
@click.option("--target-agreement", type=click.FloatRange(0, 1), default=None,
              help="Send the fewest pairs to people that keeps this agreement on the rest.")
@click.option("--max-review-share", type=click.FloatRange(0, 1), default=None,
              help="Or: the best kept agreement sending at most this share to people.")
@click.option("--bins", default=10, show_default=True, help="Reliability diagram bins.")
@click.option("--policy-out", type=click.Path(dir_okay=False), default="",
              help="Write the review-policy file here (for raer judge --review-policy).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default="",
              help="Write the reliability diagram and risk–coverage curve (SVG).")
@json_option
def calibrate(run_id: str, db_path: str, source: str, split: str, test_split: str,
              test_run: str, target_agreement: float | None, max_review_share: float | None,
              bins: int, policy_out: str, plot_path: str, as_json: bool) -> None:
    """Fit RUN_ID's escalation threshold on people's labels; report it on a held-out split."""
    if (target_agreement is None) == (max_review_share is None):
        raise click.UsageError("give exactly one of --target-agreement and --max-review-share")
    store = open_store(db_path)
    run_id = resolve_run(store, run_id)
    fit = scored_items(store, run_id, source, split)
    if not fit:
        click.echo(f"run {run_id} has no judged pairs with a confidence and human labels of "
                   f"{source!r} in split {split!r}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    curve = risk_coverage(fit)
    chosen = choose_threshold(curve, target_agreement, max_review_share)
    target = ({"target_agreement": target_agreement} if target_agreement is not None
              else {"max_review_share": max_review_share})
    written = policy(chosen, run_id, source, split, target)
    result = {"run": run_id, "fit": {"split": split, "reliability": reliability(fit, bins),
                                     "chosen": chosen, "curve": curve},
              "policy": written}
    test_run = resolve_run(store, test_run) if test_run else run_id
    test = scored_items(store, test_run, source, test_split) if test_split else []
    if test_split and not test:
        click.echo(f"no judged pairs in split {test_split!r} to report on", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if test:
        result["test"] = {"split": test_split, "run": test_run,
                          "reliability": reliability(test, bins),
                          "at_chosen": escalation_at(test, chosen["review_below"]),
                          "at_run_setting": escalation_at(test, _run_setting(store, test_run))}
    if policy_out:
        Path(policy_out).write_text(json.dumps(written, indent=2) + "\n", encoding="utf-8")
    if plot_path:
        from raer.evals.charts import calibration_panels

        Path(plot_path).write_text(calibration_panels(
            result["fit"]["reliability"], curve, chosen, f"{run_id} on {source} {split}"),
            encoding="utf-8")
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    fitted = result["fit"]["reliability"]
    out = [f"# Calibrated escalation for {run_id} ({source}; fit on {split or 'all'})", "",
           f"Judge confidence on {fitted['pairs']} pairs: mean {fitted['mean_confidence']:.2f}, "
           f"accuracy {_pct(fitted['accuracy'])}, ECE {fitted['ece']:.3f}.", "",
           "| confidence bin mean | accuracy | pairs |", "|---:|---:|---:|",
           *(f"| {b['confidence']:.2f} | {_pct(b['accuracy'])} | {b['pairs']} |"
             for b in fitted["bins"]), "",
           f"Target {target}: review_below = {threshold_text(chosen['review_below'])}"
           + ("" if chosen["met"] else " (the target is NOT reachable on this data; this is "
              "the closest threshold)"), "", HEADER, _line(f"fit ({split})", chosen)]
    if test:
        out += [_line(f"test ({test_split}), chosen", result["test"]["at_chosen"]),
                _line(f"test ({test_split}), the run's review_below (default 0.5)",
                      result["test"]["at_run_setting"]),
                "", f"Test ECE {result['test']['reliability']['ece']:.3f}. Goal: escalated "
                    "pairs hold at least twice the base error rate (lift ≥ 2)."]
    if policy_out:
        out += ["", f"policy written to {policy_out}: raer judge … --review-policy {policy_out}"]
    click.echo("\n".join(out))


def _run_setting(store, run_id: str) -> float:
    settings = json.loads(store.run_row(run_id)["settings"])
    return float(settings.get("review_below", 0.5))
