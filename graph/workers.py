"""Judging on several cores: queries sharded across worker processes, one store.

One event loop saturates one core (the benchmark's CPU per pair), so `--workers N` runs N
processes, each with its own event loop and HTTP client, each judging a shard of the
queries (a query's pairs stay together: its requirements and guidelines are made once).
They write to the same SQLite store, which already serves several processes: WAL, an
IMMEDIATE write lock, and cross-process claims on model calls in flight, so a packshot two
shards share is still described once (the second process waits for the first's answer).

The run's limits are the run's, not each worker's: calls in flight, requests and tokens per
minute and the spending limit are divided among the workers. A worker that dies (killed,
out of memory) leaves its unfinished pairs pending in the store; its shard is started again
(at most `RESTARTS` times), and finished pairs are skipped, so nothing is lost or judged
twice. Progress reaches the driver through a queue, as counts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import math
import multiprocessing
import os
import queue as queue_module
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from raer.graph.grouping import group_by_query, in_input_order, unfinished
from raer.nodes.common import normalise_query, start_run
from raer.nodes.context import Context
from raer.nodes.inputs import Pair

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


def shard_of(query: str, language: str, workers: int) -> int:
    digest = hashlib.sha256(f"{normalise_query(query)}\x1f{language}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % workers


def worker_settings(settings: Context, workers: int) -> Context:
    """Each worker's share of the run's limits (identity fields untouched: same run id)."""
    share = {"max_concurrency": max(1, math.ceil(settings.max_concurrency / workers)),
             "query_concurrency": max(1, math.ceil(settings.query_concurrency / workers))}
    for name in ("requests_per_minute", "tokens_per_minute", "max_cost"):
        value = getattr(settings, name)
        if value:
            share[name] = value / workers
    return dataclasses.replace(settings, **share)


def _fields(settings: Context) -> dict[str, Any]:
    # not the dataclass itself: its cached endpoints do not pickle
    return {f.name: getattr(settings, f.name) for f in dataclasses.fields(Context)}


def _work(index: int, pairs: list[dict[str, Any]], fields: dict[str, Any],
          messages: Any) -> None:
    """A worker process: judge its shard, report progress as counts."""
    from raer.graph.api import judge_pairs

    settings = Context(**fields)

    def report(progress: Any) -> None:
        tally = store.tally(settings.run_id)
        messages.put(("progress", index, progress.done, progress.skipped, progress.failed,
                      progress.escalated, tally.calls, tally.tokens, tally.cost_usd))

    store, _ = start_run(settings)
    asyncio.run(judge_pairs([Pair(**p) for p in pairs], settings, on_progress=report))
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

    def update(self, index: int, values: tuple) -> None:
        self.per_worker[index] = values
        sums = [sum(v[i] for v in self.per_worker.values()) for i in range(7)]
        (self.done, self.skipped, self.failed, self.escalated, self.calls, self.tokens,
         self.cost_usd) = sums
        self.skipped += self.skipped_before


def judge_with_workers(pairs: list[Pair], settings: Context, workers: int,
                       on_progress: Callable[[WorkerProgress], None] | None = None
                       ) -> tuple[list[dict[str, Any]], WorkerProgress]:
    """Judge `pairs` in `workers` processes; returns one judgment row per pair, in input
    order (from the store), and the summed progress."""
    store, run_id = start_run(settings)
    finished = store.finished_pairs(run_id)  # a rerun starts no process for finished work
    shards: list[list[dict[str, Any]]] = [[] for _ in range(workers)]
    groups = group_by_query(pairs)
    for group, todo in unfinished(groups, run_id, finished):
        index = shard_of(group.query, group.language, workers)
        shards[index] += [{**p.model_dump(), "language": group.language} for p in todo]
    share = _fields(worker_settings(settings, workers))
    context = multiprocessing.get_context("spawn")  # no forked event loops or connections
    messages = context.Queue()
    progress = WorkerProgress(total=len(pairs))
    progress.skipped = progress.skipped_before = len(pairs) - sum(len(s) for s in shards)
    running: dict[int, Any] = {}
    restarts = {i: 0 for i in range(workers)}

    def start(index: int) -> None:
        proc = context.Process(target=_work, args=(index, shards[index], share, messages),
                               name=f"raer-worker-{index}", daemon=True)
        proc.start()
        running[index] = proc

    for index, shard in enumerate(shards):
        if shard:
            start(index)
    finished: set[int] = set()
    while running:
        try:
            message = messages.get(timeout=0.5)
        except queue_module.Empty:
            message = None
        if message and message[0] == "progress":
            # a restarted worker counts again from zero, its earlier pairs as skipped
            progress.update(message[1], message[2:])
            if on_progress:
                on_progress(progress)
        elif message and message[0] == "finished":
            finished.add(message[1])
        for index, proc in list(running.items()):
            if proc.is_alive():
                continue
            proc.join()
            del running[index]
            if index in finished or proc.exitcode == 0:
                continue
            if restarts[index] < RESTARTS:  # died: its finished pairs are skipped on restart
                restarts[index] += 1
                progress.restarts += 1
                start(index)
    while True:  # the last messages of processes that finished meanwhile
        try:
            message = messages.get_nowait()
        except queue_module.Empty:
            break
        if message[0] == "progress":
            progress.update(message[1], message[2:])
    rows = in_input_order(pairs, groups, run_id, store.run_judgments(run_id))
    return [row or {"status": "pending", "label": None, "error": None} for row in rows], progress
