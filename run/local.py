"""The in-process executor, and the Python API: judge many pairs, one graph run per query,
concurrently, resumably.

    from raer.run import judge_pairs
    results = await judge_pairs(read_pairs("pairs.jsonl"), Context(db_path="raer.db"))

Pairs already finished in this run (same settings → same run id) are skipped, so a rerun
makes no model call and an interrupted run continues where it stopped. Queries run
concurrently up to `query_concurrency`; model calls are bounded by `max_concurrency`.
Interactive review (settings.review_mode == "interactive") needs a `reviewer` callback that
is given the interrupt's payload and returns a label.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from raer.graph.build import build_graph
from raer.nodes.common import store_for
from raer.nodes.context import Context
from raer.nodes.inputs import Pair
from raer.nodes.models.budget import BudgetExhausted
from raer.nodes.models.call_slots import call_slots
from raer.nodes.models.door import in_flight_limit, pooled_clients
from raer.run.admission import PAIRS_PER_SLOT, Admission, Ticket
from raer.run.grouping import (
    QueryGroup,
    group_by_query,
    mark_pairs,
    pair_judgment_id,
)
from raer.run.plan import RunPlan, prepare_run
from raer.store import StoreFull, is_disk_full

__all__ = ["Progress", "QueryGroup", "group_by_query", "judge_pairs", "judge_plan",
           "judge_queries", "pair_judgment_id"]

EARLY_STOP_PAIRS = 20
"""A run stops starting queries when this many pairs have failed and none was judged."""

Reviewer = Callable[[dict[str, Any]], Awaitable[str]]
ProgressHook = Callable[["Progress"], None]


@dataclass
class Progress:
    total: int
    skipped: int = 0
    done: int = 0
    failed: int = 0
    escalated: int = 0
    statuses: dict[str, int] = field(default_factory=dict)


async def _run_query(graph: Any, group: QueryGroup, todo: list[Pair], settings: Context,
                     reviewer: Reviewer | None, progress: Progress,
                     on_progress: ProgressHook | None, ticket: Ticket) -> None:
    state = {"query": group.query, "language": group.language, "query_type": group.query_type,
             "products": [p.product().model_dump() for p in todo]}
    config = {"configurable": {"thread_id": f"raer-{uuid.uuid4().hex}"},
              "max_concurrency": max(1, settings.max_concurrency)}
    payload: Any = state
    while True:
        async for update in graph.astream(payload, config=config, context=settings,
                                          stream_mode="updates"):
            for summary in (update.get("judge_product") or {}).get("judgments", []):
                progress.statuses[summary["status"]] = (
                    progress.statuses.get(summary["status"], 0) + 1)
                progress.done += 1
                progress.failed += summary["status"] == "failed"
                progress.escalated += summary["status"] == "escalated"
                ticket.finished()
                if on_progress:
                    on_progress(progress)
        if reviewer is None:
            return
        snapshot = await graph.aget_state(config)
        if not snapshot.interrupts:
            return
        answers = {item.id: await reviewer(item.value) for item in snapshot.interrupts}
        payload = Command(resume=answers)


async def judge_pairs(pairs: Iterable[Pair], settings: Context, *,
                      reviewer: Reviewer | None = None,
                      on_progress: ProgressHook | None = None) -> list[dict[str, Any]]:
    """Judge pairs; returns one judgment row per pair (from the store), in input order."""
    if settings.review_mode == "interactive" and reviewer is None:
        raise ValueError("interactive review needs a reviewer callback")
    plan = await asyncio.to_thread(prepare_run, pairs, settings)
    await judge_plan(plan, reviewer=reviewer, on_progress=on_progress)
    return plan.rows()


async def judge_plan(plan: RunPlan, *, reviewer: Reviewer | None = None,
                     on_progress: ProgressHook | None = None) -> None:
    """Execute a plan in this process (the in-process executor)."""
    progress = Progress(total=len(plan.pairs),
                        skipped=plan.finished_before + plan.first_stage_kept)

    async def queries() -> AsyncIterator[tuple[QueryGroup, list[Pair]]]:
        for group, todo in plan.work:
            yield group, todo

    if plan.work:
        await judge_queries(queries(), plan.settings, reviewer=reviewer,
                            on_progress=on_progress, progress=progress,
                            queries_in_all=len(plan.groups))


async def judge_queries(queries: AsyncIterator[tuple[QueryGroup, list[Pair]]],
                        settings: Context, *, reviewer: Reviewer | None = None,
                        on_progress: ProgressHook | None = None,
                        on_query_done: Callable[[QueryGroup], None] | None = None,
                        progress: Progress | None = None, queries_in_all: int = 0) -> None:
    """Judge queries as they come (their pairs already marked pending in the store): each
    is started when the run's admission has room for it (run/admission.py), so a source
    that hands out work on demand (a `--workers` process) takes no more than it can judge."""
    store, run_id = store_for(settings), settings.run_id  # the plan wrote the run row
    interactive = settings.review_mode == "interactive"
    graph = build_graph().compile(checkpointer=InMemorySaver() if interactive else None)
    progress = progress or Progress(total=0)
    # In batch mode every query runs at once, so each stage's requests share one batch.
    admission = Admission(max(1, queries_in_all), None, None) if settings.batch else Admission(
        settings.query_concurrency, PAIRS_PER_SLOT * max(1, settings.max_concurrency),
        call_slots(in_flight_limit(settings.endpoints["judge"], settings)))
    stop = asyncio.Event()
    full: list[BaseException] = []
    running: set[asyncio.Task] = set()

    def _stop_full(exc: BaseException) -> None:
        """A full disk stops the run at once: no query starts and the running ones are
        cancelled, so no call is paid whose answer cannot be stored (only those already in
        flight are); their pairs stay pending for the same command once there is room."""
        if not full:
            full.append(exc)
        stop.set()
        for task in running:
            if task is not asyncio.current_task():
                task.cancel()

    def _nothing_works() -> None:
        """The first EARLY_STOP_PAIRS pairs all failed and none was judged (a wrong model
        name, a refused key): no new query starts; the rest stay pending for the same
        command once the cause is fixed, instead of every pair paying its retries."""
        if progress.failed >= EARLY_STOP_PAIRS and progress.done <= progress.failed:
            stop.set()

    async def run(group: QueryGroup, todo: list[Pair], ticket: Ticket) -> None:
        try:
            await _run_query(graph, group, todo, settings, reviewer if interactive else None,
                             progress, on_progress, ticket)
        except BudgetExhausted:
            stop.set()
        except Exception as exc:  # never lose a pair: record why the query failed
            if is_disk_full(exc):
                _stop_full(exc)
                return
            try:
                await asyncio.to_thread(mark_pairs, store, run_id, [(group, todo)], "failed",
                                        f"{type(exc).__name__}: {exc}"[:1000])
            except Exception as again:
                if not is_disk_full(again):
                    raise
                _stop_full(again)
                return
            progress.failed += len(todo)
            if on_progress:
                on_progress(progress)
        finally:
            _nothing_works()
            ticket.done()
            if on_query_done:
                on_query_done(group)

    async with pooled_clients():  # this run's HTTP clients, closed when it ends
        async for group, todo in queries:
            ticket = await admission.start(len(todo))
            if stop.is_set():  # the budget ran out: the rest stay pending for a later run
                ticket.done()
                break
            task = asyncio.create_task(run(group, todo, ticket))
            running.add(task)
            task.add_done_callback(running.discard)
        results = await asyncio.gather(*running, return_exceptions=True)
    if full:
        if isinstance(full[0], StoreFull):
            raise full[0]
        raise StoreFull(f"{settings.db_path}: the disk is full ({full[0]}); the run stopped "
                        f"at once. What was written is whole; free space and run the same "
                        f"command again to judge the pending pairs")
    for result in results:
        if isinstance(result, Exception):
            raise result
