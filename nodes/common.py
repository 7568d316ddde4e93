"""Small helpers every node shares: settings and store from the runtime, keys, languages."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from raer.nodes.context import ROLES, Context
from raer.nodes.server_settings import (
    ForbiddenSetting,
    ServerSettings,
    client_settings,
    server_context,
)
from raer.prompts import prompt_hashes
from raer.store import Store, already_open, open_store

# ids and languages are the store's (store/ids.py); re-exported for the nodes that name them
from raer.store.ids import (  # noqa: E402,F401
    LANGUAGE_NAMES,
    detect_language,
    judgment_id,
    key,
    language_name,
    normalise_query,
    query_id,
)


def settings_of(runtime: Any, state: Mapping[str, Any] | None = None) -> Context:
    """The run settings; a graph invoked without `context=` runs on the defaults. On the
    LangGraph server the context is a client's `ServerSettings`, completed by the operator's
    configuration (nodes/server_settings.py).

    A thread knows its own run: the first node stores the settings it started with in the
    state (`thread_settings`), and every later step — above all a resumed review, whose
    caller may not send the settings again — uses those, whatever context it was given.

    On the server (the runtime's context is a `ServerSettings`: the server coerces every
    run's context, given or not, to the graph's schema) a thread's state is a client's
    to write, so it is never trusted for the operator's part: only stored client choices
    are read, validated again as a client's, and completed by the operator's configuration.
    Full settings stored in state (`{"context": …}`) are a script's or the CLI's, whose
    caller is the operator; on the server they are ignored."""
    context = getattr(runtime, "context", None)
    stored = (state or {}).get("run_settings")
    if isinstance(context, ServerSettings):
        if isinstance(stored, Mapping) and "server" in stored:
            return _stored_settings(stored, on_server=True)
        return server_context(context)
    if stored:
        return _stored_settings(stored)
    return Context.coerce(context)


def thread_settings(runtime: Any) -> dict[str, Any]:
    """The runtime's settings as JSON for the thread's state. On the server only the
    client's choices are kept (the operator's part is read from its configuration again)."""
    context = getattr(runtime, "context", None)
    if isinstance(context, ServerSettings):
        return {"server": dataclasses.asdict(context)}
    return {"context": dataclasses.asdict(Context.coerce(context))}


_by_identity: dict[int, tuple[Mapping[str, Any], bool, Context]] = {}


def _stored_settings(stored: Mapping[str, Any], on_server: bool = False) -> Context:
    """A run's every branch carries the same settings object: known by identity, it is not
    serialised again for each node of each pair (the entry keeps the object alive, so its
    id is not reused)."""
    hit = _by_identity.get(id(stored))
    if hit is not None and hit[0] is stored and hit[1] == on_server:
        return hit[2]
    settings = _settings_from(json.dumps(stored, sort_keys=True, default=str), on_server)
    if len(_by_identity) >= 64:
        _by_identity.clear()
    _by_identity[id(stored)] = (stored, on_server, settings)
    return settings


@lru_cache(maxsize=64)
def _settings_from(blob: str, on_server: bool) -> Context:
    stored = json.loads(blob)
    if "server" in stored:
        return server_context(client_settings(stored["server"]))
    if on_server:  # unreachable through settings_of; kept so no caller can get it wrong
        raise ForbiddenSetting("a thread's state cannot carry the operator's settings")
    from raer.nodes.settings import from_thread_state

    return from_thread_state(stored["context"])


def store_for(settings: Context) -> Store:
    return open_store(settings.db_path)


async def store_of(settings: Context) -> Store:
    """The store, opened off the event loop (the LangGraph server rejects blocking I/O);
    once open, taken from the process's open stores without a thread."""
    return already_open(settings.db_path) or await asyncio.to_thread(store_for, settings)


async def open_run(settings: Context) -> tuple[Store, str]:
    """`start_run` off the event loop: it may create the file, migrate and read prompts."""
    return await asyncio.to_thread(start_run, settings)


_STARTED: set[tuple[str, str, str]] = set()


def start_run(settings: Context) -> tuple[Store, str]:
    """Open the store and make sure the run row exists; returns (store, run_id). Written
    once per process and run: the plan writes it before the first call, and the graph's
    first node (which must, on the LangGraph server, where no plan runs) finds it done."""
    store = store_for(settings)
    run_id = settings.run_id
    marker = (str(store.path), run_id, settings.images_root)
    if marker in _STARTED and store.run_row(run_id) is not None:
        return store, run_id
    store.ensure_run(run_id, settings.identity(),
                     {role: settings.endpoints[role].model for role in ROLES},
                     prompt_hashes(settings.prompt_set, settings.scale == "graded",
                                   settings.listwise),
                     settings.images_root)
    _STARTED.add(marker)
    return store, run_id
