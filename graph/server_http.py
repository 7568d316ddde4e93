"""Custom HTTP app for the LangGraph server (langgraph.json `http.app`).

Its middleware guards every request that can start or configure a run (runs, threads' runs,
crons, assistants): a `context` (or `config.configurable`) key a client may not set — an
endpoint, a key variable, the store path, a file root — or that does not exist is answered
with 422 and a message naming it, before the server accepts the run; so is an input that is
not a query with valid products (unknown keys, a product without a title), which the
server would otherwise accept and the graph would drop or fail on. The server would
otherwise drop unknown keys silently; the graph's own `ServerSettings` schema is the second
line of defence.

It also serves the review page at /review/ (graph/review/app.py) on the operator's store.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from raer.graph.review.app import review_app
from raer.nodes.inputs import InputError, check_query_input
from raer.nodes.server_settings import (
    OPERATOR_FIELDS,
    ForbiddenSetting,
    check_client_settings,
    operator_config,
)
from raer.nodes.state import QueryInput

GUARDED = re.compile(r"^/(runs|threads/[^/]+/runs|assistants|runs/crons|threads/[^/]+/runs/"
                     r"crons)(/.*)?$")


class RejectOperatorSettings:
    """Pure ASGI: reads the body of guarded POST/PATCH/PUT requests, checks it, replays it."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] not in ("POST", "PATCH", "PUT")
                or not GUARDED.match(scope["path"])):
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        problem = _problem(body)
        if problem:
            payload = json.dumps({"detail": problem}).encode()
            await send({"type": "http.response.start", "status": 422, "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode())]})
            await send({"type": "http.response.body", "body": payload})
            return
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _problem(body: bytes) -> str:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return ""  # the server's own validation answers malformed JSON
    if not isinstance(data, dict):
        return ""
    items = data.get("payloads") if isinstance(data.get("payloads"), list) else [data]
    try:
        for item in items:
            if not isinstance(item, dict):
                continue
            check_client_settings(item.get("context"))
            configurable = (item.get("config") or {}).get("configurable")
            if isinstance(configurable, dict):  # other keys there are LangGraph's own
                check_client_settings({k: v for k, v in configurable.items()
                                       if k in OPERATOR_FIELDS})
    except ForbiddenSetting as exc:
        return f"run settings refused: {exc}"
    for item in items:
        if isinstance(item, dict) and item.get("input") is not None:
            problem = input_problem(item["input"])
            if problem:
                return problem
    return ""


def input_problem(value: object) -> str:
    """What is wrong with a run's input, or "": an object with exactly QueryInput's keys, a
    query and valid products (the same check the graph's first node makes)."""
    if not isinstance(value, dict):
        return "input refused: it must be a JSON object {query, products, language?}"
    unknown = sorted(set(value) - set(QueryInput.__annotations__))
    if unknown:
        return (f"input refused: unknown keys {unknown}; the graph takes "
                f"{sorted(QueryInput.__annotations__)}")
    try:
        check_query_input(value)
    except InputError as exc:
        return f"input refused: {exc}"
    return ""


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    # Read the operator's configuration once, off the event loop (the server rejects
    # blocking file and environment reads made on it), before the first request.
    await asyncio.to_thread(operator_config)
    yield


def _review_config():
    from raer.graph.review.app import config_from_environment

    config = operator_config()
    return dataclasses.replace(config_from_environment(config.db_path, config.images_root),
                               on_langgraph_server=True)


# The review page at /review/, on the operator's store (graph/review/app.py).
app = Starlette(middleware=[Middleware(RejectOperatorSettings)], lifespan=lifespan,
                routes=[Mount("/review", app=review_app(_review_config))])
