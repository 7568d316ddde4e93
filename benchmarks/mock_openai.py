"""A mock OpenAI-compatible chat server for load and fault benchmarks (loopback only).

Real HTTP (aiohttp), a fixed latency per request, optional rate limits that answer 429 with
Retry-After, and injected faults at a given rate: 500s, timeouts (no answer before the
client gives up), dropped connections, malformed JSON and truncated JSON. Valid answers are
made from the schema named in the request's response_format.

Run: python -m benchmarks.mock_openai --port 0 --latency 1.0 --fault-rate 0.05
It prints "listening on http://127.0.0.1:PORT/v1" once ready, then serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections import deque

from aiohttp import web

ANSWERS = {
    "Requirements": {"reasoning": "product and colour", "requirements": [
        {"kind": "product type", "value": "shirt", "importance": "must",
         "brand_or_literal": False},
        {"kind": "colour", "value": "blue", "importance": "should", "brand_or_literal": False}]},
    "Guidelines": {"highly_relevant": "a blue shirt", "acceptable_substitute": "a shirt",
                   "irrelevant": "not a shirt"},
    "PackshotDescription": {"product_type": "shirt", "colours": ["blue"], "pattern": "plain",
                            "visible_text": "", "details": "long sleeve"},
    "Judgment": {"reasoning": "a shirt, colour matches", "verdicts": [
        {"requirement": "shirt", "verdict": "met"}], "label": "highly relevant",
                 "confidence": 0.9, "brand_check": "no brand asked"},
}
FAULTS = ("500", "timeout", "drop", "malformed", "truncated")


class Mock:
    def __init__(self, latency: float, fault_rate: float, rpm: float, seed: int):
        self.latency, self.fault_rate, self.rpm = latency, fault_rate, rpm
        self.random = random.Random(seed)
        self.window: deque[float] = deque()
        self.counts: dict[str, int] = {"requests": 0, "ok": 0, "429": 0,
                                       **{f: 0 for f in FAULTS}}
        # requests being served now, and its integral over time: the mean number in flight
        # between two reads of /stats is d(in_flight_seconds) / d(time)
        self.in_flight, self.in_flight_seconds, self.changed = 0, 0.0, time.monotonic()

    def _count_in_flight(self, change: int) -> None:
        moment = time.monotonic()
        self.in_flight_seconds += self.in_flight * (moment - self.changed)
        self.in_flight, self.changed = self.in_flight + change, moment

    def over_limit(self) -> bool:
        if not self.rpm:
            return False
        now = time.monotonic()
        while self.window and now - self.window[0] > 60:
            self.window.popleft()
        if len(self.window) >= self.rpm:
            return True
        self.window.append(now)
        return False

    async def chat(self, request: web.Request) -> web.StreamResponse:
        self._count_in_flight(+1)
        try:
            return await self._answer(request)
        finally:
            self._count_in_flight(-1)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.counts["requests"] += 1
        if self.over_limit():
            self.counts["429"] += 1
            return web.json_response({"error": {"message": "rate limited"}}, status=429,
                                     headers={"Retry-After": "1"})
        fault = (self.random.choice(FAULTS) if self.random.random() < self.fault_rate
                 else None)
        if fault == "timeout":
            self.counts[fault] += 1
            await asyncio.sleep(3600)
        await asyncio.sleep(self.latency)
        if fault == "500":
            self.counts[fault] += 1
            return web.json_response({"error": {"message": "injected"}}, status=500)
        if fault == "drop":
            self.counts[fault] += 1
            request.transport.close()
            return web.Response()
        name = body["response_format"]["json_schema"]["name"]
        content = json.dumps(ANSWERS[name])
        if fault == "malformed":
            self.counts[fault] += 1
            content = content.replace('"', "'", 3)
        elif fault == "truncated":
            self.counts[fault] += 1
            content = content[: len(content) // 2]
        else:
            self.counts["ok"] += 1
        prompt = sum(len(str(m.get("content", ""))) for m in body["messages"]) // 4
        return web.json_response({
            "id": "mock", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": len(content) // 4,
                      "total_tokens": prompt + len(content) // 4,
                      "prompt_tokens_details": {"cached_tokens": prompt // 2}}})

    async def stats(self, request: web.Request) -> web.Response:
        self._count_in_flight(0)
        return web.json_response({**self.counts, "in_flight": self.in_flight,
                                  "in_flight_seconds": self.in_flight_seconds,
                                  "at": self.changed})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--rpm", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    mock = Mock(args.latency, args.fault_rate, args.rpm, args.seed)
    app = web.Application(client_max_size=32 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", mock.chat)
    app.router.add_get("/stats", mock.stats)

    async def serve() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", args.port, backlog=1024)
        await site.start()
        port = runner.addresses[0][1]
        print(f"listening on http://127.0.0.1:{port}/v1", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
