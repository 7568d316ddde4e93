"""Asking a remote engine over HTTP: one client per engine, its limits, its credentials.

- credentials from the environment only, read here at request time, never logged, stored or
  put in an error message (errors name the engine, its URL without query string, and the
  status);
- TLS verified unless the operator's config says otherwise (or gives a CA bundle);
- redirects are not followed (an engine that redirects elsewhere would take the
  credentials with it);
- concurrency, a rate limit, a timeout per request, and retries with exponential backoff on
  timeouts, connection errors, 429 and 5xx (tenacity); any other 4xx fails at once with the
  engine's own reason (OpenSearch/Elasticsearch `error.reason`, Solr `error.msg`);
- a response is read up to MAX_RESPONSE_BYTES: an engine's answer is untrusted input.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
from typing import Any
from urllib.parse import urlsplit

import httpx
from aiolimiter import AsyncLimiter
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from raer.retrieve.config import Auth, EngineConfigError, Remote

MAX_RESPONSE_BYTES = 32 * 1024 * 1024
RETRIED_STATUSES = {429, 500, 502, 503, 504}


class EngineError(RuntimeError):
    """The engine could not answer a query; the message says which engine, query and why."""


class _Retryable(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def auth_headers(auth: Auth | None, engine: str) -> dict[str, str]:
    """The credentials' headers, from the environment; a missing variable is named."""
    if auth is None:
        return {}

    def env(name: str) -> str:
        value = os.environ.get(name, "")
        if not value:
            raise EngineConfigError(f"engine {engine}: auth needs the environment variable "
                                    f"{name}, which is not set")
        return value

    if auth.type == "basic":
        pair = f"{env(auth.username_env)}:{env(auth.password_env)}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
    if auth.type == "bearer":
        return {"Authorization": f"Bearer {env(auth.token_env)}"}
    if auth.type == "api_key":  # Elasticsearch API keys
        return {"Authorization": f"ApiKey {env(auth.token_env)}"}
    return {auth.header: env(auth.token_env)}


def where(url: str) -> str:
    """A URL as an error message may show it: no query string (it may carry a key)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def engine_reason(body: bytes) -> str:
    """The engine's own explanation of an error, if its body has one (first 300 chars)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body[:300].decode("utf-8", "replace").strip()
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):  # OpenSearch / Elasticsearch, Solr
        reason = error.get("reason") or error.get("msg") or error.get("type") or ""
        root = error.get("root_cause") or []
        if not reason and root and isinstance(root[0], dict):
            reason = root[0].get("reason", "")
        return str(reason)[:300]
    if isinstance(error, str):
        return error[:300]
    return json.dumps(data)[:300]


class EngineClient:
    """One engine's HTTP client; use `async with`."""

    def __init__(self, engine: Remote):
        self.engine = engine
        limits = engine.limits
        verify: bool | ssl.SSLContext = (ssl.create_default_context(cafile=limits.ca_file)
                                         if limits.ca_file else limits.verify_tls)
        self.headers = {"Accept": "application/json", "User-Agent": "raer-retrieve",
                        **engine.headers, **auth_headers(engine.auth, engine.name)}
        self.client = httpx.AsyncClient(
            verify=verify, follow_redirects=False, timeout=limits.timeout_s,
            limits=httpx.Limits(max_connections=limits.concurrency))
        self.slots = asyncio.Semaphore(limits.concurrency)
        self.rate = AsyncLimiter(limits.rate_per_s, 1) if limits.rate_per_s else None

    async def __aenter__(self) -> EngineClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.client.aclose()

    async def request(self, method: str, url: str, *, query: str, params: Any = None,
                      content: bytes | None = None, content_type: str = "") -> Any:
        """The parsed JSON answer; EngineError after the retries are spent."""
        name = self.engine.name
        headers = {**self.headers, **({"Content-Type": content_type} if content_type else {})}
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.engine.limits.retries + 1),
            wait=wait_exponential(multiplier=0.2, max=5),
            retry=retry_if_exception(lambda e: isinstance(e, _Retryable)), reraise=True)
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._once(method, url, params, content, headers)
        except _Retryable as exc:
            tries = self.engine.limits.retries + 1
            raise EngineError(f"engine {name} ({where(url)}): query {query!r}: {exc.reason} "
                              f"({tries} tries)") from None
        except EngineError as exc:
            raise EngineError(f"engine {name} ({where(url)}): query {query!r}: {exc}") from None
        raise AssertionError("unreachable")

    async def _once(self, method, url, params, content, headers) -> Any:
        async with self.slots:
            if self.rate:
                await self.rate.acquire()
            try:
                async with self.client.stream(method, url, params=params, content=content,
                                              headers=headers) as response:
                    body = await self._read(response)
            except httpx.TimeoutException:
                raise _Retryable(f"timed out after {self.engine.limits.timeout_s:g} s") from None
            except httpx.ConnectError as exc:
                if "CERTIFICATE_VERIFY_FAILED" in str(exc):  # not retried: it will not heal
                    raise EngineError("the engine's TLS certificate is not trusted (give its "
                                      "CA as limits.ca_file; verify_tls: false turns the "
                                      "check off)") from None
                raise _Retryable(f"cannot connect: {type(exc).__name__}") from None
            except httpx.TransportError as exc:
                raise _Retryable(f"cannot connect: {type(exc).__name__}") from None
        if response.status_code in RETRIED_STATUSES:
            raise _Retryable(f"HTTP {response.status_code}: {engine_reason(body)}")
        if 300 <= response.status_code < 400:
            raise EngineError(f"HTTP {response.status_code} redirect to "
                              f"{where(response.headers.get('location', '?'))}: not followed "
                              f"(give the engine's own URL)")
        if response.status_code >= 400:
            raise EngineError(f"HTTP {response.status_code}: {engine_reason(body)}")
        try:
            return json.loads(body)
        except ValueError:
            raise EngineError(f"the answer is not JSON: {body[:120]!r}") from None

    @staticmethod
    async def _read(response: httpx.Response) -> bytes:
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise EngineError(f"the answer is larger than {MAX_RESPONSE_BYTES >> 20} MiB")
            chunks.append(chunk)
        return b"".join(chunks)
