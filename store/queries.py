"""The store's named reads and writes for the statistics, the doors and the people's tools.

Every SQL statement of raer lives in store/: the commands, the web page and evals ask the
store by name (tests/test_store_guard.py checks there is no SQL elsewhere). Before, 55 call
sites outside store/ wrote SQL of their own, evals wrote through the store's database
handle, and a column rename meant a grep over the whole project.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any


class Queries:
    """Mixed into `Store` (store.py): it supplies `rows`, `tuples`, `atomic`, `db`, `lock`."""

    rows: Any
    tuples: Any
    atomic: Any
    db: Any
    lock: Any

    # ------------------------------------------------------------ runs and calls
    def run_models(self, run_id: str) -> dict[str, Any] | None:
        """The run's stored settings and models (decoded), or None for no such run."""
        rows = self.rows("select settings, models from runs where id = ?", [run_id])
        if not rows:
            return None
        return {"settings": json.loads(rows[0]["settings"]),
                "models": json.loads(rows[0]["models"])}

    _TOTALS = """count(*) as calls, coalesce(sum(input_tokens + output_tokens), 0) as tokens,
                 coalesce(sum(cached_tokens), 0) as cached_tokens,
                 coalesce(sum(cost_usd), 0) as cost_usd,
                 coalesce(sum(cost_usd is null and error is null), 0) as unpriced_calls,
                 coalesce(sum(error is not null), 0) as failed_calls,
                 coalesce(sum(latency_ms), 0) / 1000.0 as model_seconds"""

    def call_totals(self, run_id: str) -> dict[str, Any]:
        return self.rows(f"select {self._TOTALS} from llm_calls where run_id = ?", [run_id])[0]

    def call_totals_by_node(self, run_id: str) -> list[dict[str, Any]]:
        return self.rows(f"select node, model, {self._TOTALS} from llm_calls where run_id = ? "
                         "group by node, model order by min(id)", [run_id])

    def run_spent(self, run_id: str) -> float:
        """USD the run's recorded calls cost (the spending limit starts from it)."""
        return self.rows("select coalesce(sum(cost_usd), 0) as s from llm_calls "
                         "where run_id = ?", [run_id])[0]["s"]

    def call_tokens(self, run_id: str) -> list[dict[str, Any]]:
        return self.rows("select node, model, input_tokens, output_tokens, cached_tokens "
                         "from llm_calls where run_id = ?", [run_id])

    def call_counts(self, run_id: str) -> dict[str, int]:
        """Calls recorded for the run and valid judge answers among them (two indexed
        counts, read before and after: the work may happen in other processes)."""
        counts = self.rows("""select count(*) as calls,
                                   coalesce(sum(node = 'judge_pair' and parsed is not null), 0)
                                     as judge_answers
                            from llm_calls where run_id = ?""", [run_id])[0]
        # a listwise call answers many products: each stored one is an answer
        counts["judge_answers"] += self.rows(
            """select count(*) as n from listed_judgments
               where call_id in (select id from llm_calls
                                 where run_id = ? and node = 'judge_list')""", [run_id])[0]["n"]
        return counts

    def judgment_span(self, run_id: str) -> dict[str, Any]:
        """Pairs of the run, when they were written, and the distinct artefacts they used."""
        return self.rows(
            """select count(*) as n, min(created_at) as first, max(created_at) as last,
                      count(distinct requirements_key) as requirements,
                      count(distinct guidelines_key) as guidelines,
                      count(distinct description_key) as descriptions,
                      sum(description_key is not null) as described
               from judgments where run_id = ?""", [run_id])[0]

    def answers_made_by_node(self, run_id: str) -> dict[str, int]:
        """Distinct artefacts the run's own calls made, per node."""
        return {r["node"]: r["n"] for r in self.rows(
            "select node, count(distinct cache_key) as n from llm_calls where run_id = ? and "
            "parsed is not null group by node", [run_id])}

    def ranked_pairs(self, run_id: str) -> int:
        return self.rows("select count(*) as n from judgments where run_id = ? and "
                         "rank is not null", [run_id])[0]["n"]

    def table_counts(self) -> dict[str, int]:
        return {t: self.db[t].count for t in self.db.table_names() if not t.startswith("_")}

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the file (before the file is copied elsewhere)."""
        with self.lock:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # ------------------------------------------------------------ judgments
    def judged_products(self, run_id: str) -> set[tuple[str, str]]:
        """(query_id, product_id) the run has a judgment for, whatever the engine: another
        engine's pair of the same product reuses that judge answer."""
        return {(r["query_id"], r["product_id"]) for r in self.rows(
            "select distinct query_id, product_id from judgments where run_id = ? and "
            "status in ('done', 'escalated')", [run_id])}

    def judged_for_sampling(self, run_id: str) -> list[dict[str, Any]]:
        return self.rows("select id, query_id, engine, status, label, confidence from "
                         "judgments where run_id = ? and status in ('done', 'escalated') "
                         "order by id", [run_id])

    def judgment_confidences(self, run_id: str) -> dict[str, float | None]:
        return {r["id"]: r["confidence"] for r in self.rows(
            "select id, confidence from judgments where run_id = ?", [run_id])}

    def judgment_pair(self, judgment_id: str) -> dict[str, Any] | None:
        """The (query_id, product_id) a judgment is about, or None."""
        rows = self.rows("select query_id, product_id from judgments where id = ?",
                         [judgment_id])
        return rows[0] if rows else None

    def known_judgments(self, ids: Iterable[str]) -> set[str]:
        ids = sorted(set(ids))
        known: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            known |= {r["id"] for r in self.rows(
                f"select id from judgments where id in ({','.join('?' * len(chunk))})",
                chunk)}
        return known

    def labelled_judgments(self, run_id: str, source: str = "",
                           split: str = "") -> Iterable[tuple]:
        """The run's judgments joined with their human labels, one tuple per (judgment,
        annotator): id, query id, text, language, query type, engine, product id, title,
        status, label, reasoning, guidelines key, annotator, human label, raw label,
        leave-one-out estimate, review status, reviewed label."""
        sql = """select j.id, j.query_id, q.text, q.language, q.query_type, j.engine,
                        j.product_id, p.title, j.status, j.label, j.reasoning,
                        j.guidelines_key, h.annotator, h.label as human, h.raw_label,
                        h.loo_estimate, r.status as review_status, r.human_label as reviewed
                 from judgments j join human_labels h
                   on h.query_id = j.query_id and h.product_id = j.product_id
                 join queries q on q.id = j.query_id join products p on p.id = j.product_id
                 left join reviews r on r.judgment_id = j.id
                 where j.run_id = ?"""
        params: list[Any] = [run_id]
        if source:
            sql += " and h.source = ?"
            params.append(source)
        if split:
            sql += " and h.split = ?"
            params.append(split)
        return self.tuples(sql, params)

    def robustness_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self.rows(
            """select j.engine, j.query_id, j.product_id, j.label, j.status, r.reasons,
                      p.title, p.brand, p.colour, p.category, p.description, p.attributes
               from judgments j left join reviews r on r.judgment_id = j.id
               join products p on p.id = j.product_id
               where j.run_id = ?""", [run_id])

    def write_baseline_judgments(self, rows: list[dict[str, Any]]) -> None:
        with self.atomic():
            for row in rows:
                self.db["judgments"].upsert(row, pk="id")

    # ------------------------------------------------------------ queries, products, artefacts
    def query_texts(self) -> dict[str, str]:
        return {r["id"]: r["text"] for r in self.rows("select id, text from queries")}

    def queries_by_id(self) -> dict[str, dict[str, Any]]:
        return {r["id"]: r for r in self.rows("select * from queries")}

    def products_by_id(self) -> dict[str, dict[str, Any]]:
        return {r["id"]: r for r in self.rows("select * from products")}

    def product(self, product_id: str) -> dict[str, Any] | None:
        """A product as the nodes see it (`product_id`, attributes decoded), or None."""
        rows = self.rows("select * from products where id = ?", [product_id])
        if not rows:
            return None
        from raer.store.store import product_of

        return product_of(rows[0])

    def product_titles(self, run_id: str) -> dict[str, str]:
        return {r["id"]: r["title"] for r in self.rows(
            "select id, title from products where id in (select product_id from judgments "
            "where run_id = ?)", [run_id])}

    def guidelines_row(self, cache_key: str) -> dict[str, Any] | None:
        rows = self.rows("select * from guidelines where cache_key = ?", [cache_key or ""])
        return rows[0] if rows else None

    def requirements_of(self, cache_key: str) -> list[dict[str, Any]]:
        rows = self.rows("select requirements from requirements where cache_key = ?",
                         [cache_key or ""])
        return (json.loads(rows[0]["requirements"] or "{}").get("requirements", [])
                if rows else [])

    # ------------------------------------------------------------ disagreements
    def disagreement_categories(self, model: str, prompt_hash: str) -> dict[str, str]:
        return {r["judgment_id"]: r["category"] for r in self.rows(
            "select judgment_id, category from disagreements where model = ? and "
            "prompt_hash = ?", [model, prompt_hash])}

    def put_disagreement(self, row: dict[str, Any]) -> None:
        with self.atomic():
            self.db["disagreements"].upsert(row, pk="judgment_id")

    # ------------------------------------------------------------ reviews
    def review_reasons(self, run_id: str) -> dict[str, list[str]]:
        return {r["judgment_id"]: json.loads(r["reasons"] or "[]") for r in self.rows(
            "select judgment_id, reasons from reviews where run_id = ?", [run_id])}

    def resolved_review_pairs(self) -> set[tuple[str, str]]:
        return {(r["query_id"], r["product_id"]) for r in self.rows(
            "select j.query_id, j.product_id from reviews r join judgments j "
            "on j.id = r.judgment_id where r.status = 'resolved'")}

    def reviewed_examples_rows(self, query_id: str) -> list[dict[str, Any]]:
        """The query's resolved reviews, newest first (nodes/feedback.py picks examples)."""
        return self.rows(
            """select j.product_id, p.title, p.brand, r.human_label as label,
                      coalesce(r.note, '') as note, r.resolved_at
               from reviews r join judgments j on j.id = r.judgment_id
               join products p on p.id = j.product_id
               where j.query_id = ? and r.status = 'resolved' and r.human_label is not null
               order by r.resolved_at desc""", [query_id])

    def resolved_reviews(self, run_id: str) -> dict[str, dict[str, Any]]:
        """judgment id → who resolved its review and their note (the exports' rater)."""
        return {r["judgment_id"]: r for r in self.rows(
            "select judgment_id, reviewer, note from reviews where run_id = ? and "
            "status = 'resolved'", [run_id])}

    def review_status_counts(self, run_id: str) -> dict[str, int]:
        return {r["status"]: r["n"] for r in self.rows(
            "select status, count(*) as n from reviews where run_id = ? group by status",
            [run_id])}

    def decisions_per_reviewer(self, run_id: str) -> dict[str, int]:
        return {r["reviewer"]: r["n"] for r in self.rows(
            """select d.reviewer, count(*) as n from review_decisions d join judgments j
               on j.id = d.judgment_id where j.run_id = ? and d.undone_at is null
               and d.label != 'skip' group by d.reviewer""", [run_id])}

    def latest_decision(self, judgment_id: str, reviewer: str) -> str | None:
        rows = self.rows(
            "select label from review_decisions where judgment_id = ? and reviewer = ? "
            "and undone_at is null order by id desc limit 1", [judgment_id, reviewer])
        return rows[0]["label"] if rows else None

    def latest_decisions(self, run_id: str) -> dict[tuple[str, str, str], str]:
        """Each reviewer's latest label (not skip, not undone) per (query, product) of the
        run: (query_id, product_id, reviewer) → label."""
        rows = self.rows(
            """select j.query_id, j.product_id, d.reviewer, d.label from review_decisions d
               join judgments j on j.id = d.judgment_id
               where j.run_id = ? and d.undone_at is null and d.label != 'skip'
               order by d.id""", [run_id])
        return {(r["query_id"], r["product_id"], r["reviewer"]): r["label"] for r in rows}

    def review_tasks(self, run_id: str, status: str | None) -> list[dict[str, Any]]:
        """The run's reviews with query and product, lowest confidence first."""
        sql = """select r.judgment_id, r.reasons, j.label, j.confidence, j.engine, j.rank,
                        q.text as query, q.language, p.*
                 from reviews r join judgments j on j.id = r.judgment_id
                 join queries q on q.id = j.query_id join products p on p.id = j.product_id
                 where r.run_id = ?""" + (" and r.status = ?" if status else "")
        return self.rows(sql + " order by j.confidence, j.rank",
                         [run_id, status] if status else [run_id])

    def review_runs(self) -> list[dict[str, Any]]:
        """Runs with reviews, newest first, with their review counts."""
        return self.rows("""
            select r.run_id, min(ru.created_at) as created_at, count(*) as pairs,
                   sum(r.status = 'open') as open, sum(r.status = 'resolved') as resolved,
                   sum(r.status = 'disputed') as disputed
            from reviews r join runs ru on ru.id = r.run_id
            group by r.run_id order by created_at desc""")

    def review_pair(self, judgment_id: str) -> dict[str, Any] | None:
        """One judged pair with its query, product and review (the review page's view)."""
        rows = self.rows(
            """select j.*, q.text as query, q.language, q.query_type, p.title, p.brand,
                      p.colour, p.category, p.description, p.attributes, p.image,
                      r.reasons, r.status as review_status, r.human_label
               from judgments j join queries q on q.id = j.query_id
               join products p on p.id = j.product_id
               left join reviews r on r.judgment_id = j.id where j.id = ?""", [judgment_id])
        return rows[0] if rows else None

    def active_decisions(self, judgment_id: str) -> list[dict[str, Any]]:
        return self.rows("select reviewer, label, note, role, created_at from "
                         "review_decisions where judgment_id = ? and undone_at is null "
                         "order by id", [judgment_id])

    def packshot_source(self, judgment_id: str) -> dict[str, Any] | None:
        """A judgment's image and the folder its run confined local packshots to."""
        rows = self.rows("""select p.image, ru.images_root from judgments j
                            join products p on p.id = j.product_id
                            join runs ru on ru.id = j.run_id where j.id = ?""", [judgment_id])
        return rows[0] if rows else None

    # ------------------------------------------------------------ human labels
    def human_splits(self, source: str) -> list[str]:
        return [r["split"] for r in self.rows(
            "select distinct split from human_labels where source = ? order by split",
            [source])]

    def human_labels_by_pair(self, source: str, split: str = ""
                             ) -> dict[tuple[str, str], dict[str, str]]:
        """The one reader of people's labels as qrels: (query_id, product_id) → annotator
        → label, for a source (and split)."""
        by_pair: dict[tuple[str, str], dict[str, str]] = {}
        for r in self.human_label_rows(source, split):  # type: ignore[attr-defined]
            by_pair.setdefault((r["query_id"], r["product_id"]), {})[r["annotator"]] = \
                r["label"]
        return by_pair

    def product_changes(self, rows: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
        """(product id, fields) where a given products row (only the fields it has) differs
        from the stored product's non-empty text."""
        changes = []
        for start in range(0, len(rows), 500):
            chunk = rows[start:start + 500]
            stored = {r["id"]: r for r in self.rows(
                f"select * from products where id in ({','.join('?' * len(chunk))})",
                [r["id"] for r in chunk])}
            for row in chunk:
                old = stored.get(row["id"])
                if old is None:
                    continue
                fields = [k for k, v in row.items() if k != "id" and old.get(k)
                          and old.get(k) not in ("{}",) and old[k] != v]
                if fields:
                    changes.append((row["id"], fields))
        return changes

    def put_imported_labels(self, rows: list[dict[str, Any]]) -> None:
        """Queries, products and labels of an import in one transaction; importing again
        replaces a label (same query, product, annotator and source)."""
        from raer.store.store import now

        with self.atomic():
            for row in rows:
                self.db["queries"].upsert(row["query"], pk="id")
                self.db["products"].upsert(row["product"], pk="id")
                label = row["label"]
                self.db.execute(
                    """insert into human_labels (query_id, product_id, annotator, label,
                                                 raw_label, source, split, created_at,
                                                 loo_estimate)
                       values (?, ?, ?, ?, ?, ?, ?, ?, ?)
                       on conflict (query_id, product_id, annotator, source) do update set
                       label = excluded.label, raw_label = excluded.raw_label,
                       split = excluded.split, loo_estimate = excluded.loo_estimate""",
                    [label["query_id"], label["product_id"], label["annotator"],
                     label["label"], label["raw_label"], label["source"], label["split"],
                     now(), label["loo_estimate"]])
