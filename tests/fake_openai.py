"""A fake OpenAI-compatible chat server on loopback, for testing the real ChatOpenAI path.

It answers POST /v1/chat/completions with a valid JSON answer for the schema named in the
request's response_format (Requirements, Guidelines, PackshotDescription, Judgment), reports
usage including cached prompt tokens, and can be told to fail the first N requests with a
status code (e.g. 500 or 429 with Retry-After) or to wait before answering.
"""

from __future__ import annotations

import json
import re
import threading
import time
from email import policy
from email.parser import BytesParser
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


def listed_ids(body: dict) -> list[str]:
    """The product ids a listwise judge prompt lists (raer's `<product_data id="pN">`)."""
    user = body["messages"][-1]["content"]
    text = user if isinstance(user, str) else " ".join(p.get("text", "") for p in user)
    return re.findall(r'<product_data id="(p\d+)">', text)


def answer_for(name: str, body: dict, leave_out: int = 0) -> dict:
    """The answer for a schema; a listwise one judges every listed id but the last
    `leave_out` of them (a partial answer)."""
    if not name.startswith("JudgmentList"):
        return ANSWERS[name]
    ids = listed_ids(body)
    return {"judgments": [{"product": pid, **ANSWERS["Judgment"]}
                          for pid in ids[:len(ids) - leave_out]]}


def completion(body: dict, leave_out: int = 0) -> dict:
    """An answer in the shape asked for: a json_schema response format, or a tool call."""
    if body.get("tools"):
        name = body["tools"][0]["function"]["name"]
        message = {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": name,
                         "arguments": json.dumps(answer_for(name, body, leave_out))}}]}
    else:
        name = body["response_format"]["json_schema"]["name"]
        message = {"role": "assistant",
                   "content": json.dumps(answer_for(name, body, leave_out))}
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 0,
        "model": body["model"],
        "choices": [{"index": 0, "finish_reason": "tool_calls" if body.get("tools") else "stop",
                     "message": message}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
                  "prompt_tokens_details": {"cached_tokens": 64}},
    }


class FakeOpenAI:
    """Chat completions, plus the Files and Batches endpoints of the Batch API.

    batch_mode: "complete" (every request answered), "partial" (the first batch answers
    every third request with an error), "expire_once" (the first batch expires having
    answered only half of its requests), "fail_all" (every request gets an error).
    Errors are 500s, which raer resubmits in a later batch before giving up.
    """

    def __init__(self, latency: float = 0.0, fail_first: int = 0, fail_status: int = 500,
                 batch_mode: str = "complete", fail_message: str = "injected fault",
                 refuse_json_schema: bool = False, fail_every: int = 0,
                 leave_out_first: int = 0):
        self.latency, self.fail_first, self.fail_status = latency, fail_first, fail_status
        self.fail_every = fail_every
        """Answer every n-th request with fail_status (0: never): a steady fault rate."""
        self.fail_message = fail_message
        self.batch_mode = batch_mode
        self.refuse_json_schema = refuse_json_schema
        """Answer 400 to a json_schema response format, as endpoints without it do."""
        self.leave_out_first = leave_out_first
        """The first this many listwise answers leave out their last product."""
        self.listwise_answers = 0
        self.requests: list[dict] = []
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.batch_sizes: list[int] = []
        self.expired = False
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def reply(self, payload: dict | bytes, status: int = 200):
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802
                parts = self.path.strip("/").split("/")
                if parts[:2] == ["v1", "batches"]:
                    self.reply(fake.batches[parts[2]])
                elif parts[:2] == ["v1", "files"] and parts[-1] == "content":
                    self.reply(fake.files[parts[2]])
                else:
                    self.reply({"error": {"message": "not found"}}, 404)

            def do_POST(self):  # noqa: N802 (http.server's naming)
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path.endswith("/files"):
                    self.reply(fake.upload(self.headers["Content-Type"], raw))
                    return
                if self.path.endswith("/batches"):
                    self.reply(fake.run_batch(json.loads(raw)))
                    return
                body = json.loads(raw)
                with fake.lock:
                    fake.requests.append(body)
                    failing = len(fake.requests) <= fake.fail_first or (
                        fake.fail_every and len(fake.requests) % fake.fail_every == 0)
                if failing:
                    self.send_response(fake.fail_status)
                    self.send_header("Retry-After", "0")
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(json.dumps({"error": {"message": fake.fail_message}})
                                     .encode())
                    return
                if fake.refuse_json_schema and "json_schema" in json.dumps(
                        body.get("response_format") or {}):
                    self.reply({"error": {"message": "response_format json_schema is not "
                                          "supported by this model", "type":
                                          "invalid_request_error"}}, 400)
                    return
                time.sleep(fake.latency)
                with fake.lock:
                    leave_out = int(bool(listed_ids(body))
                                    and fake.listwise_answers < fake.leave_out_first)
                    fake.listwise_answers += bool(listed_ids(body))
                self.reply(completion(body, leave_out))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def upload(self, content_type: str, raw: bytes) -> dict:
        message = BytesParser(policy=policy.default).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
        data = next(part.get_payload(decode=True) for part in message.iter_parts()
                    if part.get_param("name", header="content-disposition") == "file")
        with self.lock:
            file_id = f"file-{len(self.files)}"
            self.files[file_id] = data
        return {"id": file_id, "object": "file", "bytes": len(data), "created_at": 0,
                "filename": "raer-batch.jsonl", "purpose": "batch", "status": "processed"}

    def run_batch(self, request: dict) -> dict:
        lines = [json.loads(line) for line in self.files[request["input_file_id"]].splitlines()]
        first = not self.batches
        expire = self.batch_mode == "expire_once" and len(lines) > 1 and not self.expired
        self.expired = self.expired or expire
        self.batch_sizes.append(len(lines))
        outputs, errors, status = [], [], "completed"
        for index, line in enumerate(lines):
            if expire and index % 2:
                status = "expired"
                continue  # never processed
            failing = (self.batch_mode == "fail_all" or
                       (self.batch_mode == "partial" and first and index % 3 == 0))
            if failing:
                errors.append({"custom_id": line["custom_id"], "response": {
                    "status_code": 500, "body": {"error": {"message": "injected"}}},
                    "error": None})
            else:
                outputs.append({"custom_id": line["custom_id"], "response": {
                    "status_code": 200, "body": completion(line["body"])}, "error": None})
        with self.lock:
            ids = []
            for content in (outputs, errors):
                if content:
                    file_id = f"file-{len(self.files)}"
                    self.files[file_id] = "".join(json.dumps(x) + "\n" for x in content).encode()
                    ids.append(file_id)
                else:
                    ids.append(None)
            batch_id = f"batch-{len(self.batches)}"
            self.batches[batch_id] = {
                "id": batch_id, "object": "batch", "endpoint": request["endpoint"],
                "input_file_id": request["input_file_id"], "completion_window": "24h",
                "status": status, "output_file_id": ids[0], "error_file_id": ids[1],
                "created_at": 0}
        # the first answer says "validating", as a real batch would; retrieve gives the end
        return {**self.batches[batch_id], "status": "validating"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
