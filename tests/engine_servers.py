"""Loopback servers that answer as OpenSearch, Elasticsearch, Solr and a generic JSON search
API document it, recording every request so tests can check its shape.

Shapes, from the engines' own documents:
- OpenSearch search API, docs.opensearch.org/latest/api-reference/search-apis/search/ (the
  same response shape as Elasticsearch's, elastic.co/docs/api/doc/elasticsearch/operation/
  operation-search): `{"took", "timed_out", "_shards", "hits": {"total": {"value",
  "relation"}, "max_score", "hits": [{"_index", "_id", "_score", "_source"}]}}`.
- Multi-search, docs.opensearch.org/latest/api-reference/search-apis/multi-search/ and
  elastic.co/docs/api/doc/elasticsearch/operation/operation-msearch: NDJSON request (a
  header line then a body line per search, every line ending in "\\n", Content-Type
  application/x-ndjson); response `{"took", "responses": [search response + "status", or
  {"error": {"root_cause", "type", "reason"}, "status"}]}`.
- Errors (both engines): `{"error": {"root_cause": [{"type", "reason"}], "type", "reason"},
  "status"}` with the HTTP status.
- Solr select, solr.apache.org/guide/solr/latest/query-guide/json-request-api.html and
  response-writers.html (JSON writer): `{"responseHeader": {"status", "QTime", "params"},
  "response": {"numFound", "start", "numFoundExact", "docs": [...]}}`; multi-valued fields
  are lists.
- Algolia search, algolia.com/doc/rest-api/search/search-single-index: `POST
  /1/indexes/{index}/query` with `X-Algolia-API-Key`, `X-Algolia-Application-Id`, body
  `{"query", "hitsPerPage"}`; response `{"hits": [{"objectID", ...}], "nbHits", "page"}`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    method: str
    path: str
    params: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


Route = Callable[[Seen], tuple[int, Any]]


@dataclass
class Server:
    route: Route
    seen: list[Seen] = field(default_factory=list)
    delay_s: float = 0.0
    httpd: ThreadingHTTPServer | None = None
    tls: Any = None
    """An ssl.SSLContext: the server speaks HTTPS."""

    @property
    def url(self) -> str:
        assert self.httpd is not None
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> Server:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                seen = Seen(self.command, parts.path, parse_qs(parts.query),
                            {k.lower(): v for k, v in self.headers.items()},
                            self.rfile.read(length) if length else b"")
                server.seen.append(seen)
                if server.delay_s:
                    time.sleep(server.delay_s)
                status, answer = server.route(seen)
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://203.0.113.9/elsewhere")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if self.tls is not None:
            self.httpd.socket = self.tls.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        assert self.httpd is not None
        self.httpd.shutdown()
        self.httpd.server_close()


def search_response(index: str, docs: list[dict[str, Any]]) -> dict[str, Any]:
    """A search API answer as OpenSearch and Elasticsearch document it."""
    return {"took": 3, "timed_out": False,
            "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
            "hits": {"total": {"value": len(docs), "relation": "eq"},
                     "max_score": float(len(docs)) if docs else None,
                     "hits": [{"_index": index, "_id": d["id"], "_score": float(len(docs) - i),
                               "_source": {k: v for k, v in d.items() if k != "id"}}
                              for i, d in enumerate(docs)]}}


def engine_error(status: int, kind: str, reason: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"root_cause": [{"type": kind, "reason": reason}],
                              "type": kind, "reason": reason}, "status": status}


def solr_response(docs: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    return {"responseHeader": {"status": 0, "QTime": 1, "params": params},
            "response": {"numFound": len(docs), "start": 0, "numFoundExact": True,
                         "docs": docs}}
