"""Which queries start now: enough to keep every model-call slot busy, not many more.

A query makes two calls in a row (requirements, then guidelines) and then one branch per
product, each with at most one call in flight at a time (description, then judgment).
Started all at once (`--query-concurrency 128`, 20 products a query), 2,560 branches waited
for 128 call slots: the waiting branches were most of a run's memory. Started only as room
freed, queries moved in waves: a wave's products filled the slots, then every slot idled
while the next wave made its first two calls (measured: 46 of 64 slots busy on average).

So one admitter starts queries in input order while fewer than `query_concurrency` run, and
  - fewer calls wait for a slot than there are slots (more work is needed soon), and
  - the started queries' unfinished pairs stay under `PAIRS_PER_SLOT × max_concurrency`
    (the memory bound; a query larger than that starts alone).
A new query's first calls go ahead of queued product calls (nodes/models/call_slots.py), so
its products are ready as the slots free. Pairs count as finished as they are recorded. In
Batch mode every query starts at once (each stage's requests should share one batch).
"""

from __future__ import annotations

import asyncio

from raer.nodes.models.call_slots import CallSlots

PAIRS_PER_SLOT = 6
RECHECK_SECONDS = 0.05  # while blocked, how often the admitter looks at the waiting calls


class Admission:
    def __init__(self, queries: int, pairs: int | None, slots: CallSlots | None):
        self.queries, self.pairs, self.slots = max(1, queries), pairs, slots
        self.running = self.open_pairs = 0
        self._changed = asyncio.Event()

    def _room_for(self, pairs: int) -> bool:
        if self.running >= self.queries:
            return False
        if self.pairs is None or self.running == 0:
            return True
        demand_low = self.slots is None or self.slots.waiting < self.slots.limit
        return demand_low and self.open_pairs + pairs <= self.pairs

    async def start(self, pairs: int) -> Ticket:
        """Wait until a query of `pairs` pairs may start; the ticket ends with `done`."""
        while not self._room_for(pairs):
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), RECHECK_SECONDS)
            except TimeoutError:
                pass
        self.running += 1
        self.open_pairs += pairs
        return Ticket(self, pairs)

    def _update(self) -> None:
        self._changed.set()


class Ticket:
    """A started query: its pairs not yet recorded."""

    def __init__(self, admission: Admission, pairs: int):
        self.admission, self.open = admission, pairs

    def finished(self) -> None:
        """A pair was recorded (called on the event loop by the progress stream)."""
        if self.open:
            self.open -= 1
            self.admission.open_pairs -= 1
            self.admission._update()

    def done(self) -> None:
        self.admission.running -= 1
        self.admission.open_pairs -= self.open
        self.open = 0
        self.admission._update()
