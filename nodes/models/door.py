"""The one door for models: every structured call goes through `structured_call`.

instructor is the structured-output engine: per endpoint it asks for the answer as a JSON
schema response format (which llama.cpp turns into a grammar and OpenAI honours), a tool call,
JSON mode or JSON in a markdown block (`output_mode`; "auto" tries them in that order once per
endpoint and remembers the first one accepted), parses and validates the answer against the
pydantic schema with a validation context (so a judgment inconsistent with its own inputs is
re-asked, nodes/schemas.py), and builds the re-ask from the validation error.

The transport under instructor is this module's: a LangChain ChatOpenAI client per endpoint
(so LangSmith traces stay nested under the graph's nodes, and tests swap `make_chat_model`),
the in-flight bound, rate limits, the run's budget, the OpenAI Batch API, a lenient clean-up
of the answer text (code fences, raw control characters) before instructor parses it, and one
llm_calls row per attempt (node, model, prompt hash, exact messages, raw output, parsed
result, tokens, latency, cost, temperature, output mode, error). Transport faults (429, 5xx,
timeouts) are retried inside the OpenAI client, which honours Retry-After, and never re-asked.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit
from uuid import uuid4

import instructor
from instructor.core.exceptions import InstructorRetryException
from instructor.core.hooks import Hooks
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, convert_to_messages
from openai import BadRequestError
from openai.types.chat import ChatCompletion
from pydantic import BaseModel

from raer.nodes.context import Context, Endpoint
from raer.nodes.models import offline
from raer.nodes.models.adapters import chat_openai_class, instructor_call
from raer.nodes.models.batch import ask_in_batch
from raer.nodes.models.budget import BudgetExhausted, within_budget
from raer.nodes.models.call_slots import PRODUCT_CALL, QUERY_CALL, call_slots
from raer.nodes.models.offline import offline_base_url
from raer.nodes.models.prices import estimate_cost, image_tokens
from raer.nodes.models.rate_limits import rate_limit
from raer.store import Store
from raer.store.store import abandon_claim, claim_owner, ensure_room

CLAIM_POLL_SECONDS = 0.25
# instructor logs each failed attempt at ERROR; every attempt is already an llm_calls row,
# and a CLI user should not see a stack of log lines for a re-ask that then succeeded.
logging.getLogger("instructor").setLevel(logging.CRITICAL)

T = TypeVar("T", bound=BaseModel)
Message = dict[str, Any]
MAX_OUTPUT_TOKENS = 1024
BATCH_DISCOUNT = 0.5  # OpenAI's Batch API price
REASK_ECHO_CHARS = 800
REASK_TEMPERATURE = 0.5
MODES = {"json_schema": instructor.Mode.JSON_SCHEMA, "tools": instructor.Mode.TOOLS,
         "json": instructor.Mode.JSON, "md_json": instructor.Mode.MD_JSON}
AUTO_ORDER = ("json_schema", "tools", "json", "md_json")
QUERY_NODES = frozenset({"extract_requirements", "draft_guidelines"})  # first in line


class StructuredCallFailed(RuntimeError):
    """No valid answer after the re-asks, or the endpoint failed; the reason is recorded."""

    def __init__(self, reason: str, raw: str = "", call_id: int | None = None,
                 unchecked: BaseModel | None = None):
        super().__init__(reason)
        self.reason, self.raw, self.call_id = reason, raw, call_id
        self.unchecked = unchecked
        """The last answer, when it is valid against the schema and failed only the checks
        against its inputs (the validation context): the caller decides what to do with
        it (the judge escalates it to a person)."""


@dataclass(frozen=True)
class CallResult(Generic[T]):
    parsed: T
    call_id: int
    model: str


# The clients of one batch of work (`pooled_clients`), or None: the shared default clients.
_pooled: contextvars.ContextVar[dict[tuple, BaseChatModel] | None] = contextvars.ContextVar(
    "raer_pooled_clients", default=None)


@cache
def _deadline_clients() -> tuple[type, type]:
    """httpx clients (the SDK's defaults: httpx's pool and aiohttp's) whose every request
    ends by its deadline, body included: httpx's and aiohttp's timeouts are per read, so a
    server dripping a byte a second kept a 5-second request alive for half a minute. A
    request past its deadline raises httpx's ReadTimeout, which the SDK retries as it
    retries any timeout (`--max-retries`)."""
    import httpx
    from openai import DefaultAioHttpClient, DefaultAsyncHttpxClient

    class Deadline:
        deadline: float

        async def send(self, request: Any, **kwargs: Any) -> Any:
            try:
                async with asyncio.timeout(self.deadline):
                    return await super().send(request, **kwargs)  # type: ignore[misc]
            except TimeoutError as exc:
                raise httpx.ReadTimeout(f"no complete answer within {self.deadline:g} s "
                                        f"(--request-timeout)", request=request) from exc

    class DeadlineHttpx(Deadline, DefaultAsyncHttpxClient):
        pass

    class DeadlineAioHttp(Deadline, DefaultAioHttpClient):
        pass

    return DeadlineHttpx, DeadlineAioHttp


def _http_client(timeout: float, pooled: bool) -> Any:
    kind = _deadline_clients()[1 if pooled else 0]
    client = kind(timeout=timeout)
    client.deadline = timeout
    return client


def _new_chat_openai(base_url: str, model: str, api_key: str, timeout: float,
                     max_retries: int, pooled: bool = False) -> BaseChatModel:
    return chat_openai_class()(base_url=base_url, model=model, api_key=api_key,
                                timeout=timeout, max_retries=max_retries,
                                max_completion_tokens=MAX_OUTPUT_TOKENS,
                                http_async_client=_http_client(timeout, pooled))


_shared_chat_openai = lru_cache(maxsize=32)(_new_chat_openai)


def _chat_openai(base_url: str, model: str, api_key: str, timeout: float,
                 max_retries: int) -> BaseChatModel:
    """The endpoint's client: inside `pooled_clients`, one over aiohttp owned by that scope;
    elsewhere (the LangGraph server, scripts calling the graph) a shared httpx one."""
    pooled = _pooled.get()
    if pooled is None or urlsplit(base_url).username is not None:
        # (credentials in the URL: aiohttp refuses them beside the key's header; httpx
        # sends them as the operator wrote them)
        return _shared_chat_openai(base_url, model, api_key, timeout, max_retries)
    key = (base_url, model, api_key, timeout, max_retries)
    if key not in pooled:
        pooled[key] = _new_chat_openai(*key, pooled=True)
    return pooled[key]


@asynccontextmanager
async def pooled_clients() -> AsyncIterator[None]:
    """Model clients over aiohttp for the work done inside, closed when it ends.

    httpx's connection pool walks every connection on each request (~9% of a pair's CPU at
    128 calls in flight); aiohttp's does not. An aiohttp session belongs to the event loop
    that opened it, so these clients live in a scope on one loop (a `raer judge` run, a
    worker, a Ray task) and are closed with it, never shared across loops."""
    clients: dict[tuple, BaseChatModel] = {}
    token = _pooled.set(clients)
    try:
        yield
    finally:
        _pooled.reset(token)
        for chat in clients.values():
            root = getattr(chat, "root_async_client", None)
            if root is not None:
                await root.close()


def make_chat_model(role: str, settings: Context) -> tuple[BaseChatModel, str]:
    """(chat model, model name) for a role. The only place a client is built."""
    endpoint = settings.endpoints[role]
    timeout = settings.request_timeout
    if endpoint.offline:
        base_url, api_key = offline_base_url(settings.offline_threads), "offline"
        timeout = max(timeout, offline.MIN_TIMEOUT)
    else:
        # Keys stay in the environment; "unset" lets keyless local servers (vLLM, Ollama) work.
        base_url, api_key = endpoint.base_url, os.environ.get(endpoint.api_key_env, "unset")
    chat = _chat_openai(base_url, endpoint.model, api_key, timeout, settings.max_retries)
    return chat, endpoint.model


def in_flight_limit(endpoint: Endpoint, settings: Context) -> int:
    """Calls in flight at once: the run's limit, and for the embedded model no more than its
    decoding slots (the others queue here, with no timeout running)."""
    if endpoint.offline:
        return min(settings.max_concurrency, offline.SLOTS)
    return settings.max_concurrency


def estimate_prompt_tokens(messages: list[Message], model: str = "", image_side: int = 512,
                           prices: str = "") -> int:
    """A deliberately high guess: 3 characters a token, and an image (raer sends packshots
    at most `image_side` pixels a side) at the tokens the model's provider bills for it
    (nodes/models/prices.py: gpt-4o-mini bills ~33 times gpt-4o's)."""
    per_image = image_tokens(model, image_side, image_side, prices)
    total = 0
    for m in messages:
        content = m.get("content") or ""
        if isinstance(content, str):
            total += len(content) // 3 + 4
        else:
            for part in content:
                is_image = isinstance(part, dict) and part.get("type") == "image_url"
                total += per_image if is_image else len(str(part.get("text", ""))) // 3 + 4
        total += len(json.dumps(m.get("tool_calls") or "")) // 3
    return total


def _price(model: str, inp: int, out: int, cached: int, settings: Context) -> float | None:
    cost = estimate_cost(model, inp, out, cached, settings.prices)
    return cost * BATCH_DISCOUNT if cost is not None and settings.batch else cost


def _usage(answer: AIMessage | None) -> tuple[int, int, int]:
    usage = getattr(answer, "usage_metadata", None) or {}
    cached = (usage.get("input_token_details") or {}).get("cache_read") or 0
    return usage.get("input_tokens", 0), usage.get("output_tokens", 0), cached


@lru_cache(maxsize=32)
def response_format(schema: type[BaseModel]) -> dict[str, Any]:
    """The json_schema response format (also what the fakes and the mock server read)."""
    return {"type": "json_schema",
            "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema(),
                            "strict": False}}


_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$")


def lenient_json(text: str) -> str:
    """Answer text as strict JSON when it is JSON inside a code fence or holds raw control
    characters in strings (small models do both); anything else is left for the parser's
    error, which the re-ask quotes."""
    try:
        return json.dumps(json.loads(_FENCE.sub("", text), strict=False), ensure_ascii=False)
    except ValueError:
        return text


def messages_for_log(messages: list[Message]) -> list[dict[str, Any]]:
    """Messages as stored in llm_calls; images are summarised, never stored inline."""
    logged = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            content = [{"type": "image_url", "image_url": f"<{len(p['image_url']['url'])} chars "
                        f"of {p['image_url']['url'][:30]}…>"}
                       if isinstance(p, dict) and p.get("type") == "image_url" else p
                       for p in content]
        entry = {"role": m["role"], "content": content}
        if m.get("tool_calls"):
            entry["tool_calls"] = m["tool_calls"]
        logged.append(entry)
    return logged


def _shortened(messages: list[Message]) -> list[Message]:
    """Earlier bad answers echoed in a re-ask are cut: enough to correct, small enough to fit
    a small model's context."""
    out = []
    for m in messages:
        if m["role"] == "assistant" and isinstance(m.get("content"), str):
            m = {**m, "content": m["content"][:REASK_ECHO_CHARS]}
        out.append(m)
    return out


def _as_completion(answer: AIMessage, model: str) -> tuple[ChatCompletion, str, bool]:
    """The ChatCompletion instructor parses, the raw text to record, and whether the answer
    hit the token limit. A truncated answer is handed on as finished, so that it fails
    validation and is re-asked like any invalid answer."""
    text = answer.content if isinstance(answer.content, str) else "".join(
        p.get("text", "") for p in answer.content if isinstance(p, dict))
    calls = [{"id": c.get("id") or f"call_{i}", "type": "function",
              "function": {"name": c["name"], "arguments": json.dumps(c["args"])}}
             for i, c in enumerate(answer.tool_calls)]
    calls += [{"id": c.get("id") or f"bad_{i}", "type": "function",
               "function": {"name": c.get("name") or "", "arguments": c.get("args") or ""}}
              for i, c in enumerate(getattr(answer, "invalid_tool_calls", []) or [])]
    raw = text if not calls else json.dumps([c["function"] for c in calls], ensure_ascii=False)
    truncated = (answer.response_metadata or {}).get("finish_reason") == "length"
    inp, out, cached = _usage(answer)
    completion = ChatCompletion.model_validate({
        "id": "raer", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "finish_reason": "tool_calls" if calls else "stop",
                     "message": {"role": "assistant", "content": lenient_json(text) if text
                                 else None, "tool_calls": calls or None}}],
        "usage": {"prompt_tokens": inp, "completion_tokens": out, "total_tokens": inp + out,
                  "prompt_tokens_details": {"cached_tokens": cached}}})
    return completion, raw, truncated


@dataclass
class _Attempt:
    number: int
    messages: list[Message]
    temperature: float
    started: float
    answer: AIMessage | None = None
    raw: str = ""
    truncated: bool = False
    error: str = ""


@dataclass
class _Call:
    """One structured call: the transport instructor drives, and its attempts' records."""

    store: Store
    settings: Context
    endpoint: Endpoint
    chat: BaseChatModel
    run_id: str
    node: str
    prompt_hash: str
    cache_key: str
    mode: str
    max_output_tokens: int = MAX_OUTPUT_TOKENS
    """The answer's token limit: the client's default, raised for a listwise answer."""
    attempts: int = 0
    pending: _Attempt | None = None
    last_call_id: int | None = None
    last_error: str = ""
    last_raw: str = ""
    last_answer: AIMessage | None = None

    async def transport(self, **request: Any) -> ChatCompletion:
        if self.pending is not None:  # instructor asks again: the last answer was invalid
            await self.record(self.pending)
        self.attempts += 1
        messages = _shortened(request.pop("messages"))
        request.pop("model", None)
        if request.get("response_format"):  # in the body: a truncated answer stays raw text
            request["extra_body"] = {"response_format": request.pop("response_format")}
        first = self.attempts == 1
        # A re-ask at temperature 0 tends to repeat the same broken answer; sample a little.
        temperature = self.settings.temperature if first else max(self.settings.temperature,
                                                                    REASK_TEMPERATURE)
        attempt = _Attempt(self.attempts, [dict(m) for m in messages], temperature,
                           time.perf_counter())
        try:
            attempt.answer = await self._ask(convert_to_messages(messages), request,
                                             temperature, messages)
        except BudgetExhausted:
            raise  # not this call's fault: the run stops, the pair stays pending
        except Exception as exc:  # the client already retried transport faults
            attempt.error = f"{type(exc).__name__}: {exc}"[:2000]
            await self.record(attempt)
            raise
        completion, attempt.raw, attempt.truncated = _as_completion(attempt.answer,
                                                                    self.endpoint.model)
        self.pending = attempt
        return completion

    async def _ask(self, conversation: list, request: dict[str, Any], temperature: float,
                   messages: list[Message]) -> AIMessage:
        settings, model = self.settings, self.endpoint.model
        if self.max_output_tokens != MAX_OUTPUT_TOKENS:
            request = {**request, "max_completion_tokens": self.max_output_tokens}
        if settings.batch:  # no in-flight bound: a batch is many requests waiting together
            return await ask_in_batch(self.chat, conversation,
                                      {**request, "temperature": temperature},
                                      settings.batch_idle_seconds, settings.batch_poll_seconds,
                                      settings.batch_resubmits)
        prompt_tokens = estimate_prompt_tokens(messages, model, settings.image_max_side,
                                               settings.prices)
        limit = self.max_output_tokens
        worst_case = estimate_cost(model, prompt_tokens, limit, 0, settings.prices)
        async with within_budget(self.store, self.run_id, settings.max_cost,
                                 worst_case) as settle:
            answer = None
            try:
                slots = call_slots(in_flight_limit(self.endpoint, settings))
                async with slots.slot(QUERY_CALL if self.node in QUERY_NODES else PRODUCT_CALL):
                    await rate_limit(self.endpoint.base_url, settings,
                                     prompt_tokens + limit)
                    answer = await self.chat.ainvoke(conversation, temperature=temperature,
                                                     **request)
            finally:
                settle(_price(model, *_usage(answer), settings) if answer else None)
        return answer

    def parse_failed(self, error: Exception, **_: Any) -> None:
        """instructor's parse:error hook: the pending attempt's answer did not validate."""
        if self.pending is not None:
            cut = " (the answer hit the token limit of " \
                  f"{self.max_output_tokens} tokens)" if self.pending.truncated else ""
            self.pending.error = f"invalid output{cut}: {error}".strip()[:2000]

    async def record(self, attempt: _Attempt, parsed: BaseModel | None = None,
                     claim: Claim | None = None) -> int:
        """One llm_calls row for an attempt; the answer's row also ends the call's claim."""
        if attempt is self.pending:
            self.pending = None
        inp, out, cached = _usage(attempt.answer)
        release = claim.owner if claim is not None and claim.held else None
        call_id = await asyncio.to_thread(self.store.record_call, {
            "run_id": self.run_id, "node": self.node, "role": self.endpoint.role,
            "model": self.endpoint.model, "prompt_hash": self.prompt_hash,
            "cache_key": self.cache_key, "attempt": attempt.number,
            "messages": json.dumps(messages_for_log(attempt.messages), ensure_ascii=False),
            "raw_output": attempt.raw,
            "parsed": parsed.model_dump_json() if parsed is not None else None,
            "input_tokens": inp, "output_tokens": out, "cached_tokens": cached,
            "latency_ms": round((time.perf_counter() - attempt.started) * 1000, 1),
            "cost_usd": _price(self.endpoint.model, inp, out, cached, self.settings)
            if attempt.answer is not None else None,
            "temperature": attempt.temperature, "output_mode": self.mode,
            "error": attempt.error or None,
        }, release)
        if release is not None:
            claim.held = False
        self.last_call_id, self.last_error, self.last_raw = call_id, attempt.error, attempt.raw
        self.last_answer = attempt.answer
        return call_id


def _without_context(schema: type[T], answer: AIMessage | None) -> T | None:
    """The answer validated against the schema alone, or None."""
    if answer is None:
        return None
    if answer.tool_calls:
        text = json.dumps(answer.tool_calls[0]["args"])
    else:
        text = answer.content if isinstance(answer.content, str) else ""
    try:
        return schema.model_validate_json(lenient_json(text))
    except ValueError:
        return None


# Output modes found to work, per (endpoint, model), for the life of the process.
_detected: dict[tuple[str, str], str] = {}


def _modes_to_try(endpoint: Endpoint) -> tuple[str, ...]:
    if endpoint.output_mode != "auto":
        return (endpoint.output_mode,)
    if endpoint.offline:
        return ("json_schema",)  # llama.cpp turns the schema into a grammar
    known = _detected.get((endpoint.base_url, endpoint.model))
    return (known,) if known else AUTO_ORDER


def _mode_refused(exc: BaseException | None) -> bool:
    """A 400 saying the endpoint does not support the way we asked for structure."""
    text = str(exc).casefold()
    return isinstance(exc, BadRequestError) and any(
        w in text for w in ("response_format", "json_schema", "tool", "not supported",
                            "unsupported"))


async def _ask_structured(store: Store, settings: Context, run_id: str, node: str, role: str,
                          schema: type[T], messages: list[Message], prompt_hash: str,
                          cache_key: str, context: dict[str, Any] | None,
                          claim: Claim | None = None,
                          max_output_tokens: int = MAX_OUTPUT_TOKENS) -> CallResult[T]:
    endpoint = settings.endpoints[role]
    # before a call is paid for; statvfs is file I/O: off the event loop (the LangGraph
    # server refuses blocking calls on it)
    await asyncio.to_thread(ensure_room, settings.db_path, settings.min_free_mb)
    if endpoint.offline:  # starting the embedded model does file I/O: keep it off the loop
        await asyncio.to_thread(offline_base_url, settings.offline_threads)
    # the client is made on the loop: made in threads, concurrent calls raced to make the
    # run's pooled client and the losers' aiohttp sessions were never closed ("Unclosed
    # client session" at the end of the offline demo)
    chat, model = make_chat_model(role, settings)
    modes = _modes_to_try(endpoint)
    for mode in modes:
        call = _Call(store, settings, endpoint, chat, run_id, node, prompt_hash, cache_key, mode,
                     max_output_tokens)
        hooks = Hooks()
        hooks.on("parse:error", call.parse_failed)
        try:
            parsed = await instructor_call(call.transport, MODES[mode], schema, messages, model,
                                       settings.max_reasks, context or {}, hooks)
        except InstructorRetryException as exc:
            cause = exc.__cause__
            if isinstance(cause, BudgetExhausted):
                raise cause from None
            if call.pending is not None:
                await call.record(call.pending)
            if len(modes) > 1 and call.attempts == 1 and _mode_refused(cause):
                continue  # detecting: this endpoint does not take this mode; try the next
            raise StructuredCallFailed(call.last_error or str(cause or exc), call.last_raw,
                                       call.last_call_id,
                                       _without_context(schema, call.last_answer)
                                       if context else None) from None
        except BudgetExhausted:
            raise
        if len(modes) > 1:
            _detected[(endpoint.base_url, endpoint.model)] = mode
        # instructor validates into a subclass of the schema; callers get the schema itself
        parsed = schema.model_validate_json(parsed.model_dump_json())
        call_id = await call.record(call.pending, parsed, claim)
        return CallResult(parsed=parsed, call_id=call_id, model=model)
    raise StructuredCallFailed(f"the endpoint accepted none of the output modes {list(modes)}",
                               "", None)


async def structured_call(*, store: Store, settings: Context, run_id: str, node: str, role: str,
                          schema: type[T], messages: list[Message], prompt_hash: str,
                          cache_key: str = "",
                          context: dict[str, Any] | None = None,
                          max_output_tokens: int = MAX_OUTPUT_TOKENS) -> CallResult[T]:
    """Ask a role's model for `schema`, validate (with `context`, see nodes/schemas.py),
    re-ask on invalid output, record each try.

    An answer already recorded under the same cache key is returned without a call: a run
    killed after a call was recorded but before its artefact row was written never pays twice.
    """
    if not cache_key:
        return await _ask_structured(store, settings, run_id, node, role, schema, messages,
                                     prompt_hash, cache_key, context,
                                     max_output_tokens=max_output_tokens)
    # Another process on the same store may be asking the same thing right now: wait for
    # its answer instead of paying again (a claim left by a killed process expires).
    lifetime = settings.request_timeout * (settings.max_retries + 1) * (settings.max_reasks + 1)
    claim = Claim(cache_key, f"{_owner()}:{uuid4().hex[:8]}")  # per call: branches wait too
    while True:
        try:
            stored, claimed = await asyncio.to_thread(store.answer_or_claim, cache_key,
                                                      claim.owner, lifetime + 60)
        except BaseException:
            # cancelled (a run stopping) while the thread may still take the claim: nobody
            # will release it, so nobody in this process waits for it either
            abandon_claim(claim.owner)
            raise
        if stored is not None:
            return _reused(stored, schema)
        if claimed:
            break
        await asyncio.sleep(CLAIM_POLL_SECONDS)
    claim.held = True
    try:
        return await _ask_structured(store, settings, run_id, node, role, schema, messages,
                                     prompt_hash, cache_key, context, claim, max_output_tokens)
    finally:
        if claim.held:  # no answer was recorded (it releases the claim as it is written)
            try:
                await asyncio.to_thread(store.release, cache_key, claim.owner)
            except BaseException:
                # the store cannot be written (a full disk): the claim stays in it, and
                # this process's next run must not wait for it to expire
                abandon_claim(claim.owner)
                raise


@dataclass
class Claim:
    """This call's cross-process claim on its cache key, released when the answer is
    recorded (one transaction) or, failing that, when the call ends."""

    cache_key: str
    owner: str
    held: bool = False


def _reused(stored: dict[str, Any], schema: type[T]) -> CallResult[T]:
    return CallResult(parsed=schema.model_validate_json(stored["parsed"]),
                      call_id=stored["id"], model=stored["model"])


@lru_cache(maxsize=1)
def _owner() -> str:
    """This process, as the store's claims name it (made at first use, not at import)."""
    return claim_owner()


def system_user(system: str, user: str | list[dict[str, Any]]) -> list[Message]:
    """A system and a user message in OpenAI's format (what instructor and the log take)."""
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
