"""A spending limit for a run (`max_cost`, USD): no call starts that could pass it.

Before each call the door reserves the call's worst-case cost (its prompt and the output
limit, at the model's price); after it, the reservation is replaced by the recorded cost.
The run's spending so far is read from llm_calls, so a resumed run counts what it already
spent. When the next call would pass the limit, `BudgetExhausted` stops the run cleanly:
finished pairs stay finished, the rest stay pending for a later run with a larger budget.
"""

from __future__ import annotations

import asyncio
import weakref
from contextlib import asynccontextmanager

from raer.store import Store


class BudgetExhausted(RuntimeError):
    pass


class Budget:
    def __init__(self, limit: float, spent: float):
        self.limit, self.spent, self.reserved = limit, spent, 0.0

    def reserve(self, amount: float) -> None:
        if self.spent + self.reserved + amount > self.limit:
            raise BudgetExhausted(
                f"the next call (up to ${amount:.4f}) would pass the budget of "
                f"${self.limit:.2f} (spent ${self.spent:.4f})")
        self.reserved += amount


_budgets: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Budget]] = (
    weakref.WeakKeyDictionary())


async def _budget(store: Store, run_id: str, limit: float) -> Budget:
    per_loop = _budgets.setdefault(asyncio.get_running_loop(), {})
    budget = per_loop.get(run_id)
    if budget is None or budget.limit != limit:
        spent = await asyncio.to_thread(store.run_spent, run_id)
        budget = per_loop.get(run_id)  # another branch may have made it meanwhile
        if budget is None or budget.limit != limit:
            budget = per_loop[run_id] = Budget(limit, spent)
    return budget


@asynccontextmanager
async def within_budget(store: Store, run_id: str, limit: float, worst_case: float | None):
    """Reserve `worst_case` (None: unpriced, counted as free) around one call; yields a
    callback that settles the reservation with the recorded cost."""
    if not limit:
        yield lambda cost: None
        return
    budget = await _budget(store, run_id, limit)
    amount = worst_case or 0.0
    budget.reserve(amount)
    settled = False

    def settle(cost: float | None) -> None:
        nonlocal settled
        budget.reserved -= amount
        budget.spent += cost or 0.0
        settled = True

    try:
        yield settle
    finally:
        if not settled:
            budget.reserved -= amount
