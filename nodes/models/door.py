"""The one door for models: a role maps to an OpenAI-compatible chat endpoint via ChatOpenAI.

Every structured call goes through `structured_call`: the pydantic schema is sent as a
json_schema response format (which llama.cpp turns into a grammar and hosted models honour;
it travels in the request body so that a truncated answer still comes back as raw text),
the answer is parsed leniently and validated, invalid output is re-asked a bounded number of
times with the validation error, and each attempt is written to llm_calls (node, model, prompt
hash, exact messages, raw output, parsed result, tokens, latency, estimated cost, error).
Transport faults (429, 5xx, timeouts, resets) are retried inside the OpenAI client, which
honours Retry-After. Tests swap `make_chat_model`, never the nodes.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import weakref
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Generic, TypeVar
from uuid import uuid4

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, ValidationError

from raer.nodes.context import OFFLINE, Context
from raer.nodes.models.batch import ask_in_batch
from raer.nodes.models.budget import BudgetExhausted, within_budget
from raer.nodes.models.offline import offline_base_url
from raer.nodes.models.prices import estimate_cost
from raer.nodes.models.rate_limits import rate_limit
from raer.store import Store
from raer.store.store import claim_owner

CLAIM_POLL_SECONDS = 0.25

T = TypeVar("T", bound=BaseModel)
MAX_OUTPUT_TOKENS = 1024
BATCH_DISCOUNT = 0.5  # OpenAI's Batch API price
REASK_ECHO_CHARS = 800


class StructuredCallFailed(RuntimeError):
    """No valid answer after the re-asks, or the endpoint failed; the reason is recorded."""

    def __init__(self, reason: str, raw: str = "", call_id: int | None = None):
        super().__init__(reason)
        self.reason, self.raw, self.call_id = reason, raw, call_id


@dataclass(frozen=True)
class CallResult(Generic[T]):
    parsed: T
    call_id: int
    model: str


@lru_cache(maxsize=32)
def _chat_openai(base_url: str, model: str, api_key: str, timeout: float,
                 max_retries: int, temperature: float) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(base_url=base_url, model=model, api_key=api_key, timeout=timeout,
                      max_retries=max_retries, temperature=temperature,
                      max_completion_tokens=MAX_OUTPUT_TOKENS)


def make_chat_model(role: str, settings: Context) -> tuple[BaseChatModel, str]:
    """(chat model, model name) for a role. The only place a client is built."""
    base_url, model = settings.endpoint(role)
    if base_url == OFFLINE:
        base_url, api_key = offline_base_url(settings.offline_threads), "offline"
    else:
        # Keys stay in the environment; "unset" lets keyless local servers (vLLM, Ollama) work.
        api_key = os.environ.get(settings.api_key_env, "unset")
    chat = _chat_openai(base_url, model, api_key, settings.request_timeout,
                        settings.max_retries, settings.temperature)
    return chat, model


_semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary())


def _in_flight_bound(limit: int) -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    sem = _semaphores.get(loop)
    if sem is None:
        sem = _semaphores[loop] = asyncio.Semaphore(limit)
    return sem


def estimate_prompt_tokens(messages: list[BaseMessage]) -> int:
    """A deliberately high guess (3 characters a token; ~1,100 tokens an image)."""
    total = 0
    for m in messages:
        if isinstance(m.content, str):
            total += len(m.content) // 3 + 4
        else:
            for part in m.content:
                is_image = isinstance(part, dict) and part.get("type") == "image_url"
                total += 1100 if is_image else len(str(part.get("text", ""))) // 3 + 4
    return total


async def _ask(chat: BaseChatModel, conversation: list[BaseMessage], extra_body: dict,
               temperature: float, base_url: str, tokens: int, settings: Context) -> AIMessage:
    if settings.batch:  # no in-flight bound: a batch is many requests waiting together
        return await ask_in_batch(chat, conversation, extra_body, temperature,
                                  settings.batch_idle_seconds, settings.batch_poll_seconds,
                                  settings.batch_resubmits)
    async with _in_flight_bound(settings.max_concurrency):
        await rate_limit(base_url, settings, tokens)
        return await chat.ainvoke(conversation, extra_body=extra_body, temperature=temperature)


def _price(model: str, inp: int, out: int, cached: int, settings: Context) -> float | None:
    cost = estimate_cost(model, inp, out, cached, settings.prices)
    return cost * BATCH_DISCOUNT if cost is not None and settings.batch else cost


def _cost_of(answer: Any, model: str, settings: Context) -> float | None:
    usage = getattr(answer, "usage_metadata", None) or {}
    if not usage:
        return None
    cached = (usage.get("input_token_details") or {}).get("cache_read") or 0
    return _price(model, usage.get("input_tokens", 0), usage.get("output_tokens", 0), cached,
                  settings)


@lru_cache(maxsize=32)
def response_format(schema: type[BaseModel]) -> dict[str, Any]:
    return {"type": "json_schema",
            "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema(),
                            "strict": False}}


_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$")


def parse_output(schema: type[T], raw: str) -> T:
    """Lenient JSON (control characters, code fences) then strict pydantic validation."""
    data = json.loads(_FENCE.sub("", raw), strict=False)
    return schema.model_validate(data)


def _text(message: BaseMessage) -> str:
    if isinstance(message.content, str):
        return message.content
    return "".join(part.get("text", "") for part in message.content if isinstance(part, dict))


def messages_for_log(messages: list[BaseMessage]) -> list[dict[str, Any]]:
    """Messages as stored in llm_calls; images are summarised, never stored inline."""
    logged = []
    for m in messages:
        if isinstance(m.content, str):
            content: Any = m.content
        else:
            content = []
            for part in m.content:
                if isinstance(part, dict) and part.get("type") == "image_url":
                    url = part["image_url"]["url"]
                    content.append({"type": "image_url", "image_url": f"<{len(url)} chars of "
                                    f"{url[:30]}…>"})
                else:
                    content.append(part)
        logged.append({"role": m.type, "content": content})
    return logged


async def structured_call(*, store: Store, settings: Context, run_id: str, node: str, role: str,
                          schema: type[T], messages: list[BaseMessage], prompt_hash: str,
                          cache_key: str = "") -> CallResult[T]:
    """Ask a role's model for `schema`, validate, re-ask on invalid output, record each try.

    An answer already recorded under the same cache key is returned without a call: a run
    killed after a call was recorded but before its artefact row was written never pays twice.
    """
    if not cache_key:
        return await _call_and_record(store, settings, run_id, node, role, schema, messages,
                                      prompt_hash, cache_key)
    # Another process on the same store may be asking the same thing right now: wait for
    # its answer instead of paying again (a claim left by a killed process expires).
    lifetime = settings.request_timeout * (settings.max_retries + 1) * (settings.max_reasks + 1)
    owner = f"{_owner()}:{uuid4().hex[:8]}"  # per call: two branches of one process wait too
    while True:
        stored = await asyncio.to_thread(store.successful_call, cache_key)
        if stored is not None:
            return _reused(stored, schema)
        if await asyncio.to_thread(store.claim, cache_key, owner, lifetime + 60):
            break
        await asyncio.sleep(CLAIM_POLL_SECONDS)
    try:
        # checked again under the claim: the holder before us records its answer, then
        # releases, and may have done both between our first look and our claim
        stored = await asyncio.to_thread(store.successful_call, cache_key)
        if stored is not None:
            return _reused(stored, schema)
        return await _call_and_record(store, settings, run_id, node, role, schema, messages,
                                      prompt_hash, cache_key)
    finally:
        await asyncio.to_thread(store.release, cache_key, owner)


def _reused(stored: dict[str, Any], schema: type[T]) -> CallResult[T]:
    return CallResult(parsed=schema.model_validate_json(stored["parsed"]),
                      call_id=stored["id"], model=stored["model"])


@lru_cache(maxsize=1)
def _owner() -> str:
    """This process, as the store's claims name it (made at first use, not at import)."""
    return claim_owner()


async def _call_and_record(store: Store, settings: Context, run_id: str, node: str, role: str,
                           schema: type[T], messages: list[BaseMessage], prompt_hash: str,
                           cache_key: str) -> CallResult[T]:
    # Building a client (and starting the embedded model) does file I/O: keep it off the loop.
    chat, model = await asyncio.to_thread(make_chat_model, role, settings)
    base_url = settings.endpoint(role)[0]
    fmt = response_format(schema)
    conversation = list(messages)
    last_error, last_raw, call_id = "", "", None
    for attempt in range(1, settings.max_reasks + 2):
        # A re-ask at temperature 0 tends to repeat the same broken answer; sample a little.
        temperature = settings.temperature if attempt == 1 else max(settings.temperature, 0.5)
        started = time.perf_counter()
        raw, usage, error, parsed = "", {}, "", None
        transport_failed = False
        try:
            prompt_tokens = estimate_prompt_tokens(conversation)
            tokens = prompt_tokens + MAX_OUTPUT_TOKENS
            worst_case = estimate_cost(model, prompt_tokens, MAX_OUTPUT_TOKENS, 0,
                                       settings.prices)
            async with within_budget(store, run_id, settings.max_cost, worst_case) as settle:
                answer = None
                try:
                    answer = await _ask(chat, conversation, {"response_format": fmt},
                                        temperature, base_url, tokens, settings)
                finally:
                    settle(_cost_of(answer, model, settings))
            raw, usage = _text(answer), (answer.usage_metadata or {})
            if (answer.response_metadata or {}).get("finish_reason") == "length":
                raise ValueError(f"the answer hit the token limit ({MAX_OUTPUT_TOKENS})")
            parsed = parse_output(schema, raw)
        except BudgetExhausted:
            raise  # not this call's fault: the run stops, the pair stays pending
        except (json.JSONDecodeError, ValidationError, ValueError) as exc:
            error = f"invalid output: {exc}".strip()[:2000]
        except Exception as exc:  # the client already retried transport faults
            error, transport_failed = f"{type(exc).__name__}: {exc}"[:2000], True
        latency_ms = (time.perf_counter() - started) * 1000
        inp, out = usage.get("input_tokens", 0), usage.get("output_tokens", 0)
        cached = (usage.get("input_token_details") or {}).get("cache_read") or 0
        call_id = await asyncio.to_thread(store.record_call, {
            "run_id": run_id, "node": node, "role": role, "model": model,
            "prompt_hash": prompt_hash, "cache_key": cache_key, "attempt": attempt,
            "messages": json.dumps(messages_for_log(conversation), ensure_ascii=False),
            "raw_output": raw, "parsed": parsed.model_dump_json() if parsed else None,
            "input_tokens": inp, "output_tokens": out, "cached_tokens": cached,
            "latency_ms": round(latency_ms, 1),
            "cost_usd": _price(model, inp, out, cached, settings),
            "error": error or None,
        })
        if parsed is not None:
            return CallResult(parsed=parsed, call_id=call_id, model=model)
        last_error, last_raw = error, raw
        if transport_failed:
            break
        # Echo only the start of the bad answer: enough to correct, small enough to fit.
        conversation = [*messages, AIMessage(content=raw[:REASK_ECHO_CHARS]),
                        HumanMessage(content=(
                            f"That answer was not valid ({error[:300]}). Reply again with "
                            "only a JSON object that matches the schema."))]
    raise StructuredCallFailed(last_error, last_raw, call_id)


def system_user(system: str, user: str | list[dict[str, Any]]) -> list[BaseMessage]:
    return [SystemMessage(content=system), HumanMessage(content=user)]
