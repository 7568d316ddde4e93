"""The calls in flight at once, handed out by priority.

A run's `max_concurrency` is a number of slots. A call waiting for one waits in priority
order, first come first served within a priority: a query's own calls (requirements,
guidelines) before product calls (descriptions, judgments). A new query's first two calls
unlock twenty product calls; queued behind other queries' product calls they kept the next
wave from being ready when the slots came free, and the slots went idle between waves.
`waiting` tells the run's admission (run/admission.py) whether more queries are needed.

One set of slots per event loop and limit (asyncio objects belong to one loop).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

QUERY_CALL, PRODUCT_CALL = 0, 1


class CallSlots:
    def __init__(self, limit: int):
        self.limit = max(1, limit)
        self.in_flight = 0
        self.waiting = 0  # callers waiting now (a count: read on every acquisition)
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @asynccontextmanager
    async def slot(self, priority: int = PRODUCT_CALL) -> AsyncIterator[None]:
        if self.in_flight < self.limit and not self.waiting:
            self.in_flight += 1
        else:
            future = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiters, (priority, next(self._order), future))
            self.waiting += 1
            try:
                await future  # the releasing call counted us in
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self._release()  # handed a slot just as we were cancelled
                else:
                    self.waiting -= 1  # its entry stays in the heap, skipped when popped
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        self.in_flight -= 1
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():  # skip callers cancelled while waiting
                self.in_flight += 1
                self.waiting -= 1
                future.set_result(None)
                return


_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, CallSlots]] = (
    weakref.WeakKeyDictionary())


def call_slots(limit: int) -> CallSlots:
    """This event loop's slots for a limit (a later run with another limit gets its own)."""
    per_loop = _per_loop.setdefault(asyncio.get_running_loop(), {})
    slots = per_loop.get(limit)
    if slots is None:
        slots = per_loop[limit] = CallSlots(limit)
    return slots
