"""Judging on a Ray cluster: shards of queries as Ray tasks, their results merged into the
one store as they finish (`raer judge --ray ADDRESS`, the `raer[ray]` extra).

Design, for nodes that share no disk:
- The driver decides the work: pairs already finished in the run are skipped (a rerun of a
  finished run sends no task and makes no call), the rest are written as "pending" to the
  store first, then planned into shards of whole queries. Queries that share a packshot go
  to the same shard (union–find over query ↔ image), so a packshot is still described once
  and the run pays the minimum: one call per distinct image, two per query, one per pair.
- A task judges its shard with the ordinary graph into a SQLite store of its own, in a
  temporary folder on its node, and returns that file. The driver merges it into the store
  (`store/merge.py`) as soon as it arrives: same run id, same judgment ids as a local run.
- A node that dies takes its running tasks with it; Ray runs them again on another node
  (`max_retries`). Their shard stores were never merged, so nothing is written twice; what
  is paid twice is bounded by the shards that node had in flight, which the driver reports
  (each task tells a small ledger actor on the driver's node when it starts). A task that
  fails for good records its pairs as failed with the reason: no pair is ever dropped.
- The run's limits (calls in flight, requests and tokens per minute, spending) are divided
  among the tasks that run at once (the cluster's CPUs), as among local workers.
- Ray tasks cannot be `async def`; each wraps `asyncio.run`.
The embedded offline model is not shipped to nodes (each task would load its own copy):
`--ray` needs an endpoint. Local packshot paths must resolve on every node (shared storage),
or use URLs.

Safety, because a Ray cluster runs any code its clients send (CVE-2023-48022):
- `--ray` connects only with Ray's token authentication on (`RAY_AUTH_MODE=token` and the
  cluster's token in this process's environment or ~/.ray/auth_token), unless the operator
  says `--ray-insecure`. Ray's GCS and raylets listen on every interface whatever
  `--node-ip-address` says (seen with `ss -ltnp` on Ray 2.60): the token is the lock.
- No secret travels through Ray: the API key is not put in a runtime environment (Ray logs
  those on every node) and a base URL with credentials is refused (task arguments and the
  job table's command line keep it); each node reads the key from its own environment, set
  when the node was started.
- An address nothing answers at is refused at once, before Ray retries it for minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import sys
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raer.nodes.context import Context
from raer.nodes.inputs import Pair
from raer.nodes.settings import for_shard, worker_share
from raer.run.grouping import (
    QueryGroup,
    mark_pairs,
)
from raer.run.plan import RunPlan
from raer.store.merge import merge_store
from raer.store.redact import strip_credentials

SHARD_PAIRS = 100
TASK_RETRIES = 3


class RayUnavailable(RuntimeError):
    """--ray cannot be used here; the message says why."""


def plan_shards(groups: list[QueryGroup], target: int = SHARD_PAIRS) -> list[list[QueryGroup]]:
    """Whole queries, packed up to `target` pairs a shard; queries sharing a packshot always
    in the same shard (a shared component larger than `target` is one shard)."""
    parent = list(range(len(groups)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, group in enumerate(groups):
        for pair in group.pairs:
            if pair.image:
                j = owner.setdefault(pair.image, i)
                parent[root(i)] = root(j)
    components: dict[int, list[QueryGroup]] = defaultdict(list)
    for i, group in enumerate(groups):
        components[root(i)].append(group)
    shards: list[list[QueryGroup]] = [[]]
    size = 0
    for component in components.values():
        n = sum(len(g.pairs) for g in component)
        if size and size + n > target:
            shards.append([])
            size = 0
        shards[-1].extend(component)
        size += n
    return [s for s in shards if s]


def judge_shard(pairs: list[dict[str, Any]], fields: dict[str, Any], index: int = 0,
                ledger: Any = None, key_expected: bool = False, box: Any = None,
                key: str = "") -> bytes | str:
    """A Ray task: judge a shard into a store of its own on this node. With a result box
    the store's bytes go there and the task returns their key (they outlive a killed
    driver); without one it returns the bytes. It first tells the driver's ledger it
    started, so a rerun after a lost node is counted."""
    _remove_stale_shard_folders()
    key_env = fields.get("api_key_env", "")
    if key_expected and key_env not in os.environ:
        raise RuntimeError(f"{key_env} is set where raer judge runs but not on node "
                           f"{socket.gethostname()}: start every node with it in its "
                           f"environment (raer never sends keys through Ray)")
    if ledger is not None:
        import ray

        ray.get(ledger.started.remote(index))
    from raer.run.local import judge_pairs

    folder = Path(tempfile.mkdtemp(prefix=f"{SHARD_PREFIX}{os.getpid()}-"))
    try:
        settings = for_shard(fields, str(folder / "shard.db"))
        asyncio.run(judge_pairs([Pair(**p) for p in pairs], settings))
        from raer.store import open_store

        store = open_store(settings.db_path)
        store.checkpoint()
        store.close()
        data = (folder / "shard.db").read_bytes()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if box is None:
        return data
    import ray

    ray.get(box.put.remote(key, data))
    return key


SHARD_PREFIX = "raer-shard-"


def _remove_stale_shard_folders() -> None:
    """Shard folders of tasks killed on this node (their process is gone) are removed by
    the next task here: a killed task cannot clean up after itself."""
    for folder in Path(tempfile.gettempdir()).glob(f"{SHARD_PREFIX}*"):
        pid = folder.name[len(SHARD_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists() and sys.platform == "linux":
            shutil.rmtree(folder, ignore_errors=True)


class Ledger:
    """A Ray actor on the driver's node: how many times each shard's task started."""

    def __init__(self) -> None:
        self.starts: dict[int, int] = {}

    def started(self, index: int) -> None:
        self.starts[index] = self.starts.get(index, 0) + 1

    def counts(self) -> dict[int, int]:
        return dict(self.starts)


@dataclass
class RayReport:
    shards: int = 0
    merged: int = 0
    retried: int = 0
    """Shards whose task started more than once (a node died, or a task crashed)."""
    retried_pairs: int = 0
    """Their pairs: what may have been paid twice is bounded by these pairs' calls."""
    failed: int = 0
    recovered: int = 0
    """Shards an earlier, killed driver left finished but unmerged: merged, not paid again."""
    parallel: int = 0
    """Tasks run at once (the cluster's CPUs): each gets that share of the run's limits."""
    pairs: int = 0
    done: int = 0


def check_cluster_safety(settings: Context, address: str, insecure: bool = False,
                         environ: dict[str, str] | None = None) -> None:
    """Refuse, before anything is written or sent, a cluster connection that would run
    unauthenticated or carry a secret (see the module docstring)."""
    env = os.environ if environ is None else environ
    if not insecure and env.get("RAY_AUTH_MODE", "").lower() != "token":
        raise RayUnavailable(
            "--ray connects only to a cluster with Ray's token authentication: without it "
            "anyone who reaches the cluster's ports runs code on every node. Start each "
            "node and this command with RAY_AUTH_MODE=token and the cluster's token "
            "(RAY_AUTH_TOKEN, or ~/.ray/auth_token), or pass --ray-insecure for a cluster "
            "you have secured otherwise")
    for role, endpoint in settings.endpoints.items():
        if endpoint.base_url and strip_credentials(endpoint.base_url) != endpoint.base_url:
            raise RayUnavailable(
                f"the {role} endpoint's URL carries credentials: under --ray they would be "
                f"kept in Ray's task arguments and job table. Put the key in the variable "
                f"--api-key-env names, set on every node")
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if host and port.isdigit():
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
        except OSError as exc:
            raise RayUnavailable(f"nothing answers at {address} ({exc.strerror or exc}): "
                                 f"is the head started there?") from exc


def preflight(settings: Context, address: str, insecure: bool = False) -> None:
    """Everything that refuses a Ray run, checked before the plan writes anything."""
    try:
        import ray  # noqa: F401
    except ModuleNotFoundError as exc:
        raise RayUnavailable("--ray needs Ray: pip install 'raer[ray]'") from exc
    check_cluster_safety(settings, address, insecure)
    if settings.endpoints["judge"].offline:
        raise RayUnavailable("--ray needs a model endpoint (--base-url/--model): the "
                             "embedded offline model is not shipped to cluster nodes")
    if settings.learn_from_reviews or settings.batch or settings.review_mode == "interactive":
        raise RayUnavailable("--ray judges in tasks with stores of their own: it does not "
                             "combine with --learn-from-reviews, --batch or --interactive")


def judge_on_ray(plan: RunPlan, address: str, shard_pairs: int = SHARD_PAIRS,
                 on_progress: Callable[[RayReport], None] | None = None,
                 insecure: bool = False) -> tuple[list[dict[str, Any]], RayReport]:
    """Execute a plan (made with `prepare_run(..., mark=False)`) as Ray tasks on the
    cluster at `address`; one row per pair in input order (from the store) and a report
    of shards merged, retried and failed."""
    import ray

    preflight(plan.settings, address, insecure)
    settings, store, run_id = plan.settings, plan.store, plan.run_id
    report = RayReport(pairs=len(plan.pairs))
    work = _work_left(plan, report)
    if work:
        # Ray's driver prints cluster events ("(raylet) …") on stdout: keep stdout for
        # raer's own output (--json)
        with contextlib.redirect_stdout(sys.stderr):
            started_here = not ray.is_initialized()
            if started_here:
                ray.init(address=address, logging_level="WARNING", log_to_driver=False)
            try:
                box = _result_box(ray, run_id)
                # shards an earlier driver left unmerged (it was killed): merged, not paid
                report.recovered = _merge_recovered(ray, box, store)
                if report.recovered:
                    plan.refresh()
                    work = _work_left(plan, report)
                if work:
                    mark_pairs(store, run_id, [(g, g.pairs) for g in work], "pending")
                    _dispatch(ray, box, store, run_id, settings,
                              plan_shards(work, shard_pairs), report, on_progress)
                with contextlib.suppress(Exception):  # a box already gone needs no kill
                    if not ray.get(box.keys.remote()):
                        ray.kill(box)  # nothing left to recover: it goes with the run
            finally:
                if started_here:
                    ray.shutdown()
    return plan.rows(), report


def _work_left(plan: RunPlan, report: RayReport) -> list[QueryGroup]:
    work = [QueryGroup(g.query, g.language, g.query_type, todo) for g, todo in plan.work]
    report.done = report.pairs - sum(len(g.pairs) for g in work)
    return work


class ResultBox:
    """A detached Ray actor on the driver's node, one per run: each task puts its shard's
    store here before it ends, and the driver drops it only once merged. A driver killed
    mid-run leaves its finished shards here; the next driver of the same run merges them
    first instead of paying for them again."""

    def __init__(self) -> None:
        self.results: dict[str, bytes] = {}

    def put(self, key: str, data: bytes) -> None:
        self.results[key] = data

    def get(self, key: str) -> bytes | None:
        return self.results.get(key)

    def drop(self, key: str) -> None:
        self.results.pop(key, None)

    def keys(self) -> list[str]:
        return list(self.results)


HEAD_NODE = {"node:__internal_head__": 0.001}  # Ray's resource that only the head has


def _result_box(ray: Any, run_id: str) -> Any:
    """On the head node, which outlives the worker nodes (and the driver)."""
    return ray.remote(num_cpus=0)(ResultBox).options(
        name=f"raer-results-{run_id}", namespace="raer", lifetime="detached",
        get_if_exists=True, resources=HEAD_NODE).remote()


def _merge_recovered(ray: Any, box: Any, store: Any) -> int:
    merged = 0
    for key in ray.get(box.keys.remote()):
        data = ray.get(box.get.remote(key))
        if data:
            merge_store(store, data)
            merged += 1
        ray.get(box.drop.remote(key))
    return merged


def _dispatch(ray: Any, box: Any, store: Any, run_id: str, settings: Context,
              shards: list[list[QueryGroup]], report: RayReport,
              on_progress: Callable[[RayReport], None] | None) -> None:
    # the key stays out of Ray: each node reads it from its own environment; the task is
    # told only whether one is expected, to name a node started without it
    key_expected = bool(settings.api_key_env and settings.api_key_env in os.environ)
    # the run's limits are shared by the tasks that run at once (one per CPU of the cluster)
    parallel = max(1, min(len(shards), int(ray.cluster_resources().get("CPU", 1))))
    fields = worker_share(settings, parallel)
    task = ray.remote(max_retries=TASK_RETRIES, retry_exceptions=True)(judge_shard)

    # the ledger lives on the head node, which outlives the nodes it counts
    ledger = ray.remote(num_cpus=0)(Ledger).options(resources=HEAD_NODE).remote()
    report.shards, report.parallel = len(shards), parallel
    pending: dict[Any, list[QueryGroup]] = {}
    dispatch = uuid.uuid4().hex[:8]
    for index, shard in enumerate(shards):
        payload = [{**p.model_dump(), "language": g.language} for g in shard for p in g.pairs]
        pending[task.remote(payload, fields, index, ledger, key_expected, box,
                            f"{dispatch}-{index}")] = shard
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=5.0)
        for ref in ready:
            shard = pending.pop(ref)
            try:
                key = ray.get(ref)
                data = ray.get(box.get.remote(key))
            except Exception as exc:  # retries exhausted: record why, drop nothing
                report.failed += 1
                mark_pairs(store, run_id, [(g, g.pairs) for g in shard], "failed",
                           f"cluster task failed: {type(exc).__name__}: {exc}"[:1000])
                continue
            merge_store(store, data)  # in memory: no file left if the driver dies
            ray.get(box.drop.remote(key))  # only once merged
            report.merged += 1
            report.done += sum(len(g.pairs) for g in shard)
            if on_progress:
                on_progress(report)
    starts = ray.get(ledger.counts.remote())
    report.retried = sum(n > 1 for n in starts.values())
    report.retried_pairs = sum(sum(len(g.pairs) for g in shards[i])
                               for i, n in starts.items() if n > 1)
