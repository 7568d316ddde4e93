"""The store's reads and writes of snapshots and experiments (store/migrations.py m011).

A snapshot is written whole or not at all: its queries, products and ranked results go in
one transaction after every engine has answered, so an engine error or a kill during
retrieval leaves no partial snapshot.
"""

from __future__ import annotations

import json
from typing import Any


class Snapshots:
    """Mixed into `Store`: it supplies `rows`, `atomic`, `db`, `lock`."""

    rows: Any
    atomic: Any
    db: Any

    def save_snapshots(self, snapshots: list[dict[str, Any]], queries: list[dict[str, Any]],
                       products: list[dict[str, Any]], results: list[dict[str, Any]],
                       update_products: bool = False) -> None:
        """Snapshot rows, the queries and products they name, and their ranked results."""
        from raer.store.store import now, product_row

        with self.atomic():
            self.db["queries"].upsert_all(queries, pk="id")
            rows = [product_row(p) for p in products]
            if update_products:
                self.db["products"].upsert_all(rows, pk="id")
            else:
                self.db["products"].insert_all(rows, pk="id", ignore=True)
            self.db["snapshots"].insert_all([{**s, "created_at": now()} for s in snapshots])
            self.db["snapshot_results"].insert_all(results)

    def snapshot_rows(self, engine: str | None = None, experiment: str | None = None
                      ) -> list[dict[str, Any]]:
        where, args = [], []
        if engine:
            where.append("engine = ?")
            args.append(engine)
        if experiment:
            where.append("experiment = ?")
            args.append(experiment)
        sql = "select * from snapshots" + (" where " + " and ".join(where) if where else "")
        return self.rows(sql + " order by created_at, id", args)

    def snapshot_rankings(self, snapshot_id: str) -> dict[str, list[str]]:
        """query id → product ids in rank order."""
        out: dict[str, list[str]] = {}
        for r in self.rows("select query_id, product_id from snapshot_results where "
                           "snapshot_id = ? order by query_id, rank", [snapshot_id]):
            out.setdefault(r["query_id"], []).append(r["product_id"])
        return out

    def snapshot_pairs(self, snapshot_id: str) -> list[dict[str, Any]]:
        """The snapshot's results as pairs rows (query fields, engine, rank, product)."""
        return self.rows(
            """select q.text as query, q.language, q.query_type, r.query_id, s.engine, r.rank,
                      p.*
               from snapshot_results r join snapshots s on s.id = r.snapshot_id
               join queries q on q.id = r.query_id join products p on p.id = r.product_id
               where r.snapshot_id = ? order by r.query_id, r.rank""", [snapshot_id])

    def save_experiment(self, name: str, path: str, config: dict[str, Any]) -> None:
        from raer.store.store import now

        with self.atomic():
            stamp = now()
            self.db.execute(
                """insert into experiments (name, path, config, created_at, updated_at)
                   values (?, ?, ?, ?, ?) on conflict(name) do update set
                   path = excluded.path, config = excluded.config,
                   updated_at = excluded.updated_at""",
                [name, path, json.dumps(config, sort_keys=True), stamp, stamp])

    def experiment_rows(self) -> list[dict[str, Any]]:
        return self.rows(
            """select e.*, count(r.id) as runs, max(r.created_at) as last_run,
                      (select exit_code from experiment_runs x where x.experiment = e.name
                       order by x.id desc limit 1) as last_exit_code
               from experiments e left join experiment_runs r on r.experiment = e.name
               group by e.name order by e.name""")

    def save_experiment_run(self, row: dict[str, Any]) -> int:
        from raer.store.store import now

        with self.atomic():
            return self.db["experiment_runs"].insert({**row, "created_at": now()}).last_pk

    def experiment_runs(self, name: str) -> list[dict[str, Any]]:
        return self.rows("select * from experiment_runs where experiment = ? order by id",
                         [name])
