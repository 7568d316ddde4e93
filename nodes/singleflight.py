"""Single-flight: concurrent branches asking for the same cached artefact make one call.

Two products of one query, or the same query from two engines' result lists, can reach the
guidelines or description step at the same moment; the first computes, the rest wait and then
read the cache. Locks are per event loop, keyed by the cache key, and dropped when nobody
holds or waits for them (a 20,000-pair run would otherwise keep 37,000 of them).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

T = TypeVar("T")
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop,
                                  dict[str, tuple[asyncio.Lock, list[int]]]] = (
    weakref.WeakKeyDictionary())


@asynccontextmanager
async def _holding(key: str) -> AsyncIterator[None]:
    per_loop = _locks.setdefault(asyncio.get_running_loop(), {})
    lock, users = per_loop.setdefault(key, (asyncio.Lock(), [0]))
    users[0] += 1
    try:
        async with lock:
            yield
    finally:
        users[0] -= 1
        if not users[0]:
            del per_loop[key]


async def once(key: str, lookup: Callable[[], T | None] | None,
               compute: Callable[[], Awaitable[T]]) -> T:
    """Return the cached value for key, computing it at most once at a time across branches.

    `lookup` reads the store, so it runs in a worker thread, off the event loop; None when
    `compute` looks in the store itself (one trip instead of two)."""
    async with _holding(key):
        if lookup is not None:
            found = await asyncio.to_thread(lookup)
            if found is not None:
                return found
        return await compute()
