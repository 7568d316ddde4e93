"""Single-flight: concurrent branches asking for the same cached artefact make one call.

Two products of one query, or the same query from two engines' result lists, can reach the
guidelines or description step at the same moment; the first computes, the rest wait and then
read the cache. Locks are per event loop, keyed by the cache key.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary())


def _lock_for(key: str) -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    per_loop = _locks.setdefault(loop, {})
    lock = per_loop.get(key)
    if lock is None:
        lock = per_loop[key] = asyncio.Lock()
    return lock


async def once(key: str, lookup: Callable[[], T | None], compute: Callable[[], Awaitable[T]]) -> T:
    """Return the cached value for key, computing it at most once at a time across branches.

    `lookup` reads the store, so it runs in a worker thread, off the event loop.
    """
    found = await asyncio.to_thread(lookup)
    if found is not None:
        return found
    async with _lock_for(key):
        found = await asyncio.to_thread(lookup)
        if found is not None:
            return found
        return await compute()
