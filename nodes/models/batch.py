"""OpenAI Batch API mode (half price on OpenAI): the graph runs as usual, but each model
request joins a batch instead of being sent at once.

Requests that arrive together (all queries' requirements, then all guidelines, then the
packshots and judgments) are collected until no new one has come for `batch_idle_seconds`,
written as JSONL with custom ids, uploaded, submitted, polled, and the results handed back
to the waiting calls — so caching, validation, re-asks and recording stay the door's. A
request missing from a finished batch (partial or expired batches) is resubmitted in a later
batch up to `batch_resubmits` times, and so is one answered with a 429 or 5xx; after that,
or on any other error, the call fails with the reason, like any failed call.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import weakref
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, convert_to_messages

TERMINAL = {"completed", "failed", "expired", "cancelled"}


class BatchRequestFailed(RuntimeError):
    pass


@dataclass
class _Request:
    custom_id: str
    body: dict[str, Any]
    future: asyncio.Future
    submissions: int = 0


@dataclass
class BatchCollector:
    client: Any  # openai.AsyncOpenAI
    idle_seconds: float
    poll_seconds: float
    resubmits: int
    waiting: list[_Request] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    flusher: asyncio.Task | None = None
    ids: itertools.count = field(default_factory=itertools.count)
    batches: list[str] = field(default_factory=list)

    async def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        request = _Request(f"raer-{next(self.ids)}", body,
                           asyncio.get_running_loop().create_future())
        self.waiting.append(request)
        self.wake.set()
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.create_task(self._flush_when_idle())
        return await request.future

    async def _flush_when_idle(self) -> None:
        while self.waiting:
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), self.idle_seconds)
                continue  # more requests are still arriving
            except TimeoutError:
                pass
            chunk, self.waiting = self.waiting, []
            try:
                await self._run_batch(chunk)
            except Exception as exc:  # an upload or poll failure fails its requests
                for request in chunk:
                    if not request.future.done():
                        request.future.set_exception(BatchRequestFailed(
                            f"batch failed: {type(exc).__name__}: {exc}"))

    async def _run_batch(self, chunk: list[_Request]) -> None:
        lines = "".join(json.dumps({"custom_id": r.custom_id, "method": "POST",
                                    "url": "/v1/chat/completions", "body": r.body}) + "\n"
                        for r in chunk)
        uploaded = await self.client.files.create(
            file=("raer-batch.jsonl", lines.encode()), purpose="batch")
        batch = await self.client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions",
            completion_window="24h")
        self.batches.append(batch.id)
        while batch.status not in TERMINAL:
            await asyncio.sleep(self.poll_seconds)
            batch = await self.client.batches.retrieve(batch.id)
        results: dict[str, dict[str, Any]] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                content = await self.client.files.content(file_id)
                for line in content.text.splitlines():
                    if line.strip():
                        item = json.loads(line)
                        results[item["custom_id"]] = item
        for request in chunk:
            request.submissions += 1
            item = results.get(request.custom_id)
            response = (item or {}).get("response") or {}
            status = response.get("status_code")
            transient = item is None or status == 429 or (status or 0) >= 500
            if status == 200:
                request.future.set_result(response["body"])
            elif transient and request.submissions <= self.resubmits:
                self.waiting.append(request)  # unanswered (expired) or a server error: again
            else:
                error = (item or {}).get("error") or response.get("body") or {
                    "message": f"no result in batch {batch.id} ({batch.status})"}
                request.future.set_exception(BatchRequestFailed(
                    f"batch {batch.id} {batch.status}: {json.dumps(error)[:300]}"))
        if self.waiting:
            self.wake.set()


_collectors: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop,
                                       dict[int, BatchCollector]] = weakref.WeakKeyDictionary()


def collector_for(client: Any, idle_seconds: float, poll_seconds: float,
                  resubmits: int) -> BatchCollector:
    per_loop = _collectors.setdefault(asyncio.get_running_loop(), {})
    collector = per_loop.get(id(client))
    if collector is None:
        collector = per_loop[id(client)] = BatchCollector(client, idle_seconds, poll_seconds,
                                                          resubmits)
    return collector


def as_message(body: dict[str, Any]) -> AIMessage:
    """A batch result (a chat.completion body) as the AIMessage ChatOpenAI would return."""
    choice = body["choices"][0]
    usage = body.get("usage") or {}
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    message = {"role": "assistant", "content": choice["message"].get("content") or "",
               **({"tool_calls": choice["message"]["tool_calls"]}
                  if choice["message"].get("tool_calls") else {})}
    parsed = convert_to_messages([message])[0]
    return AIMessage(
        content=parsed.content, tool_calls=parsed.tool_calls,
        invalid_tool_calls=parsed.invalid_tool_calls,
        response_metadata={"finish_reason": choice.get("finish_reason"), "batch": True},
        usage_metadata={"input_tokens": usage.get("prompt_tokens", 0),
                        "output_tokens": usage.get("completion_tokens", 0),
                        "total_tokens": usage.get("total_tokens", 0),
                        "input_token_details": {"cache_read": cached}})


async def ask_in_batch(chat: Any, conversation: list, request: dict[str, Any],
                       idle_seconds: float, poll_seconds: float, resubmits: int) -> AIMessage:
    """What `chat.ainvoke(conversation, **request)` would send, sent through a batch."""
    body = chat._get_request_payload(conversation, **request)
    body.pop("stream", None)
    body.update(body.pop("extra_body", None) or {})
    collector = collector_for(chat.root_async_client, idle_seconds, poll_seconds, resubmits)
    return as_message(await collector.submit(body))
