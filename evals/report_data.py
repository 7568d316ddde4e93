"""Everything an agreement report shows, computed once: `raer agree`, `raer report` and the
Python API share it."""

from __future__ import annotations

from typing import Any

from raer.evals.agreement import breakdown, hard_disagreements, load_items
from raer.evals.usage import cost_report
from raer.store import Store

OFFLINE_NOTE = ("The offline model (SmolLM2-135M) labels at chance level: its row shows the "
                "pipeline runs on real data, not that it judges relevance.")


def run_names(store: Store, run_ids: list[str]) -> dict[str, str]:
    names = {}
    for run_id in run_ids:
        run = store.run_models(run_id)
        if run is None:
            raise LookupError(f"no run {run_id!r}")
        settings, models = run["settings"], run["models"]
        if "baseline" in settings:
            names[run_id] = f"baseline: {settings['baseline']} ({run_id})"
        else:
            names[run_id] = f"judge {models.get('judge', '?')} ({run_id})"
    return names


def is_offline(store: Store, run_id: str) -> bool:
    run = store.run_models(run_id)
    models = run["models"] if run else {}
    return models.get("judge", "").startswith("SmolLM2")


def agreement_data(store: Store, run_ids: list[str], source: str = "", split: str = "",
                   resamples: int = 1000, common: bool = False,
                   ties: str = "median", labels: str = "judge") -> dict[str, Any]:
    """`labels`: the judge's own, or the effective labels (reviews win; see load_items).
    `common`: score every run on exactly the pairs all of them judged — a pair any run
    failed on, left pending or could not judge is dropped for every run (a fair comparison
    when a model run covers a sample and the baselines the whole split)."""
    names = run_names(store, run_ids)
    results, hard, items_by_run = {}, {}, {}
    for run_id in run_ids:
        items = load_items(store, run_id, source, split, ties, labels)
        if not items:
            raise LookupError(f"run {run_id} has no judgments with human labels"
                              + (f" of source {source!r}" if source else "")
                              + (f" in split {split!r}" if split else ""))
        items_by_run[run_id] = items
    if common:
        shared = set.intersection(*({(i.query_id, i.product_id) for i in items if i.judged}
                                    for items in items_by_run.values()))
        items_by_run = {r: [i for i in items if (i.query_id, i.product_id) in shared]
                        for r, items in items_by_run.items()}
    for run_id, items in items_by_run.items():
        results[run_id] = breakdown(items, resamples)
        hard[run_id] = hard_disagreements(items)
    return {"names": names, "results": results, "hard": hard, "items": items_by_run,
            "offline": {r: is_offline(store, r) for r in run_ids},
            "cost": {r: cost_report(store, r) for r in run_ids},
            "source": source, "split": split, "resamples": resamples, "common": common,
            "common_pairs": len(shared) if common else None, "ties": ties, "labels": labels}


def scope_line(data: dict[str, Any]) -> str:
    """What the figures were computed on, said the same way in every table and report."""
    parts = [data["source"] or "all label sources"]
    if data["split"]:
        parts.append(f"split {data['split']}")
    if data["common"]:
        parts.append(f"--common: every run scored on the same {data['common_pairs']} pairs, "
                     f"those all the runs judged")
    parts.append(f"{data['resamples']} bootstrap resamples over queries")
    parts.append(f"human majority ties broken by {data['ties']}")
    if data.get("labels") == "effective":
        parts.append("effective labels: a resolved review's label over the judge's")
    return "; ".join(parts)
