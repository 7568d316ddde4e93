"""The run plan: everything a judging run decides before its first model call, decided once.

Every door (the Python API, `raer judge` in one process, `--workers`, `--ray`, a rerun of a
stored run) calls `prepare_run`, and every executor takes the plan it returns, so a rule
of the run holds for all of them. Before this module each executor had its own prelude,
and they drifted: a product whose content changed was refused in one process but silently
overwritten under `--workers` or `--ray`, and the run row was written twice.

In order, and nothing written until the input is known good:
1. products whose stored content differs are refused (a product id names one product);
2. the pairs are grouped by query identity (store/ids.py: the same identity a label import
   gives them) and their judgment ids made once;
3. pairs finished in this run are skipped: with nothing left, the plan is finished and the
   caller answers from the store (no model, no client, no call);
4. with a first stage (`--first-stage`, run/cascade.py), the pairs it is sure of are
   recorded as judged, with no model call, and only the rest stay as work;
5. otherwise the embedded model is checked, the run row written (once), and every pair to
   do marked "pending" before any call, so a kill leaves nothing unaccounted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raer.nodes.common import start_run, store_for
from raer.nodes.context import Context
from raer.nodes.inputs import InputError, Pair
from raer.nodes.models.offline import require_offline_model
from raer.run.cascade import record_kept, split_work
from raer.run.grouping import (
    QueryGroup,
    group_by_query,
    in_input_order,
    mark_pairs,
    unfinished,
)
from raer.store import Store


@dataclass
class RunPlan:
    settings: Context
    store: Store | None
    """None only for a plan that writes nothing (a dry run) on a store not made yet."""
    run_id: str
    pairs: list[Pair]
    groups: list[QueryGroup]
    work: list[tuple[QueryGroup, list[Pair]]]
    """Each query with pairs left to judge, and those pairs (queries with none are left out)."""
    finished_before: int
    """Pairs of the input already finished in this run before it started."""
    first_stage_kept: int = 0
    """Pairs the first stage labelled in this plan (recorded with no model call)."""

    @property
    def finished(self) -> bool:
        return not self.work

    @property
    def pairs_to_judge(self) -> int:
        return sum(len(todo) for _, todo in self.work)

    def refresh(self) -> None:
        """Recompute the work left from the store (another process may have finished some:
        a worker that died, a shard merged from an earlier driver)."""
        assert self.store is not None
        done = self.store.finished_pairs(self.run_id)
        self.work = [(g, todo) for g, todo in unfinished(self.groups, self.run_id, done) if todo]

    def rows(self) -> list[dict[str, Any]]:
        assert self.store is not None, "a dry-run plan has no rows"
        """One judgment row per input pair, in input order; a pair with no row yet (a run
        that stopped before reaching it) reads as pending."""
        rows = in_input_order(self.pairs, self.groups, self.run_id,
                              self.store.run_judgments(self.run_id))
        return [row or {"status": "pending", "label": None, "error": None} for row in rows]


def product_conflicts(store: Store, pairs: list[Pair], db_path: str) -> InputError | None:
    """The input error for products stored with other content, or None."""
    distinct = {p.product_id: p for p in pairs}.values()
    conflicts = store.product_conflicts([p.product().model_dump() for p in distinct])
    if not conflicts:
        return None
    return InputError([(db_path, None, "product_id",
                        f"{pid!r} is stored with other {', '.join(fields)}; a product id "
                        f"names one product: give the changed product a new id")
                       for pid, fields in conflicts])


def prepare_run(pairs: Iterable[Pair], settings: Context, *, mark: bool = True,
                write: bool = True) -> RunPlan:
    """The plan for judging `pairs` with `settings` (see the module docstring). `mark=False`
    plans without writing pending rows (an executor that marks its own work as it hands it
    out, such as Ray after merging an earlier driver's shards); `write=False` writes nothing
    at all and needs no model (the dry run's estimate prices this same plan)."""
    pairs = list(pairs)
    exists = Path(settings.db_path).exists()
    if write and not exists:  # nothing is finished in a store not made yet
        require_offline_model(settings)  # refused before the store is created
    store = store_for(settings) if write or exists else None
    conflict = product_conflicts(store, pairs, settings.db_path) if store else None
    if conflict:
        raise conflict
    groups = group_by_query(pairs)
    run_id = settings.run_id
    done = store.finished_pairs(run_id) if store and store.run_row(run_id) else set()
    work = [(g, todo) for g, todo in unfinished(groups, run_id, done) if todo]
    finished_before = len(pairs) - sum(len(t) for _, t in work)
    kept, left = split_work(settings, run_id, work)
    plan = RunPlan(settings, store, run_id, pairs, groups, left,
                   finished_before=finished_before, first_stage_kept=len(kept))
    if (plan.finished and not kept) or not write:
        return plan
    if plan.work:
        require_offline_model(settings)  # before the run row or any pair is written
    start_run(settings)
    record_kept(store, work, kept)
    if mark:
        mark_pairs(store, run_id, left, "pending")
    return plan
