"""Which queries start now: enough to keep every model-call slot busy, no more.

A query makes two calls in a row (requirements, then guidelines) and then one branch per
product, each with at most one call in flight at a time (description, then judgment). So
`max_concurrency` calls in flight need about `max_concurrency` pairs past their query's first
two calls, plus the queries still making those. A query started beyond that only waits, and
waiting branches are what a run's memory is made of: with `--query-concurrency 128` and
20 products a query, 2,560 branches waited at once for 128 call slots.

So a query starts while fewer than `query_concurrency` queries run *and* fewer than
`PAIRS_PER_SLOT × max_concurrency` of the started queries' pairs are unfinished (a query
larger than that starts alone). Pairs count as finished as they are recorded, so the next
query starts as soon as there is room, not when the whole query ends. In Batch mode every
query starts at once (all requests of a stage should share one batch).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

PAIRS_PER_SLOT = 3


class Admission:
    def __init__(self, queries: int, pairs: int | None):
        self.queries, self.pairs = max(1, queries), pairs
        self.running = self.open_pairs = 0
        self._changed = asyncio.Condition()

    def _room_for(self, pairs: int) -> bool:
        if self.running >= self.queries:
            return False
        return self.pairs is None or self.open_pairs == 0 or (
            self.open_pairs + pairs <= self.pairs)

    @asynccontextmanager
    async def query(self, pairs: int) -> AsyncIterator[Ticket]:
        async with self._changed:
            await self._changed.wait_for(lambda: self._room_for(pairs))
            self.running += 1
            self.open_pairs += pairs
        ticket = Ticket(self, pairs)
        try:
            yield ticket
        finally:
            async with self._changed:
                self.running -= 1
                self.open_pairs -= ticket.open
                self._changed.notify_all()

    def pair_finished(self, ticket: Ticket) -> None:
        """Called on the event loop as each pair is recorded (no await: progress hooks)."""
        if ticket.open:
            ticket.open -= 1
            self.open_pairs -= 1
            asyncio.get_running_loop().create_task(self._wake())

    async def _wake(self) -> None:
        async with self._changed:
            self._changed.notify_all()


class Ticket:
    """A started query's pairs not yet recorded."""

    def __init__(self, admission: Admission, pairs: int):
        self.admission, self.open = admission, pairs

    def finished(self) -> None:
        self.admission.pair_finished(self)
