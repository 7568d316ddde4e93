"""Schema migrations, small ordered functions applied when a store opens (sqlite-utils).

Never edit an applied migration: add a new one. tests/test_store.py checks the exact columns.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("raer")


@migrations()
def m001_initial(db: Database) -> None:
    db["runs"].create(
        {"id": str, "created_at": str, "settings": str, "models": str, "prompt_hashes": str,
         "package_version": str},
        pk="id",
    )
    db["queries"].create(
        {"id": str, "text": str, "normalised": str, "language": str, "query_type": str},
        pk="id",
    )
    db["products"].create(
        {"id": str, "title": str, "brand": str, "colour": str, "category": str,
         "description": str, "attributes": str, "image": str},
        pk="id",
    )
    db["llm_calls"].create(
        {"id": int, "run_id": str, "node": str, "role": str, "model": str, "prompt_hash": str,
         "cache_key": str, "attempt": int, "messages": str, "raw_output": str, "parsed": str,
         "input_tokens": int, "output_tokens": int, "cached_tokens": int, "latency_ms": float,
         "cost_usd": float, "error": str, "created_at": str},
        pk="id",
    )
    db["llm_calls"].create_index(["run_id"])
    db["llm_calls"].create_index(["cache_key"])
    db["requirements"].create(
        {"cache_key": str, "query_id": str, "language": str, "model": str, "prompt_hash": str,
         "requirements": str, "call_id": int, "created_at": str},
        pk="cache_key",
        foreign_keys=[("query_id", "queries", "id"), ("call_id", "llm_calls", "id")],
    )
    db["guidelines"].create(
        {"cache_key": str, "query_id": str, "mode": str, "model": str, "prompt_hash": str,
         "requirements_key": str, "highly_relevant": str, "acceptable_substitute": str,
         "irrelevant": str, "call_id": int, "created_at": str},
        pk="cache_key",
        foreign_keys=[("query_id", "queries", "id"), ("call_id", "llm_calls", "id")],
    )
    db["descriptions"].create(
        {"cache_key": str, "image_hash": str, "model": str, "prompt_hash": str,
         "description": str, "call_id": int, "created_at": str},
        pk="cache_key", foreign_keys=[("call_id", "llm_calls", "id")],
    )
    db["judgments"].create(
        {"id": str, "run_id": str, "query_id": str, "product_id": str, "engine": str,
         "rank": int, "status": str, "label": str, "confidence": float, "reasoning": str,
         "verdicts": str, "brand_check": str, "error": str, "image_note": str,
         "model": str, "prompt_hash": str, "input_hash": str, "requirements_key": str,
         "guidelines_key": str, "description_key": str, "call_id": int, "created_at": str},
        pk="id",
        foreign_keys=[("run_id", "runs", "id"), ("query_id", "queries", "id"),
                      ("product_id", "products", "id"), ("call_id", "llm_calls", "id")],
    )
    db["judgments"].create_index(["run_id", "status"])
    db["judgments"].create_index(["input_hash"])
    db["reviews"].create(
        {"judgment_id": str, "run_id": str, "reasons": str, "status": str, "human_label": str,
         "reviewer": str, "note": str, "created_at": str, "resolved_at": str},
        pk="judgment_id", foreign_keys=[("judgment_id", "judgments", "id"),
                                        ("run_id", "runs", "id")],
    )


@migrations()
def m002_human_labels(db: Database) -> None:
    db["human_labels"].create(
        {"id": int, "query_id": str, "product_id": str, "annotator": str, "label": str,
         "raw_label": str, "source": str, "split": str, "created_at": str},
        pk="id", foreign_keys=[("query_id", "queries", "id"), ("product_id", "products", "id")],
    )
    db["human_labels"].create_index(["query_id", "product_id", "annotator", "source"],
                                    unique=True)
    db["disagreements"].create(
        {"judgment_id": str, "category": str, "explanation": str, "model": str,
         "prompt_hash": str, "call_id": int, "created_at": str},
        pk="judgment_id", foreign_keys=[("judgment_id", "judgments", "id"),
                                        ("call_id", "llm_calls", "id")],
    )


@migrations()
def m003_graded_scale(db: Database) -> None:
    db["judgments"].add_column("grade", int)


@migrations()
def m004_ceiling_estimate(db: Database) -> None:
    """Where a label set gives only an aggregate and a spread per pair, the import estimates
    how often one rater would agree with the others' majority (see evals/ceiling.py)."""
    db["human_labels"].add_column("loo_estimate", float)


@migrations()
def m005_claims(db: Database) -> None:
    """Cross-process claims on model calls in flight, keyed like the cache: a second
    process on the same store waits for the answer instead of paying for it again."""
    db["claims"].create({"cache_key": str, "owner": str, "expires_at": float}, pk="cache_key")


@migrations()
def m006_run_images_root(db: Database) -> None:
    """The folder a run's local packshots were confined to, so retry-failed keeps it."""
    db["runs"].add_column("images_root", str)


@migrations()
def m007_call_request_settings(db: Database) -> None:
    """What each attempt was sent with: its sampling temperature (a re-ask samples higher)
    and how structured output was asked for (json_schema, tools, json, md_json)."""
    db["llm_calls"].add_column("temperature", float)
    db["llm_calls"].add_column("output_mode", str)


@migrations()
def m008_evaluations(db: Database) -> None:
    """Snapshots of engine evaluations (`raer evaluate`), read by `raer trend`."""
    db["evaluations"].create(
        {"id": int, "run_id": str, "engine": str, "tag": str, "options": str,
         "judge": str, "measures": str, "coverage": str, "per_query": str, "created_at": str},
        pk="id", foreign_keys=[("run_id", "runs", "id")])
    db["evaluations"].create_index(["engine", "created_at"])


@migrations()
def m009_review_decisions(db: Database) -> None:
    """Every person's decision on an escalated pair, kept (several reviewers may label one
    pair; an undo marks a decision undone, never deletes it). `reviews` holds the outcome
    (store/reviews.py decides it): open, resolved with a label, or disputed."""
    db["review_decisions"].create(
        {"id": int, "judgment_id": str, "reviewer": str, "label": str, "note": str,
         "role": str, "created_at": str, "undone_at": str},
        pk="id", foreign_keys=[("judgment_id", "judgments", "id")])
    db["review_decisions"].create_index(["judgment_id"])
    db["review_decisions"].create_index(["reviewer", "created_at"])
    # reviews recorded before this migration keep their decision
    db.execute("""insert into review_decisions (judgment_id, reviewer, label, note, role,
                  created_at) select judgment_id, coalesce(reviewer, ''), human_label,
                  coalesce(note, ''), 'reviewer', coalesce(resolved_at, created_at)
                  from reviews where status = 'resolved' and human_label is not null""")


@migrations()
def m010_guideline_examples(db: Database) -> None:
    """People's reviewed examples appended to a query's guidelines (nodes/feedback.py)."""
    db["guidelines"].add_column("examples", str)


@migrations()
def m011_snapshots(db: Database) -> None:
    """What engines returned (`raer retrieve`, `raer experiment run`): a snapshot is one
    engine config's results for one query set at one time; experiments name a query set ×
    engine configs × judge settings, and each of their runs is kept with its outcome."""
    db["snapshots"].create(
        {"id": str, "engine": str, "kind": str, "config_hash": str, "config": str,
         "query_set": str, "queries": int, "k": int, "tag": str, "experiment": str,
         "created_at": str}, pk="id")
    db["snapshots"].create_index(["engine", "created_at"])
    db["snapshot_results"].create(
        {"snapshot_id": str, "query_id": str, "rank": int, "product_id": str},
        pk=("snapshot_id", "query_id", "rank"),
        foreign_keys=[("snapshot_id", "snapshots", "id"), ("query_id", "queries", "id"),
                      ("product_id", "products", "id")])
    db["experiments"].create(
        {"name": str, "path": str, "config": str, "created_at": str, "updated_at": str},
        pk="name")
    db["experiment_runs"].create(
        {"id": int, "experiment": str, "run_id": str, "snapshots": str, "outcome": str,
         "exit_code": int, "summary": str, "created_at": str},
        pk="id", foreign_keys=[("experiment", "experiments", "name")])


@migrations()
def m012_listed_judgments(db: Database) -> None:
    """Listwise judging (nodes/judge_list.py): one call judges a chunk of a query's products;
    each product's judgment is kept here under its own key (model, prompt, the query's
    prefix, the product's own part), so a product already judged is never paid for again
    whatever chunk it lands in. `call_id` is the shared call; position and size are where the
    product stood in it, `seed` the shuffle that put it there."""
    db["listed_judgments"].create(
        {"item_key": str, "call_id": int, "position": int, "size": int, "seed": int,
         "list_id": str, "product_part": str, "judgment": str, "created_at": str},
        pk="item_key", foreign_keys=[("call_id", "llm_calls", "id")])
    db["listed_judgments"].create_index(["call_id"])
