"""What a browser on another site, a rebinding DNS name or an oversized body must not do,
for every web door raer serves (the LangGraph server's app and the standalone review page).

Pure ASGI, outermost, so it sees every route — the LangGraph API's own included — and the
final response headers:
- **Host**: the Host header must name this machine's loopback (127.0.0.0/8, ::1,
  localhost), the address the server listens on, or a name the operator allows. A page on
  `evil.example` that re-points its DNS name at 127.0.0.1 (DNS rebinding) sends
  `Host: evil.example` and is refused.
- **Origin**: a request a browser marks as coming from another origin (the `Origin`
  header, sent with every cross-origin request and every POST) is refused with 403 unless
  the operator allows that origin by name; a preflight from it gets no CORS answer. CORS
  headers (`Access-Control-Allow-*`, `…-Private-Network`) reach only allowed origins: the
  LangGraph development server otherwise answers every origin with `*`.
- **Body size**: a declared or streamed body larger than the limit is answered 413 before
  the app reads it.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
CORS_PREFIX = b"access-control-"


def host_name(value: str) -> str:
    """The host part of a Host header or netloc, lower-case, without port or brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def is_loopback_name(name: str) -> bool:
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def same_origin(origin: str, host: str) -> bool:
    parts = urlsplit(origin)
    return bool(parts.scheme in ("http", "https") and parts.netloc
                and parts.netloc.lower() == host.strip().lower())


async def _answer(send: Send, status: int, detail: str) -> None:
    payload = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
        (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": payload})


class WebGuard:
    """See the module docstring. `policy` is read at each request (the LangGraph server
    reads its operator configuration once, after start): it returns (allowed hosts,
    allowed origins, body limit in bytes)."""

    def __init__(self, app: ASGIApp,
                 policy: Callable[[], tuple[Iterable[str], Iterable[str], int]],
                 setting_names: tuple[str, str] = ("allowed_hosts", "allowed_origins")):
        self.app = app
        self.policy = policy
        self.setting_names = setting_names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        hosts, origins, limit = self.policy()
        allowed_hosts = {h.lower() for h in hosts}
        allowed_origins = set(origins)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        name = host_name(host)
        listening = (scope.get("server") or ("", 0))[0] or ""
        if not (is_loopback_name(name) or name in allowed_hosts
                or (name and name == listening.lower() and _specific_address(listening))):
            await self._refuse(scope, send, 421, f"Host {host!r} refused: this server answers "
                               f"its own addresses and the names its operator allows "
                               f"({self.setting_names[0]})")
            return
        origin = headers.get("origin")
        if origin is not None and not same_origin(origin, host) and origin not in allowed_origins:
            await self._refuse(scope, send, 403, f"cross-origin request from {origin[:200]!r} "
                               f"refused: the operator allows origins by name "
                               f"({self.setting_names[1]})")
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _answer(send, 413, f"request body over {limit} bytes")
            return
        cors_allowed = origin is not None and origin in allowed_origins
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def filtered_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not cors_allowed:
                message = {**message, "headers": [
                    (k, v) for k, v in message.get("headers", [])
                    if not k.lower().startswith(CORS_PREFIX)]}
            await send(message)

        try:
            await self.app(scope, bounded_receive, filtered_send)
        except BodyTooLarge:
            await _answer(send, 413, f"request body over {limit} bytes")

    async def _refuse(self, scope: Scope, send: Send, status: int, detail: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await _answer(send, status, detail)


class BodyTooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"request body over {limit} bytes")


def _specific_address(host: str) -> bool:
    """An IP address the server's socket is bound to (a bound socket never has a name;
    0.0.0.0 and :: mean every interface and name no host)."""
    try:
        return not ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False
