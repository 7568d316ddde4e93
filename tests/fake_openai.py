"""A fake OpenAI-compatible chat server on loopback, for testing the real ChatOpenAI path.

It answers POST /v1/chat/completions with a valid JSON answer for the schema named in the
request's response_format (Requirements, Guidelines, PackshotDescription, Judgment), reports
usage including cached prompt tokens, and can be told to fail the first N requests with a
status code (e.g. 500 or 429 with Retry-After) or to wait before answering.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWERS = {
    "Requirements": {"reasoning": "jeans in black", "requirements": [
        {"kind": "product type", "value": "jeans", "importance": "must",
         "brand_or_literal": False}]},
    "Guidelines": {"highly_relevant": "black jeans", "acceptable_substitute": "dark jeans",
                   "irrelevant": "not jeans"},
    "PackshotDescription": {"product_type": "jeans", "colours": ["black"], "pattern": "plain",
                            "visible_text": "", "details": "straight"},
    "Judgment": {"reasoning": "matches", "verdicts": [{"requirement": "jeans",
                                                       "verdict": "met"}],
                 "label": "highly relevant", "confidence": 0.9, "brand_check": "matches"},
}


class FakeOpenAI:
    def __init__(self, latency: float = 0.0, fail_first: int = 0, fail_status: int = 500):
        self.latency, self.fail_first, self.fail_status = latency, fail_first, fail_status
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    fake.requests.append(body)
                    failing = len(fake.requests) <= fake.fail_first
                if failing:
                    self.send_response(fake.fail_status)
                    self.send_header("Retry-After", "0")
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"error": {"message": "injected fault"}}')
                    return
                time.sleep(fake.latency)
                name = body["response_format"]["json_schema"]["name"]
                answer = {
                    "id": "chatcmpl-fake", "object": "chat.completion", "created": 0,
                    "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop", "message": {
                        "role": "assistant", "content": json.dumps(ANSWERS[name])}}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 20,
                              "total_tokens": 120,
                              "prompt_tokens_details": {"cached_tokens": 64}},
                }
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
