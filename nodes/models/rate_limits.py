"""Requests-per-minute and tokens-per-minute limits per endpoint (aiolimiter leaky buckets).

Limiters are shared by every call to the same base URL in this process (per event loop), so
concurrent queries together stay under the provider's limits instead of provoking 429s.
"""

from __future__ import annotations

import asyncio
import weakref

from aiolimiter import AsyncLimiter

from raer.nodes.context import Context

_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop,
                                     dict[tuple[str, str, float], AsyncLimiter]] = (
    weakref.WeakKeyDictionary())


def _limiter(base_url: str, kind: str, per_minute: float) -> AsyncLimiter:
    per_loop = _limiters.setdefault(asyncio.get_running_loop(), {})
    key = (base_url, kind, per_minute)
    if key not in per_loop:
        per_loop[key] = AsyncLimiter(per_minute, 60)
    return per_loop[key]


async def rate_limit(base_url: str, settings: Context, tokens: int) -> None:
    """Wait until one more request of about `tokens` tokens fits the endpoint's limits."""
    if settings.requests_per_minute:
        await _limiter(base_url, "requests", settings.requests_per_minute).acquire()
    if settings.tokens_per_minute:
        limiter = _limiter(base_url, "tokens", settings.tokens_per_minute)
        await limiter.acquire(min(tokens, settings.tokens_per_minute))
