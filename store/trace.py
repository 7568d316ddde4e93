"""A pair's trace: each node's exact prompt, raw output, parsed result, tokens and time.

Built from the store alone, so `raer show` works on any past run, including pairs whose
artefacts came from the cache (the trace then shows the call that originally made them).
"""

from __future__ import annotations

import json
from typing import Any

from raer.store import Store
from raer.store.reviews import effective_label


def _calls(store: Store, cache_key: str | None) -> list[dict[str, Any]]:
    if not cache_key:
        return []
    calls = store.rows("select * from llm_calls where cache_key = ? order by id", [cache_key])
    for call in calls:
        call["messages"] = json.loads(call["messages"] or "[]")
        call["parsed"] = json.loads(call["parsed"]) if call["parsed"] else None
    return calls


def _judge_step(store: Store, judgment: dict[str, Any]) -> dict[str, Any]:
    """The judge's calls: the pair's own (judge_pair), or the listwise call it shared with
    its chunk, with where it stood in it and its own part of the prompt (`listed`)."""
    calls = _calls(store, judgment.get("input_hash"))
    if calls or not judgment.get("call_id"):
        return {"node": "judge_pair", "artefact": None, "calls": calls, "listed": None}
    shared = store.rows("select cache_key, node from llm_calls where id = ?",
                        [judgment["call_id"]])
    listed = store.rows("select position, size, seed, list_id, product_part, call_id from "
                        "listed_judgments where item_key = ?", [judgment["input_hash"]])
    return {"node": shared[0]["node"] if shared else "judge_list", "artefact": None,
            "calls": _calls(store, shared[0]["cache_key"]) if shared else [],
            "listed": listed[0] if listed else None}


def find_judgment(store: Store, judgment_id: str | None = None, *, query: str = "",
                  product_id: str = "", run_id: str = "", engine: str | None = None) -> dict:
    if judgment_id:
        rows = store.rows("select * from judgments where id = ?", [judgment_id])
    else:
        sql = ("select j.* from judgments j join queries q on q.id = j.query_id "
               "where q.normalised = ? and j.product_id = ?")
        params: list[Any] = [" ".join(query.casefold().split()), product_id]
        if run_id:
            sql += " and j.run_id = ?"
            params.append(run_id)
        if engine is not None:
            sql += " and j.engine = ?"
            params.append(engine)
        rows = store.rows(sql + " order by j.created_at desc", params)
    if not rows:
        raise LookupError("no such judgment")
    return rows[0]


def pair_trace(store: Store, judgment: dict[str, Any]) -> dict[str, Any]:
    query = store.rows("select * from queries where id = ?", [judgment["query_id"]])[0]
    product = store.rows("select * from products where id = ?", [judgment["product_id"]])[0]
    run = store.rows("select * from runs where id = ?", [judgment["run_id"]])[0]
    steps = []
    for node, table, key in (("extract_requirements", "requirements", "requirements_key"),
                             ("draft_guidelines", "guidelines", "guidelines_key"),
                             ("describe_product", "descriptions", "description_key")):
        artefact = (store.rows(f"select * from {table} where cache_key = ?", [judgment[key]])
                    if judgment.get(key) else [])
        steps.append({"node": node, "artefact": artefact[0] if artefact else None,
                      "calls": _calls(store, judgment.get(key))})
    steps.append(_judge_step(store, judgment))
    review = store.rows("select * from reviews where judgment_id = ?", [judgment["id"]])
    decisions = store.rows("select reviewer, label, note, role, created_at, undone_at from "
                           "review_decisions where judgment_id = ? order by id",
                           [judgment["id"]])
    effective = effective_label({**judgment, "review_status": review[0]["status"] if review
                                 else None, **({"human_label": review[0]["human_label"],
                                                "reviewer": review[0]["reviewer"]}
                                               if review else {})})
    return {"run": {**run, "settings": json.loads(run["settings"])}, "query": query,
            "product": product, "judgment": judgment, "steps": steps,
            "review": {**review[0], "decisions": decisions} if review else None,
            "effective": {"label": effective.label, "provenance": effective.provenance}}
