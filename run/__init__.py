"""The run engine: a plan prepared once (plan.py), executed in this process (local.py), in
worker processes (processes.py) or on Ray (ray.py); estimate.py prices a plan without running
it and stored.py rebuilds a stored run's settings. Every door calls it; none has a prelude
of its own.

    from raer.run import judge_pairs  # the Python API (imported on first use)
"""

from __future__ import annotations

from typing import Any

__all__ = ["judge_pairs", "prepare_run"]


def __getattr__(name: str) -> Any:
    # lazy: the CLI's no-op rerun and the worker planner import raer.run.* without the graph
    if name == "judge_pairs":
        from raer.run.local import judge_pairs

        return judge_pairs
    if name == "prepare_run":
        from raer.run.plan import prepare_run

        return prepare_run
    raise AttributeError(name)
