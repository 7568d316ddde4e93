"""Judging on several cores: queries handed to worker processes as they have room, one store.

One event loop saturates one core (the benchmark's CPU per pair), so `--workers N` runs N
processes, each with its own event loop and HTTP client. A query's pairs stay together (its
requirements and guidelines are made once). Workers ask the driver for their next query
when their admission has room for one (run/admission.py), so all of them stay busy to
the end: fixed shards by hash left one worker judging alone for the last fifth of a run.
They write to the same store, which already serves several processes: WAL, an IMMEDIATE
write lock, and cross-process claims on model calls in flight, so a packshot two workers
share is still described once (the second waits for the first's answer).

The run's limits are the run's, not each worker's: calls in flight, requests and tokens per
minute and the spending limit are divided among the workers. A worker that dies (killed,
out of memory) leaves its unfinished pairs pending in the store; the queries it was given
go back to the front of the line for a new worker (at most `RESTARTS` per worker), and their
finished pairs are skipped, so nothing is lost or judged twice. Progress reaches the driver
through a queue, as counts.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import multiprocessing
import os
import queue as queue_module
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from raer.nodes.common import store_for
from raer.nodes.context import Context
from raer.nodes.inputs import Pair
from raer.nodes.settings import for_worker, worker_share
from raer.run.grouping import QueryGroup, pair_judgment_id
from raer.run.plan import RunPlan

RESTARTS = 2


SMALL_JOB = 500  # pairs below which one process wins: a worker takes ~1.5 s to start


def default_workers(settings: Context, pairs: int) -> int:
    """The machine's cores; 1 for a small job, and 1 for the embedded offline model: it
    already uses every core for one model process, and a copy per worker would only compete
    for them."""
    if settings.endpoints["judge"].offline or pairs < SMALL_JOB:
        return 1
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else os.cpu_count() or 1)


def die_with_parent(parent: int) -> None:
    """End this process when the driver does, even when it is killed with SIGKILL (a
    daemon process is only ended by a driver that exits normally; orphans went on judging
    and paying indefinitely). Linux: the kernel sends SIGKILL at the parent's death
    (prctl PR_SET_PDEATHSIG); everywhere: a thread that sees the parent change."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the driver died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="raer-parent-watch", daemon=True).start()


def _work(index: int, fields: dict[str, Any], inbox: Any, messages: Any,
          parent: int = 0) -> None:
    """A worker process: ask for a query when there is room for one, judge it, report
    progress as counts and each query as done; ends when the driver has no more."""
    if parent:
        die_with_parent(parent)
    from raer.run.local import judge_queries

    settings = for_worker(fields)

    def report(progress: Any) -> None:
        tally = store.tally(settings.run_id)
        messages.put(("progress", index, os.getpid(), progress.done, progress.skipped,
                      progress.failed, progress.escalated, tally.calls, tally.tokens,
                      tally.cost_usd))

    async def queries() -> Any:
        while True:
            messages.put(("want", index))
            item = await asyncio.to_thread(inbox.get)
            if item is None:
                return
            key, group_fields, pairs = item
            todo = [Pair(**p) for p in pairs]
            group = QueryGroup(**group_fields, pairs=todo)
            keys[id(group)] = key
            yield group, todo

    def done(group: QueryGroup) -> None:
        messages.put(("done", index, keys.pop(id(group))))

    keys: dict[int, int] = {}
    store = store_for(settings)  # the driver's plan wrote the run row
    asyncio.run(judge_queries(queries(), settings, on_progress=report, on_query_done=done))
    tally = store.tally(settings.run_id)
    messages.put(("finished", index, tally.calls, tally.tokens, tally.cost_usd))


@dataclass
class WorkerProgress:
    """What the driver knows, summed over workers (calls: this invocation's)."""

    total: int
    done: int = 0
    skipped: int = 0
    failed: int = 0
    escalated: int = 0
    calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    restarts: int = 0
    skipped_before: int = 0
    """Pairs finished before this invocation (no worker was given them)."""
    per_worker: dict[int, tuple] = field(default_factory=dict)

    banked: list[float] = field(default_factory=lambda: [0.0] * 7)
    """The counts of workers that died (a restarted worker counts again from zero)."""
    pids: dict[int, int] = field(default_factory=dict)
    dead: set[int] = field(default_factory=set)

    def bank(self, index: int) -> None:
        """A worker died: keep what it counted; its messages still queued are ignored."""
        values = self.per_worker.pop(index, None)
        if values is not None:
            self.banked = [b + v for b, v in zip(self.banked, values, strict=True)]
            self.dead.add(self.pids[index])

    def update(self, index: int, pid: int, values: tuple) -> None:
        if pid in self.dead:
            return
        self.pids[index] = pid
        self.per_worker[index] = values
        sums = [b + sum(v[i] for v in self.per_worker.values())
                for i, b in enumerate(self.banked)]
        (self.done, self.skipped, self.failed, self.escalated, self.calls, self.tokens,
         self.cost_usd) = sums
        self.skipped += self.skipped_before


def judge_with_workers(plan: RunPlan, workers: int,
                       on_progress: Callable[[WorkerProgress], None] | None = None
                       ) -> tuple[list[dict[str, Any]], WorkerProgress]:
    """Execute a plan in `workers` processes; returns one judgment row per pair, in input
    order (from the store), and the summed progress. The plan has already refused changed
    products and marked its work pending; a finished plan starts no process."""
    settings, store, run_id, work = plan.settings, plan.store, plan.run_id, plan.work
    items = {key: (key, {"query": g.query, "language": g.language,
                         "query_type": g.query_type},
                   [p.model_dump() | {"language": g.language} for p in todo])
             for key, (g, todo) in enumerate(work)}
    line = collections.deque(items)  # queries not yet given to a worker, in input order
    given: dict[int, set[int]] = {i: set() for i in range(workers)}
    share = worker_share(settings, workers)
    context = multiprocessing.get_context("spawn")  # no forked event loops or connections
    messages = context.Queue()
    inboxes = {i: context.Queue() for i in range(workers)}
    progress = WorkerProgress(total=len(plan.pairs))
    progress.skipped = progress.skipped_before = plan.finished_before + plan.first_stage_kept
    running: dict[int, Any] = {}
    restarts = {i: 0 for i in range(workers)}

    def start(index: int) -> None:
        inboxes[index] = context.Queue()  # a dead worker's inbox may hold an unread query
        proc = context.Process(target=_work, args=(index, share, inboxes[index], messages,
                                                   os.getpid()),
                               name=f"raer-worker-{index}", daemon=True)
        proc.start()
        running[index] = proc

    for index in range(min(workers, len(work))):
        start(index)
    while running:
        try:
            message = messages.get(timeout=0.5)
        except queue_module.Empty:
            message = None
        if message and message[0] == "want":
            index = message[1]
            key = line.popleft() if line else None
            if key is not None:
                given[index].add(key)
            if index in running:
                inboxes[index].put(items[key] if key is not None else None)
        elif message and message[0] == "done":
            given[message[1]].discard(message[2])
        elif message and message[0] == "progress":
            # per worker process: a restarted worker counts again from zero (a dead
            # worker's counts are banked; its late messages are ignored)
            progress.update(message[1], message[2], message[3:])
            if on_progress:
                on_progress(progress)
        for index, proc in list(running.items()):
            if proc.is_alive():
                continue
            proc.join()
            del running[index]
            if not given[index] and (proc.exitcode == 0 or not line):
                continue
            progress.bank(index)  # what it finished stays counted
            # its queries go back to the front of the line, without their finished pairs
            done_pairs = store.finished_pairs(run_id)
            for key in sorted(given[index], reverse=True):
                group, todo = work[key]
                left = [p for p in todo if pair_judgment_id(run_id, group, p) not in done_pairs]
                if left:
                    items[key] = (key, items[key][1], [p.model_dump() | {
                        "language": group.language} for p in left])
                    line.appendleft(key)
            given[index].clear()
            if restarts[index] < RESTARTS:
                restarts[index] += 1
                progress.restarts += 1
                start(index)
        if line and not running:  # every worker gave up: the rest stay pending
            break
    while True:  # the last messages of processes that finished meanwhile
        try:
            message = messages.get_nowait()
        except queue_module.Empty:
            break
        if message[0] == "progress":
            progress.update(message[1], message[2], message[3:])
    return plan.rows(), progress
