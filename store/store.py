"""`Store`: the one place that reads and writes raer's SQLite file.

Rows are written as soon as they exist (a crash loses nothing), every artefact row carries
the model and prompt hash that made it, and cache tables are keyed by everything that
changes their content. Failed model output is never cached: it lives only in llm_calls.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from raer.store.migrations import migrations
from raer.store.queries import Queries
from raer.store.redact import redact
from raer.store.snapshots import Snapshots

DatabaseError = sqlite3.OperationalError
"""What a store that cannot be read or written raises (doors catch it by this name)."""

_OPEN: dict[str, Store] = {}
_OPEN_LOCK = threading.Lock()


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def package_version() -> str:
    try:
        return version("raer")
    except PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


PRODUCT_TEXT = ("title", "brand", "colour", "category", "description", "image")


def _text(value: Any) -> str:
    """A stored product field as compared: no value, "" and no attributes ("{}") alike."""
    return "" if value in (None, "", "{}") else value


def product_row(product: dict[str, Any]) -> dict[str, Any]:
    """A `Product` (model dump) as a products row (the one way in; `product_of` is the one
    way out)."""
    attributes = product.get("attributes")
    return {"id": product["product_id"],
            **{k: product.get(k, "") for k in
               PRODUCT_TEXT},
            "attributes": dumps(attributes) if attributes else "{}"}


def product_of(row: dict[str, Any]) -> dict[str, Any]:
    """A products row (or a row carrying its columns, `id` or `product_id`) as a `Product`'s
    fields: text fields never None, attributes decoded."""
    return {"product_id": row.get("product_id") or row["id"],
            **{k: row.get(k) or "" for k in PRODUCT_TEXT},
            "attributes": json.loads(row.get("attributes") or "{}")}


def claim_owner() -> str:
    """host:pid:nonce, so a claim whose process died on this host is taken over at once."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


_ABANDONED: set[str] = set()


def abandon_claim(owner: str) -> None:
    """A claim this process could not release (its store could not be written): taken
    over at once, like a dead process's, instead of waiting for it to expire."""
    _ABANDONED.add(owner)


def _alive(owner: str) -> bool:
    if owner in _ABANDONED:
        return False
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine's process: trust the expiry
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class CallTally:
    calls: int = 0
    failed: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    answers: dict[str, int] = dataclasses.field(default_factory=dict)
    """Valid answers per node."""

    def add(self, row: dict[str, Any]) -> None:
        self.calls += 1
        if row.get("parsed") is not None:
            self.answers[row["node"]] = self.answers.get(row["node"], 0) + 1
        self.failed += row.get("error") is not None
        self.tokens += (row.get("input_tokens") or 0) + (row.get("output_tokens") or 0)
        self.cost_usd += row.get("cost_usd") or 0.0


class Store(Queries, Snapshots):
    """A sqlite-utils Database with raer's tables; migrations applied on open."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self.db = Database(conn)
        self.lock = threading.RLock()
        self._tallies: dict[str, CallTally] = {}
        # Two processes opening one new store race for the journal-mode switch and the
        # migrations, where SQLite's busy timeout does not always apply: retry, bounded.
        for attempt in range(60):
            try:
                self._prepare()
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 59:
                    raise
                time.sleep(0.1 + 0.05 * attempt)

    def _prepare(self) -> None:
        if self.path != ":memory:":
            self.db.enable_wal()
            # WAL + NORMAL: a commit survives a killed process (what resumption needs) without
            # an fsync per row; only an OS crash can lose the last commits.
            self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.execute("PRAGMA foreign_keys = ON")
        with self.atomic():
            migrations.apply(self.db)

    @contextmanager
    def atomic(self) -> Iterator[Database]:
        """A write transaction that takes the write lock at BEGIN (IMMEDIATE), so two
        processes on one store wait for each other (busy timeout) instead of failing with
        "database is locked" when a read inside a deferred transaction went stale."""
        with self.lock:
            if self.db.conn.in_transaction:
                with self.db.atomic():
                    yield self.db
                return
            self.db.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.conn.rollback()
                raise
            self.db.conn.execute("COMMIT")

    # ------------------------------------------------------------ in-flight claims
    def claim(self, cache_key: str, owner: str, seconds: float) -> bool:
        """Take the cross-process claim on a model call about to be made, or say another
        live process holds it. One statement on the hot path: insert, or take over a claim
        that expired; a claim whose process died on this host is taken over at once."""
        moment = time.time()
        with self.lock:
            cursor = self.db.execute(
                """insert into claims (cache_key, owner, expires_at) values (?, ?, ?)
                   on conflict (cache_key) do update set owner = excluded.owner,
                   expires_at = excluded.expires_at
                   where claims.expires_at < ? or claims.owner = excluded.owner""",
                [cache_key, owner, moment + seconds, moment])
            self.db.conn.commit()
            if cursor.rowcount:
                return True
            holder = self.db.execute("select owner from claims where cache_key = ?",
                                     [cache_key]).fetchone()
        if holder and not _alive(holder[0]):
            with self.atomic():
                self.db.execute("delete from claims where cache_key = ? and owner = ?",
                                [cache_key, holder[0]])
            return self.claim(cache_key, owner, seconds)
        return False

    def release(self, cache_key: str, owner: str) -> None:
        with self.lock:
            self.db.execute("delete from claims where cache_key = ? and owner = ?",
                            [cache_key, owner])
            self.db.conn.commit()

    def answer_or_claim(self, cache_key: str, owner: str,
                        seconds: float) -> tuple[dict[str, Any] | None, bool]:
        """(the stored answer, None) or (None, whether we now hold the claim), in one trip
        to the store: look, claim, look again under the claim (the holder before us may have
        recorded its answer and released between our look and our claim)."""
        with self.lock:
            stored = self.successful_call(cache_key)
            if stored is not None:
                return stored, False
            if not self.claim(cache_key, owner, seconds):
                return None, False
            stored = self.successful_call(cache_key)
            if stored is not None:
                self.release(cache_key, owner)
                return stored, False
            return None, True

    # ------------------------------------------------------------ runs, queries, products
    def ensure_run(self, run_id: str, settings: dict[str, Any], models: dict[str, Any],
                   prompt_hashes: dict[str, str], images_root: str | None = None) -> None:
        with self.lock:
            if not self.db["runs"].count_where("id = ?", [run_id]):
                self.db["runs"].insert(
                    {"id": run_id, "created_at": now(), "settings": dumps(settings),
                     "models": dumps(models), "prompt_hashes": dumps(prompt_hashes),
                     "package_version": package_version()},
                    ignore=True,
                )
            if images_root is not None:
                self.db.execute("update runs set images_root = ? where id = ?",
                                [images_root, run_id])
                self.db.conn.commit()

    def product_conflicts(self, products: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
        """(product id, fields) for products stored with other content than given here: a
        product id names one product, so its content is never silently overwritten (a run
        already judged, `raer show` and retry-failed read the stored one)."""
        rows = [product_row(p) for p in products]
        conflicts = []
        with self.lock:
            for start in range(0, len(rows), 500):
                chunk = rows[start:start + 500]
                stored = {r["id"]: r for r in self.db.query(
                    f"select * from products where id in ({','.join('?' * len(chunk))})",
                    [r["id"] for r in chunk])}
                for row in chunk:
                    old = stored.get(row["id"])
                    if old is not None:
                        fields = [k for k, v in row.items()
                                  if k != "id" and _text(old.get(k)) != _text(v)]
                        if fields:
                            conflicts.append((row["id"], fields))
        return conflicts

    def upsert_query(self, row: dict[str, Any]) -> None:
        with self.lock:
            self.db["queries"].upsert(row, pk="id")

    # ------------------------------------------------------------ model calls
    def record_call(self, row: dict[str, Any], release: str | None = None) -> int:
        """One llm_calls row; with `release` (the claim's owner) the call's claim is given
        up in the same transaction, so waiting processes find the answer as the claim ends."""
        with self.atomic():
            call_id = self._insert("llm_calls", {**row, "error": redact(row.get("error")),
                                                 "created_at": now()})
            if release is not None:
                self.db.execute("delete from claims where cache_key = ? and owner = ?",
                                [row["cache_key"], release])
            self._tallies.setdefault(row["run_id"], CallTally()).add(row)
            return call_id

    def _insert(self, table: str, row: dict[str, Any]) -> int:
        """A plain INSERT of a row into an existing table: sqlite-utils' insert checks and
        shapes the table on every call, which the hot path (a row per model call) pays for
        37,000 times in the benchmark."""
        columns = ", ".join(f"[{c}]" for c in row)
        cursor = self.db.execute(
            f"insert into [{table}] ({columns}) values ({', '.join('?' * len(row))})",
            list(row.values()))
        return cursor.lastrowid

    def tally(self, run_id: str) -> CallTally:
        """Calls this process recorded for a run, counted as they were written: progress
        displays read this, not an aggregate over the whole llm_calls table per pair."""
        with self.lock:
            tally = self._tallies.get(run_id) or CallTally()
            return dataclasses.replace(tally, answers=dict(tally.answers))

    def successful_call(self, cache_key: str) -> dict[str, Any] | None:
        """The first validated answer recorded for a cache key (errors are never reused):
        its id, model and parsed JSON."""
        with self.lock:
            row = self.db.execute(
                "select id, model, parsed from llm_calls where cache_key = ? and parsed is not"
                " null order by id limit 1", [cache_key]).fetchone()
        return {"id": row[0], "model": row[1], "parsed": row[2]} if row else None

    # ------------------------------------------------------------ caches
    def cached(self, table: str, cache_key: str) -> dict[str, Any] | None:
        with self.lock:
            rows = list(self.db[table].rows_where("cache_key = ?", [cache_key], limit=1))
        return rows[0] if rows else None

    def put_cached(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        """Store a cache row unless one exists (another process may have been first);
        returns the row the cache holds."""
        with self.atomic():
            self.db[table].insert({**row, "created_at": now()}, pk="cache_key", ignore=True)
            return self.cached(table, row["cache_key"])

    def listed(self, item_keys: list[str]) -> dict[str, dict[str, Any]]:
        """Listwise judgments already made, by item key (nodes/judge_list.py)."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(item_keys), 500):
            chunk = item_keys[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.rows(f"select * from listed_judgments where item_key in ({marks})",
                                 chunk):
                found[row["item_key"]] = row
        return found

    def put_listed(self, rows: list[dict[str, Any]]) -> None:
        """One listwise call's accepted judgments, in one transaction (a product another
        process stored first keeps that process's row)."""
        with self.atomic():
            stamp = now()
            self.db["listed_judgments"].insert_all(
                [{**row, "created_at": stamp} for row in rows], pk="item_key", ignore=True)

    # ------------------------------------------------------------ judgments and reviews
    def record_judgment(self, row: dict[str, Any], review: dict[str, Any] | None,
                        product: dict[str, Any] | None = None) -> None:
        """Write a judgment (with its product, and its review entry) atomically; a rerun
        replaces nothing done."""
        with self.atomic():
            if product is not None:
                self.db["products"].upsert(product_row(product), pk="id")
            self.db["judgments"].upsert({**row, "error": redact(row.get("error")),
                                         "created_at": now()}, pk="id")
            if review is not None:
                existing = self.db["reviews"].count_where("judgment_id = ?", [row["id"]])
                if not existing:
                    self.db["reviews"].insert({**review, "created_at": now()}, pk="judgment_id")
                    if review.get("human_label"):  # a person answered an interactive run
                        self.db["review_decisions"].insert({
                            "judgment_id": row["id"], "reviewer": review["reviewer"],
                            "label": review["human_label"], "note": "", "role": "reviewer",
                            "created_at": now()})

    def mark_pairs(self, queries: list[dict[str, Any]], products: list[dict[str, Any]],
                   judgments: list[dict[str, Any]]) -> None:
        """Write pair rows (pending, or failed with a reason) in one transaction, leaving
        pairs that are already done or escalated untouched."""
        with self.atomic():
            for row in queries:
                self.db["queries"].upsert(row, pk="id")
            for product in products:
                self.db["products"].upsert(product_row(product), pk="id")
            finished = {r["id"] for r in self.db.query(
                "select id from judgments where run_id = ? and status in ('done', 'escalated')",
                [judgments[0]["run_id"]])} if judgments else set()
            self.db["judgments"].upsert_all(
                [{**j, "error": redact(j.get("error")), "created_at": now()}
                 for j in judgments if j["id"] not in finished],
                pk="id")

    def pair_statuses(self, run_id: str) -> dict[str, int]:
        with self.lock:
            return {r["status"]: r["n"] for r in self.db.query(
                "select status, count(*) as n from judgments where run_id = ? group by status",
                [run_id])}

    def output_token_history(self) -> dict[tuple[str, str], float]:
        """Mean output tokens of valid answers per (node, model), for estimates."""
        return {(r["node"], r["model"]): r["avg"] for r in self.rows(
            "select node, model, avg(output_tokens) as avg from llm_calls "
            "where parsed is not null and output_tokens > 0 group by node, model")}

    def run_judgments(self, run_id: str) -> dict[str, dict[str, Any]]:
        """A run's judgment rows by id, each with its query's text."""
        return {r["id"]: r for r in self.rows(
            "select j.*, q.text as query from judgments j join queries q on q.id = j.query_id "
            "where j.run_id = ?", [run_id])}

    def latest_judging_run(self) -> str | None:
        rows = self.rows("select id from runs where settings not like '%\"baseline\"%' "
                         "order by created_at desc limit 1")
        return rows[0]["id"] if rows else None

    def run_ids(self) -> list[str]:
        """Every run's id, newest first."""
        return [r["id"] for r in self.rows("select id from runs order by created_at desc")]

    def runs_overview(self) -> list[dict[str, Any]]:
        """Each run with its kind, settings summary, pairs by status, engines and date,
        newest first (`raer runs`)."""
        runs = self.rows("select id, created_at, settings, models from runs "
                         "order by created_at desc")
        counts: dict[str, dict[str, int]] = {}
        engines: dict[str, set[str]] = {}
        for r in self.rows("select run_id, status, engine, count(*) as n from judgments "
                           "group by run_id, status, engine"):
            counts.setdefault(r["run_id"], {})
            counts[r["run_id"]][r["status"]] = counts[r["run_id"]].get(r["status"], 0) + r["n"]
            engines.setdefault(r["run_id"], set()).add(r["engine"] or "")
        out = []
        for r in runs:
            settings = json.loads(r["settings"] or "{}")
            models = json.loads(r["models"] or "{}")
            out.append({"run_id": r["id"], "created_at": r["created_at"],
                        "kind": "baseline" if "baseline" in settings else "judge",
                        "judge_model": models.get("judge", "") if isinstance(models, dict)
                        else "", "guidelines": settings.get("guideline_mode", ""),
                        "review_below": settings.get("review_below"),
                        "pairs": counts.get(r["id"], {}),
                        "engines": sorted(engines.get(r["id"], set()))})
        return out

    def run_row(self, run_id: str) -> dict[str, Any] | None:
        rows = self.rows("select * from runs where id = ?", [run_id])
        return rows[0] if rows else None

    def pair_rows(self, run_id: str, statuses: tuple[str, ...]) -> list[dict[str, Any]]:
        """A run's pairs with these statuses: query fields, engine, rank and the product."""
        marks = ",".join("?" * len(statuses))
        return self.rows(
            f"""select q.text, q.language, q.query_type, j.engine, j.rank, p.*
                from judgments j join queries q on q.id = j.query_id
                join products p on p.id = j.product_id
                where j.run_id = ? and j.status in ({marks}) order by j.query_id, j.rank""",
            [run_id, *statuses])

    def engine_rows(self, run_id: str) -> list[dict[str, Any]]:
        """A run's judgments with their query, product title and review: what engine
        evaluation reads (the effective label is decided in evals/engines.py)."""
        return self.rows(
            """select j.id, j.query_id, j.engine, j.rank, j.product_id, j.status, j.label,
                      j.confidence, j.reasoning, j.model, q.text as query, q.language,
                      q.query_type,
                      p.title, r.status as review_status, r.human_label, r.reviewer
               from judgments j join queries q on q.id = j.query_id
               join products p on p.id = j.product_id
               left join reviews r on r.judgment_id = j.id
               where j.run_id = ? order by j.query_id, j.engine, j.rank""", [run_id])

    def human_label_rows(self, source: str, split: str = "") -> list[dict[str, Any]]:
        """Imported human labels of a source (one row per annotator and pair), with the
        query text and the product's text fields."""
        sql = """select h.query_id, q.text as query, h.product_id, p.title, p.brand,
                        p.colour, p.category, p.description, p.attributes, h.annotator,
                        h.label
                 from human_labels h join queries q on q.id = h.query_id
                 join products p on p.id = h.product_id where h.source = ?"""
        params = [source]
        if split:
            sql += " and h.split = ?"
            params.append(split)
        return self.rows(sql + " order by h.query_id, h.product_id", params)

    def put_human_label(self, query_id: str, product_id: str, annotator: str, label: str,
                        source: str, split: str = "") -> None:
        """One person's label for a pair under a source (again: replaced, not added). Call
        inside `atomic()` when writing many."""
        with self.lock:
            self.db.execute(
                """insert into human_labels (query_id, product_id, annotator, label, raw_label,
                                             source, split, created_at)
                   values (?, ?, ?, ?, ?, ?, ?, ?)
                   on conflict (query_id, product_id, annotator, source) do update set
                   label = excluded.label, raw_label = excluded.raw_label,
                   split = excluded.split""",
                [query_id, product_id, annotator, label, label, source, split, now()])

    def save_evaluation(self, row: dict[str, Any]) -> int:
        with self.atomic():
            return self.db["evaluations"].insert({**row, "created_at": now()}).last_pk

    def evaluations(self, engine: str | None = None) -> list[dict[str, Any]]:
        sql = "select * from evaluations" + (" where engine = ?" if engine else "")
        return self.rows(sql + " order by id", [engine] if engine else [])

    def paired_judgments(self, run_a: str, run_b: str) -> list[dict[str, Any]]:
        """The pairs (query, engine, product) both runs judged, side by side."""
        return self.rows(
            """select q.text as query, a.query_id, a.engine, a.product_id, p.title,
                      a.id as id_a, a.status as status_a, a.label as label_a,
                      a.confidence as confidence_a, a.reasoning as reasoning_a,
                      a.prompt_hash as prompt_a,
                      b.id as id_b, b.status as status_b, b.label as label_b,
                      b.confidence as confidence_b, b.reasoning as reasoning_b,
                      b.prompt_hash as prompt_b
               from judgments a
               join judgments b on b.query_id = a.query_id and b.engine = a.engine
                                and b.product_id = a.product_id and b.run_id = ?
               join queries q on q.id = a.query_id join products p on p.id = a.product_id
               where a.run_id = ? order by q.text, a.engine, a.rank, a.product_id""",
            [run_b, run_a])

    def finished_pairs(self, run_id: str) -> set[str]:
        """Judgment ids of this run that need no more work (done or escalated)."""
        with self.lock:
            return {r["id"] for r in self.db.query(
                "select id from judgments where run_id = ? and status in ('done', 'escalated')",
                [run_id])}

    def reviews(self, run_id: str | None = None, status: str | None = "open") -> list[dict]:
        """One row per review: per distinct judge input of a run (store/reviews.py), its
        best-ranked pair, with the pairs and engines it covers."""
        sql = """select r.judgment_id, r.run_id, r.reasons, r.status, r.human_label,
                        q.text as query, p.id as product_id, p.title, j.label, j.confidence,
                        j.engine, j.rank, j.input_hash
                 from reviews r join judgments j on j.id = r.judgment_id
                 join queries q on q.id = j.query_id join products p on p.id = j.product_id
                 where 1 = 1"""
        params: list[Any] = []
        if run_id:
            sql += " and r.run_id = ?"
            params.append(run_id)
        if status:
            sql += " and r.status = ?"
            params.append(status)
        with self.lock:
            rows = list(self.db.query(sql + " order by r.created_at", params))
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault((row["run_id"], row.pop("input_hash") or row["judgment_id"]),
                              []).append(row)
        result = []
        for members in groups.values():
            first = min(members, key=lambda r: (r["rank"] or 10**6, r["judgment_id"]))
            result.append({**first, "pairs": len(members),
                           "engines": sorted({m["engine"] or "" for m in members})})
        return result

    def resolve_review(self, judgment_id: str, label: str, reviewer: str, note: str = "",
                       role: str = "reviewer") -> dict[str, Any]:
        """One person's decision on a pair (store/reviews.py decides the outcome)."""
        from raer.store.reviews import decide

        return decide(self, judgment_id, reviewer, label, note, role)

    # ------------------------------------------------------------ reading
    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.db.query(sql, list(params)))

    def tuples(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows as plain tuples: for reads of hundreds of thousands of rows, where building
        a dict per row costs more than the query."""
        with self.lock:
            return self.db.execute(sql, list(params)).fetchall()

    def close(self) -> None:
        with _OPEN_LOCK:
            _OPEN.pop(self.path, None)
        self.db.conn.close()


class StoreUnusable(Exception):
    """The --db path cannot be used as raer's store; the message says why, naming it."""


class StoreFull(StoreUnusable):
    """The store's disk (or SQLite's page limit) is full: the run stopped at once; what
    was written is whole, the rest stays pending for the same command once there is room."""


def free_bytes(path: str | Path) -> int:
    """Bytes free to this user on the filesystem holding `path`."""
    stat = os.statvfs(Path(path).resolve().parent)
    return stat.f_bavail * stat.f_frsize


def ensure_room(path: str | Path, min_free_mb: float) -> None:
    """Raise StoreFull before a model call is paid whose answer the store may not have room
    for (one statvfs call, microseconds, before each model call). A call's answer that
    cannot be written is lost and paid again on the rerun; stopping with room to spare pays
    nothing twice."""
    if min_free_mb <= 0:
        return
    free = free_bytes(path)
    if free < min_free_mb * 2**20:
        raise StoreFull(f"{path}: only {free / 2**20:.1f} MB free on its disk, under the "
                        f"{min_free_mb:g} MB kept for answers in flight; the run stopped "
                        f"before paying for calls it could not store. What was written is "
                        f"whole; free space and run the same command again")


def is_disk_full(exc: BaseException) -> bool:
    """SQLite's SQLITE_FULL ("database or disk is full"), the OS's ENOSPC, or the room
    check's StoreFull."""
    if isinstance(exc, StoreFull):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or (
            "database or disk is full" in str(exc))
    return isinstance(exc, OSError) and exc.errno == 28


def already_open(path: str | Path) -> Store | None:
    """The process's Store for a path if it is open (no I/O: safe on an event loop)."""
    return _OPEN.get(str(path))


def open_store(path: str | Path) -> Store:
    """The process's one Store for a path (nodes of concurrent queries share it)."""
    key = str(path)
    with _OPEN_LOCK:
        store = _OPEN.get(key)
        if store is None:
            try:
                store = _OPEN[key] = Store(key)
            except sqlite3.DatabaseError as exc:
                raise StoreUnusable(f"{key}: not a usable SQLite store ({exc})") from exc
            except OSError as exc:
                raise StoreUnusable(f"{key}: cannot open the store ({exc.strerror})") from exc
        return store
