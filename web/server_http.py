"""Custom HTTP app for the LangGraph server (langgraph.json `http.app`).

Its middleware guards every request that can start or configure a run (runs, threads' runs,
batches, crons, assistants) or write a thread's state:
- a `context` (or `config.configurable`) key a client may not set — an endpoint, a key
  variable, the store path, a file root — or that does not exist is answered with 422 and
  a message naming it, before the server accepts the run; so is an input that is not a
  query with valid products (unknown keys, a product without a title), which the server
  would otherwise accept and the graph would drop or fail on, and a `webhook` (the server
  would send requests to a client's address);
- a thread's state is not a client's to write: state updates, a `command` with `update` or
  `goto`, and thread creation with `supersteps` are refused (403) unless the operator allows
  state edits; a resume must name the interrupts its thread is paused on and answer with a
  label, or it is refused before the thread changes.
The graph never reads the operator's settings from a thread's state either
(`raer.nodes.common.settings_of`): a client that gets a value into the state changes no
endpoint, key, store or file root.

`WebGuard` (web/guard.py) checks Host and Origin on every route and strips the CORS
headers the development server sends to every origin.

It also serves the review page at /review/ (web/review/app.py) on the operator's store.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from raer.nodes.inputs import InputError, check_query_input
from raer.nodes.server_settings import (
    OPERATOR_FIELDS,
    ForbiddenSetting,
    check_client_settings,
    operator_config,
)
from raer.nodes.state import QueryInput
from raer.store.scale import LABELS
from raer.web.guard import WebGuard
from raer.web.review.app import review_app

RUN_PATHS = re.compile(r"^/(runs|threads/[^/]+/runs|assistants|runs/crons|threads/[^/]+/"
                       r"runs/crons)(/.*)?$")
THREAD_RUNS = re.compile(r"^/threads/(?P<thread>[^/]+)/runs(/stream|/wait)?$")
THREAD_CREATE = re.compile(r"^/threads/?$")
STATE_UPDATE = re.compile(r"^/threads/[^/]+/state/?$")
WRITES = ("POST", "PATCH", "PUT")


class RejectOperatorSettings:
    """Pure ASGI: reads the body of requests that start, configure or write a run or a
    thread's state, checks it, replays it (see the module docstring)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or scope["method"] not in WRITES or not (
                RUN_PATHS.match(path) or THREAD_CREATE.match(path)
                or STATE_UPDATE.match(path)):
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        problem = await _problem(scope, body)
        if problem:
            status, detail = problem
            payload = json.dumps({"detail": detail}).encode()
            await send({"type": "http.response.start", "status": status, "headers": [
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


STATE_EDITS_OFF = ("a client may not write a thread's state on this server (the operator "
                   "allows it for a trusted single-user server with allow_state_edits / "
                   "RAER_ALLOW_STATE_EDITS=1)")


async def _problem(scope: Scope, body: bytes) -> tuple[int, str] | None:
    """(status, reason) for a request that must not reach the server, or None."""
    path, config = scope["path"], operator_config()
    if STATE_UPDATE.match(path):
        return None if config.allow_state_edits else (403, f"state update refused: "
                                                           f"{STATE_EDITS_OFF}")
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return None  # the server's own validation answers malformed JSON
    if THREAD_CREATE.match(path):
        if isinstance(data, dict) and data.get("supersteps") and not config.allow_state_edits:
            return 403, f"thread creation with supersteps refused: {STATE_EDITS_OFF}"
        return None
    if isinstance(data, list):  # POST /runs/batch: a list of run payloads
        items = data
    elif isinstance(data, dict):
        items = data.get("payloads") if isinstance(data.get("payloads"), list) else [data]
    else:
        return None
    items = [item for item in items if isinstance(item, dict)]
    try:
        for item in items:
            check_client_settings(item.get("context"))
            configurable = (item.get("config") or {}).get("configurable")
            if isinstance(configurable, dict):  # other keys there are LangGraph's own
                check_client_settings({k: v for k, v in configurable.items()
                                       if k in OPERATOR_FIELDS})
    except ForbiddenSetting as exc:
        return 422, f"run settings refused: {exc}"
    for item in items:
        if item.get("webhook"):
            return 422, ("webhook refused: the server sends requests only where its "
                         "operator decides")
        if item.get("input") is not None:
            problem = input_problem(item["input"])
            if problem:
                return 422, problem
        command = item.get("command")
        if command is not None:
            problem = await _command_problem(scope, command, config.allow_state_edits)
            if problem:
                return problem
    return None


async def _command_problem(scope: Scope, command: Any, edits: bool) -> tuple[int, str] | None:
    """A resume must answer the person's question the thread is paused on: its interrupt
    ids (checked against the thread's own state) and a label. `update` and `goto` write
    the thread's state and are refused unless the operator allows state edits."""
    if not isinstance(command, dict):
        return 422, "command must be a JSON object"
    other = sorted(set(command) - {"resume"})
    if other and not edits:
        return 403, f"command {other} refused: {STATE_EDITS_OFF}"
    if "resume" not in command:
        return None
    match = THREAD_RUNS.match(scope["path"])
    if not match:
        return 422, "a resume names its thread: POST /threads/{thread_id}/runs"
    pending = await _pending_interrupts(scope, match["thread"])
    if pending is None:
        return 404, "no such thread"
    if not pending:
        return 409, "resume refused: the thread is not paused for a person"
    resume = command["resume"]
    answers = (resume if isinstance(resume, dict) and resume and "label" not in resume
               else {None: resume})
    unknown = sorted(str(k) for k in answers if k is not None and k not in pending)
    if unknown:
        return 422, (f"resume refused: interrupt ids {unknown} are not the ones the thread "
                     f"is paused on ({sorted(pending)})")
    if None in answers and len(pending) > 1:
        return 422, "resume refused: the thread waits on several interrupts; name each id"
    for answer in answers.values():
        label = answer.get("label") if isinstance(answer, dict) else answer
        if label not in LABELS:
            return 422, f"resume refused: the label must be one of {list(LABELS)}"
    return None


async def _pending_interrupts(scope: Scope, thread: str) -> set[str] | None:
    """The ids of the interrupts a thread is paused on, asked of this server's own API on
    loopback (its listening port, never a client's Host header); None: no such thread."""
    import httpx

    port = (scope.get("server") or ("127.0.0.1", 80))[1]
    async with httpx.AsyncClient(timeout=30) as client:
        found = await client.get(f"http://127.0.0.1:{port}/threads/{thread}/state",
                                 headers={"host": f"127.0.0.1:{port}"})
    if found.status_code != 200:
        return None
    state = found.json()
    return {str(i.get("id")) for task in state.get("tasks") or []
            for i in task.get("interrupts") or [] if i.get("id")}


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
    from raer.web.review.app import config_from_environment

    config = operator_config()
    return dataclasses.replace(config_from_environment(config.db_path, config.images_root),
                               on_langgraph_server=True, allowed_hosts=config.allowed_hosts)


def _web_policy() -> tuple[tuple[str, ...], tuple[str, ...], int]:
    config = operator_config()
    return config.allowed_hosts, config.allowed_origins, config.max_body_bytes


# The review page at /review/, on the operator's store (web/review/app.py). WebGuard is
# outermost: it sees every route, the LangGraph API's own, and strips the CORS headers the
# development server adds for every origin.
app = Starlette(middleware=[Middleware(WebGuard, policy=_web_policy),
                            Middleware(RejectOperatorSettings)], lifespan=lifespan,
                routes=[Mount("/review", app=review_app(_review_config))])
