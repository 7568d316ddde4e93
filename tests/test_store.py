"""Migrations produce exactly the documented tables and columns, and are idempotent."""

from raer.store import Store

EXPECTED = {
    "evaluations": ["id", "run_id", "engine", "tag", "options", "judge", "measures",
                    "coverage", "per_query", "created_at"],
    "runs": ["id", "created_at", "settings", "models", "prompt_hashes", "package_version",
             "images_root"],
    "queries": ["id", "text", "normalised", "language", "query_type"],
    "products": ["id", "title", "brand", "colour", "category", "description", "attributes",
                 "image"],
    "llm_calls": ["id", "run_id", "node", "role", "model", "prompt_hash", "cache_key",
                  "attempt", "messages", "raw_output", "parsed", "input_tokens",
                  "output_tokens", "cached_tokens", "latency_ms", "cost_usd", "error",
                  "created_at", "temperature", "output_mode"],
    "requirements": ["cache_key", "query_id", "language", "model", "prompt_hash",
                     "requirements", "call_id", "created_at"],
    "guidelines": ["cache_key", "query_id", "mode", "model", "prompt_hash", "requirements_key",
                   "highly_relevant", "acceptable_substitute", "irrelevant", "call_id",
                   "created_at", "examples"],
    "descriptions": ["cache_key", "image_hash", "model", "prompt_hash", "description",
                     "call_id", "created_at"],
    "judgments": ["id", "run_id", "query_id", "product_id", "engine", "rank", "status",
                  "label", "confidence", "reasoning", "verdicts", "brand_check", "error",
                  "image_note", "model", "prompt_hash", "input_hash", "requirements_key",
                  "guidelines_key", "description_key", "call_id", "created_at", "grade"],
    "reviews": ["judgment_id", "run_id", "reasons", "status", "human_label", "reviewer",
                "note", "created_at", "resolved_at"],
    "human_labels": ["id", "query_id", "product_id", "annotator", "label", "raw_label",
                     "source", "split", "created_at", "loo_estimate"],
    "claims": ["cache_key", "owner", "expires_at"],
    "review_decisions": ["id", "judgment_id", "reviewer", "label", "note", "role",
                         "created_at", "undone_at"],
    "disagreements": ["judgment_id", "category", "explanation", "model", "prompt_hash",
                      "call_id", "created_at"],
}


def test_migrations_create_exactly_the_expected_columns(tmp_path):
    store = Store(tmp_path / "x.db")
    tables = {t: [c.name for c in store.db[t].columns] for t in store.db.table_names()
              if not t.startswith("_")}
    assert tables == EXPECTED


def test_reopening_applies_nothing_twice(tmp_path):
    Store(tmp_path / "x.db").close()
    store = Store(tmp_path / "x.db")
    applied = store.rows("select name from _sqlite_migrations")
    assert [r["name"] for r in applied] == ["m001_initial", "m002_human_labels",
                                            "m003_graded_scale", "m004_ceiling_estimate",
                                            "m005_claims", "m006_run_images_root",
                                            "m007_call_request_settings", "m008_evaluations",
                                            "m009_review_decisions",
                                            "m010_guideline_examples"]
