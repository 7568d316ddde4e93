"""The review page's HTTP app (Starlette): a queue, one pair at a time, one key per label.

Routes (relative to where it is mounted):
  GET  /                      the page (page.html, page.js, page.css beside this file)
  GET  /api/runs              runs with escalated pairs, and their review counts
  GET  /api/queue             ?run=&reviewer=&overlap=&adjudicator= → the reviewer's queue
  GET  /api/pair/{id}         everything a person needs to judge one pair
  GET  /api/packshot/{id}     the pair's local packshot, re-encoded as JPEG
  POST /api/decide            {judgment_id, label|"skip", reviewer, note, role}
  POST /api/undo              {reviewer, run}
  GET  /api/paused            (on the LangGraph server) threads paused for a person
  POST /api/resume            (on the LangGraph server) {thread_id, interrupt_id, label}

Rules, because every request is hostile until checked:
- Packshots: only the image of the product a judgment names, and only as the run read it —
  a local file inside the run's images folder (or the operator's), decoded by Pillow and
  re-encoded, or a data URL; an http(s) packshot is shown by the reviewer's browser from its
  own address and never fetched by this server. No path or URL comes from the request.
- A client that is not on loopback needs a token, and with tokens configured every client
  does: as `Authorization: Bearer …`, or `?token=` once, which sets an HttpOnly,
  SameSite=Strict cookie. `RAER_REVIEW_TOKENS` ("ana=TOKEN,ben=TOKEN") gives each person a
  token of their own: the reviewer is then the token's name, whatever a request says, so
  nobody decides or undoes under another's name; `RAER_REVIEW_TOKEN` is one shared token
  (names as typed). Only reviewers named in `RAER_REVIEW_ADJUDICATORS` may adjudicate.
- Host and Origin are checked and bodies capped at 64 KB (web/guard.py): a page
  whose DNS name was re-pointed at this machine is refused.
- Writes take JSON only (a cross-site form cannot send it without a preflight this app
  never answers) and, when the browser says where it comes from, only from this origin.
- Text reaches the page as JSON and is set with textContent: seller text cannot inject
  markup. A Content-Security-Policy allows scripts from this origin only.
"""

from __future__ import annotations

import asyncio
import hmac
import io
import ipaddress
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from raer.nodes.image_source import image_kind
from raer.nodes.images import ImagePolicy, ImageUnavailable, load_packshot
from raer.store import Store, open_store
from raer.store.reviews import (
    PRIORITY_TEXT,
    SKIP,
    ReviewError,
    decide,
    queue,
    review_groups,
    undo_last,
)
from raer.store.scale import LABELS
from raer.web.guard import WebGuard

HERE = Path(__file__).resolve().parent
ASSETS = {"page.js": "text/javascript", "page.css": "text/css"}
TOKEN_ENV = "RAER_REVIEW_TOKEN"
TOKENS_ENV = "RAER_REVIEW_TOKENS"
ADJUDICATORS_ENV = "RAER_REVIEW_ADJUDICATORS"
HOSTS_ENV = "RAER_ALLOWED_HOSTS"
MAX_BODY = 64 * 1024
COOKIE = "raer_review_token"
PACKSHOT_SIDE = 800
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "img-src 'self' data: https: http:; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")


@dataclass(frozen=True)
class ReviewConfig:
    db_path: str
    images_root: str = ""
    """The operator's folder for local packshots; empty: each run's own images folder."""
    token: str = ""
    """One token shared by every reviewer (names as typed)."""
    identities: tuple[tuple[str, str], ...] = ()
    """(reviewer, token) pairs: a token of one's own binds the reviewer's name."""
    adjudicators: tuple[str, ...] = ()
    """Reviewers who may adjudicate; nobody else can."""
    allowed_hosts: tuple[str, ...] = ()
    """Host names the page answers besides loopback and its listening address."""
    on_langgraph_server: bool = False
    """Mounted in the LangGraph server: interactive threads paused for a person are listed
    and resumed through the server's own API (on loopback, at the port it listens on)."""


THREAD_ID = re.compile(r"^[0-9a-fA-F-]{32,36}$")
INTERRUPT_ID = re.compile(r"^[0-9a-zA-Z_-]{1,128}$")


def _own_api(request: Request) -> str:
    """The LangGraph API of the server this request reached: its listening port, on
    loopback (never the client's Host header)."""
    server = request.scope.get("server") or ("127.0.0.1", 80)
    return f"http://127.0.0.1:{server[1]}"


def is_loopback(host: str | None) -> bool:
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return host in ("localhost", "testclient")


def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


def _secured(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def review_app(config: ReviewConfig | Callable[[], ReviewConfig]) -> Starlette:
    """The page's app; `config` may be a function read at each request (the LangGraph
    server reads its operator configuration once, off the event loop, at start)."""
    current = config if callable(config) else (lambda: config)

    def store() -> Store:
        return open_store(current().db_path)

    async def astore() -> Store:
        """Opening may create and migrate the file: off the event loop (the LangGraph
        server refuses blocking calls on it)."""
        return await asyncio.to_thread(store)

    def identify(request: Request) -> tuple[Response | None, str | None]:
        """(refusal, bound reviewer name): the name is None when tokens do not bind one."""
        config = current()
        client = request.client.host if request.client else None
        if not config.token and not config.identities:
            if is_loopback(client):
                return None, None
            return _problem(403, f"the review page answers clients off this machine only "
                                 f"with a token: the operator sets {TOKENS_ENV} or "
                                 f"{TOKEN_ENV}"), None
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        given = given or request.cookies.get(COOKIE, "")
        for name, token in config.identities:
            if given and hmac.compare_digest(given.encode(), token.encode()):
                return None, name
        if config.token and given and hmac.compare_digest(given.encode(),
                                                          config.token.encode()):
            return None, None
        return _problem(401, "a valid review token is needed"), None

    def refused(request: Request) -> Response | None:
        return identify(request)[0]

    def acting(request: Request, body: dict[str, str]) -> tuple[Response | None, str]:
        """Who is writing: the token's name when it binds one (a different name in the
        body is refused), else the name typed; adjudication only for named adjudicators."""
        problem, bound = identify(request)
        if problem:
            return problem, ""
        typed = body.get("reviewer", "").strip()
        if bound is not None and typed and typed != bound:
            return _problem(403, f"this token is {bound}'s: it cannot act as {typed!r}"), ""
        name = bound or typed
        if body.get("role") == "adjudicator" and name not in current().adjudicators:
            return _problem(403, f"{name or 'this reviewer'} may not adjudicate: the "
                                 f"operator names adjudicators in {ADJUDICATORS_ENV}"), ""
        return None, name

    def cross_site(request: Request) -> Response | None:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return _problem(415, "send JSON (Content-Type: application/json)")
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.headers.get("host"):
            return _problem(403, "cross-origin write refused")
        return None

    async def page(request: Request) -> Response:
        given = request.query_params.get("token", "")
        tokens = [current().token, *(t for _, t in current().identities)]
        token = next((t for t in tokens if t and given
                      and hmac.compare_digest(given.encode(), t.encode())), "")
        if token:
            # the token moves into a cookie and out of the address bar (and history)
            target = request.url.remove_query_params("token")
            response = RedirectResponse(str(target.path) + (
                f"?{target.query}" if target.query else ""), status_code=303)
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict",
                                secure=request.url.scheme == "https")
            return _secured(response)
        problem = refused(request)
        if problem:
            return problem
        return _secured(FileResponse(HERE / "page.html", media_type="text/html"))

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            return _problem(404, "no such file")
        return _secured(FileResponse(HERE / name, media_type=ASSETS[name]))

    async def runs(request: Request) -> Response:
        problem = refused(request)
        if problem:
            return problem
        rows = await asyncio.to_thread((await astore()).review_runs)
        return _secured(JSONResponse({"runs": rows, "labels": list(LABELS),
                                      "priority": PRIORITY_TEXT}))

    async def queue_of(request: Request) -> Response:
        problem = refused(request)
        if problem:
            return problem
        params = request.query_params
        run_id = params.get("run", "")
        try:
            overlap = max(1, min(10, int(params.get("overlap", "1"))))
        except ValueError:
            return _problem(422, "overlap must be a whole number")
        adjudicator = params.get("adjudicator", "") in ("1", "true")
        the_store = await astore()
        todo = await asyncio.to_thread(queue, the_store, run_id, params.get("reviewer", ""),
                                       overlap, adjudicator)
        total = len(await asyncio.to_thread(review_groups, the_store, run_id))
        return _secured(JSONResponse({
            "run": run_id, "total": total, "left": len(todo),
            "priority": PRIORITY_TEXT,
            "items": [{"judgment_id": r["judgment_id"], "status": r["status"],
                       "skipped": r["mine"] == SKIP, "pairs": r["pairs"],
                       "engines": r["engines"]} for r in todo]}))

    async def pair(request: Request) -> Response:
        problem = refused(request)
        if problem:
            return problem
        item = await asyncio.to_thread(review_item, await astore(), request.path_params["jid"])
        if item is None:
            return _problem(404, "no such judgment")
        return _secured(JSONResponse(item))

    async def packshot(request: Request) -> Response:
        problem = refused(request)
        if problem:
            return problem
        try:
            data = await asyncio.to_thread(local_packshot, await astore(),
                                           request.path_params["jid"], current().images_root)
        except LookupError as exc:
            return _problem(404, str(exc))
        except ImageUnavailable as exc:
            return _problem(404, f"packshot unavailable: {exc}")
        return _secured(Response(data, media_type="image/jpeg"))

    async def write(request: Request, action: Callable[[dict[str, Any]], Any]) -> Response:
        problem = refused(request) or cross_site(request)
        if problem:
            return problem
        try:
            body = await request.json()
        except ValueError:
            return _problem(400, "the body is not JSON")
        if not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
            return _problem(422, "the body must be a JSON object of strings")
        problem, name = acting(request, body)
        if problem:
            return problem
        body = {**body, "reviewer": name}
        try:
            result = await asyncio.to_thread(action, body)
        except KeyError:
            return _problem(404, "no such judgment")
        except ReviewError as exc:
            return _problem(422, str(exc))
        return _secured(JSONResponse(result))

    async def decide_route(request: Request) -> Response:
        return await write(request, lambda b: decide(
            store(), b.get("judgment_id", ""), b.get("reviewer", ""), b.get("label", ""),
            b.get("note", ""), b.get("role", "reviewer")))

    async def undo_route(request: Request) -> Response:
        def action(body: dict[str, str]) -> dict[str, Any]:
            if not body.get("reviewer", "").strip():
                raise ReviewError("undo needs the reviewer's name")
            return undo_last(store(), body["reviewer"].strip(), body.get("run", "")) or {
                "undone": None}
        return await write(request, action)

    async def whoami(request: Request) -> Response:
        problem, bound = identify(request)
        if problem:
            return problem
        return _secured(JSONResponse({"reviewer": bound, "bound": bound is not None,
                                      "adjudicator": bound in current().adjudicators}))

    async def paused(request: Request) -> Response:
        problem = refused(request)
        if problem:
            return problem
        if not current().on_langgraph_server:
            return _problem(404, "paused threads are served by the LangGraph server's page")
        import httpx

        async with httpx.AsyncClient(timeout=30) as client:
            found = await client.post(f"{_own_api(request)}/threads/search",
                                      json={"status": "interrupted", "limit": 100})
        items = []
        for thread in found.json() if found.status_code == 200 else []:
            for task_interrupts in (thread.get("interrupts") or {}).values():
                for item in task_interrupts:
                    value = item.get("value") if isinstance(item.get("value"), dict) else {}
                    items.append({"thread_id": thread["thread_id"],
                                  "interrupt_id": item.get("id"), **{
                                      k: value.get(k) for k in (
                                          "query", "product_id", "title", "engine", "label",
                                          "confidence", "reasoning", "reasons")}})
        return _secured(JSONResponse({"items": items}))

    async def resume(request: Request) -> Response:
        problem = refused(request) or cross_site(request)
        if problem:
            return problem
        if not current().on_langgraph_server:
            return _problem(404, "paused threads are served by the LangGraph server's page")
        try:
            body = await request.json()
        except ValueError:
            return _problem(400, "the body is not JSON")
        if not isinstance(body, dict):
            return _problem(422, "the body must be a JSON object")
        thread, interrupt = str(body.get("thread_id", "")), str(body.get("interrupt_id", ""))
        label = body.get("label")
        if not THREAD_ID.match(thread) or not INTERRUPT_ID.match(interrupt):
            return _problem(422, "thread_id and interrupt_id must be ids the page listed")
        if label not in LABELS:
            return _problem(422, f"label must be one of {list(LABELS)}")
        problem, _ = acting(request, {k: v for k, v in body.items() if isinstance(v, str)})
        if problem:
            return problem
        import httpx

        async with httpx.AsyncClient(timeout=60) as client:
            started = await client.post(
                f"{_own_api(request)}/threads/{thread}/runs",
                json={"assistant_id": "raer", "command": {"resume": {interrupt: {
                    "label": label}}}})
        if started.status_code != 200:
            return _problem(started.status_code, f"the server refused: {started.text[:300]}")
        return _secured(JSONResponse({"thread_id": thread, "run_id":
                                      started.json().get("run_id"), "label": label}))

    def web_policy() -> tuple[tuple[str, ...], tuple[str, ...], int]:
        return current().allowed_hosts, (), MAX_BODY

    return Starlette(middleware=[Middleware(WebGuard, policy=web_policy, setting_names=(
        HOSTS_ENV, "no other origin"))], routes=[
        Route("/", page), Route("/assets/{name}", asset), Route("/api/runs", runs),
        Route("/api/whoami", whoami),
        Route("/api/queue", queue_of), Route("/api/pair/{jid}", pair),
        Route("/api/packshot/{jid}", packshot),
        Route("/api/decide", decide_route, methods=["POST"]),
        Route("/api/undo", undo_route, methods=["POST"]),
        Route("/api/paused", paused), Route("/api/resume", resume, methods=["POST"])])


def _json(text: str | None, default: Any) -> Any:
    try:
        return json.loads(text) if text else default
    except ValueError:
        return default


def review_item(store: Store, judgment_id: str) -> dict[str, Any] | None:
    """One pair as the page shows it: the query, the product, its packshot, the query's
    requirements and guidelines, the judge's reasoning and verdicts, why it was escalated,
    and every decision so far."""
    j = store.review_pair(judgment_id)
    if j is None:
        return None
    guidelines = store.guidelines_row(j["guidelines_key"])
    decisions = store.active_decisions(judgment_id)
    image = j["image"] or ""
    if image_kind(image) == "web":
        packshot = image  # the reviewer's browser loads it; this server never fetches it
    elif image:
        packshot = f"api/packshot/{judgment_id}"
    else:
        packshot = ""
    return {
        "judgment_id": judgment_id, "run_id": j["run_id"], "query": j["query"],
        "language": j["language"], "engine": j["engine"], "rank": j["rank"],
        "product": {"product_id": j["product_id"], "title": j["title"], "brand": j["brand"],
                    "colour": j["colour"], "category": j["category"],
                    "description": j["description"],
                    "attributes": _json(j["attributes"], {})},
        "packshot": packshot, "image_note": j["image_note"],
        "requirements": store.requirements_of(j["requirements_key"]),
        "guidelines": {k: guidelines[k] for k in ("highly_relevant", "acceptable_substitute",
                                                  "irrelevant")} if guidelines else None,
        "judge": {"label": j["label"], "confidence": j["confidence"],
                  "reasoning": j["reasoning"], "verdicts": _json(j["verdicts"], []),
                  "brand_check": j["brand_check"], "model": j["model"], "error": j["error"]},
        "review": {"status": j["review_status"], "reasons": _json(j["reasons"], []),
                   "human_label": j["human_label"], "decisions": decisions},
        "labels": list(LABELS)}


def local_packshot(store: Store, judgment_id: str, operator_root: str = "") -> bytes:
    """The JPEG of a judgment's own packshot, read as its run read it (confined to the
    run's images folder, or the operator's), decoded and re-encoded: a file that is not an
    image never reaches the browser."""
    source = store.packshot_source(judgment_id)
    if source is None or not source["image"]:
        raise LookupError("no packshot for this judgment")
    image, run_root = source["image"], source["images_root"] or ""
    if image_kind(image) in ("web", "url"):
        raise LookupError("a remote packshot is shown from its own address")
    root = operator_root or run_root
    policy = ImagePolicy.of_run_folder(root)
    shot = load_packshot(image, policy)
    img = shot.image.copy()
    img.thumbnail((PACKSHOT_SIDE, PACKSHOT_SIDE))
    buffer = io.BytesIO()
    img.convert("RGB").save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


def parse_identities(text: str) -> tuple[tuple[str, str], ...]:
    """"ana=TOKEN,ben=TOKEN" → (("ana", "TOKEN"), …); a malformed entry is an error naming
    the variable (never echoing a token)."""
    pairs = []
    for index, entry in enumerate(part.strip() for part in text.split(",") if part.strip()):
        name, sep, token = entry.partition("=")
        if not sep or not name.strip() or len(token.strip()) < 8:
            raise ValueError(f"{TOKENS_ENV}: entry {index + 1} must be NAME=TOKEN with a "
                             f"token of 8 or more characters")
        pairs.append((name.strip(), token.strip()))
    tokens = [t for _, t in pairs]
    if len(set(tokens)) != len(tokens):
        raise ValueError(f"{TOKENS_ENV}: two reviewers share a token")
    return tuple(pairs)


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def config_from_environment(db_path: str, images_root: str = "") -> ReviewConfig:
    return ReviewConfig(db_path=db_path, images_root=images_root,
                        token=os.environ.get(TOKEN_ENV, ""),
                        identities=parse_identities(os.environ.get(TOKENS_ENV, "")),
                        adjudicators=_names(os.environ.get(ADJUDICATORS_ENV, "")),
                        allowed_hosts=_names(os.environ.get(HOSTS_ENV, "")))
