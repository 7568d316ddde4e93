"""People's decisions on escalated pairs, and the one definition of a pair's effective label.

Every decision is kept (`review_decisions`): who, which label, a note, when, and whether it
was undone. A pair's review outcome (`reviews.status`) follows from its decisions:

- an adjudicator's latest decision settles it (`resolved`);
- otherwise each reviewer's latest decision counts (a "skip" is not a label): none → `open`,
  all the same label → `resolved` with it, different labels → `disputed`, which waits for
  an adjudicator (`raer review resolve --adjudicate`, or the page's adjudicator mode).

A review is per distinct judge input: pairs of a run that gave the judge the same input
(two engines returning the same product for a query: the label was reused, not asked
again) share one review. The queue and `raer review list` show it once, with the engines
it covers, and a decision on any of them resolves all (the demo once asked a person to
label 26 distinct inputs twice each). Decisions are kept on the pair they were made on;
the outcome is computed over the whole group and written to each pair's review row.

The effective label of a pair — what evaluate, agree (`--labels effective`), the exports and
`raer show` use — is a resolved review's label, else the judge's; its provenance says which
(`reviewer: NAME` or `judge: MODEL`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from raer.store.scale import LABELS, ORDERED

if TYPE_CHECKING:
    from raer.store.store import Store

SKIP = "skip"
ROLES = ("reviewer", "adjudicator")

# The queue's order: what most needs a person first. Disputed pairs (waiting for an
# adjudicator), then the escalation reason (a planted instruction, a pair the judge could
# not judge, a brand the data cannot confirm, an ambiguous brand-or-word, low confidence),
# then the judge's confidence (lowest first), then the engine's rank (top results matter
# most to shoppers).
REASON_PRIORITY = ("seller text looks like an instruction", "the judge could not judge",
                   "brand not confirmed", "ambiguous brand-or-word", "low confidence")
PRIORITY_TEXT = ("disputed first; then by reason (" + ", ".join(REASON_PRIORITY) +
                 "); then lowest confidence; then best engine rank")


class ReviewError(ValueError):
    """A decision that cannot be recorded; the message says why."""


@dataclass(frozen=True)
class Effective:
    label: str | None
    provenance: str
    """"reviewer: NAME", "judge: MODEL", "judge (escalated, unreviewed): MODEL" or
    "unjudged: STATUS"."""


def effective_label(row: dict[str, Any]) -> Effective:
    """A pair's effective label from a row with the judgment's `status`, `label`, `model`
    and the review's `review_status`, `human_label`, `reviewer`."""
    if row.get("review_status") == "resolved" and row.get("human_label") in LABELS:
        return Effective(row["human_label"], f"reviewer: {row.get('reviewer') or '?'}")
    if row.get("status") in ("done", "escalated") and row.get("label") in LABELS:
        kind = "judge" if row["status"] == "done" else "judge (escalated, unreviewed)"
        return Effective(row["label"], f"{kind}: {row.get('model') or '?'}")
    reason = "cannot judge" if row.get("label") == "cannot judge" else row.get("status")
    return Effective(None, f"unjudged: {reason}")


def outcome(decisions: list[dict[str, Any]]) -> tuple[str, str | None, str]:
    """(status, label, reviewers) from a pair's decisions, oldest first."""
    active = [d for d in decisions if not d.get("undone_at") and d["label"] != SKIP]
    adjudicated = [d for d in active if d["role"] == "adjudicator"]
    if adjudicated:
        last = adjudicated[-1]
        return "resolved", last["label"], last["reviewer"]
    latest: dict[str, str] = {}
    for d in active:
        latest[d["reviewer"]] = d["label"]
    if not latest:
        return "open", None, ""
    names = ", ".join(sorted(latest))
    labels = set(latest.values())
    return ("resolved", labels.pop(), names) if len(labels) == 1 else ("disputed", None, names)


def same_input(store: Store, judgment_id: str) -> list[str]:
    """The pairs of the judgment's run that gave the judge the same input (itself included,
    first); just itself when the input is unknown (a pair that failed before judging)."""
    rows = list(store.db.query(
        """select j2.id from judgments j1 join judgments j2
             on j2.run_id = j1.run_id and j2.input_hash = j1.input_hash
           where j1.id = ? and j1.input_hash is not null and j1.input_hash != ''
           order by j2.id""", [judgment_id]))
    return [judgment_id] + [r["id"] for r in rows if r["id"] != judgment_id]


def _refresh(store: Store, judgment_id: str) -> dict[str, Any]:
    """Recompute the review rows of the pair and of every pair sharing its judge input
    from their decisions (inside the caller's transaction)."""
    group = same_input(store, judgment_id)
    marks = ",".join("?" * len(group))
    decisions = list(store.db.query(
        f"select * from review_decisions where judgment_id in ({marks}) order by id", group))
    status, label, reviewers = outcome(decisions)
    notes = "; ".join(d["note"] for d in decisions if d["note"] and not d["undone_at"])
    from raer.store.store import now

    store.db.execute(
        f"""update reviews set status = ?, human_label = ?, reviewer = ?, note = ?,
           resolved_at = ? where judgment_id in ({marks})""",
        [status, label, reviewers or None, notes or None,
         now() if status == "resolved" else None, *group])
    return {"judgment_id": judgment_id, "status": status, "human_label": label,
            "reviewers": reviewers, "pairs": len(group)}


def open_review(store: Store, judgment_id: str, run_id: str, reasons: list[str]) -> None:
    """Put a pair in the review queue with its reasons (no change if it is there already).
    Call inside the caller's `atomic()`."""
    from raer.store.store import now

    store.db.execute(
        """insert or ignore into reviews (judgment_id, run_id, reasons, status, created_at)
           values (?, ?, ?, 'open', ?)""",
        [judgment_id, run_id, json.dumps(reasons, ensure_ascii=False), now()])


def decide(store: Store, judgment_id: str, reviewer: str, label: str, note: str = "",
           role: str = "reviewer") -> dict[str, Any]:
    """Record one person's decision (a label, or "skip") and return the pair's outcome.
    A pair that was never escalated gets a review row naming the person who chose it."""
    if label not in (*LABELS, SKIP):
        raise ReviewError(f"label must be one of {[*LABELS, SKIP]}, not {label!r}")
    if role not in ROLES:
        raise ReviewError(f"role must be one of {list(ROLES)}, not {role!r}")
    reviewer = reviewer.strip()
    if not reviewer:
        raise ReviewError("a decision needs the reviewer's name")
    from raer.store.store import now

    with store.atomic():
        judged = list(store.db.query("select run_id from judgments where id = ?",
                                     [judgment_id]))
        if not judged:
            raise KeyError(judgment_id)
        for member in same_input(store, judgment_id):
            open_review(store, member, judged[0]["run_id"], ["chosen by a person"])
        store.db["review_decisions"].insert({
            "judgment_id": judgment_id, "reviewer": reviewer, "label": label,
            "note": note.strip()[:2000], "role": role, "created_at": now()})
        return _refresh(store, judgment_id)


def carry_decisions(store: Store, from_run: str, to_run: str) -> int:
    """People's decisions in `from_run` copied to the pairs of `to_run` that gave the judge
    the same input and wait for review: a nightly experiment judges the same inputs again
    each night, and asking a person the same question every night is what people in the
    loop must not cost. The copies name where they came from; returns the pairs settled."""
    from raer.store.store import now

    carried = 0
    with store.atomic():
        rows = list(store.db.query(
            """select new.id as new_id, d.reviewer, d.label, d.note, d.role, d.judgment_id
               from judgments new join reviews r on r.judgment_id = new.id
               join judgments old on old.run_id = ? and old.input_hash = new.input_hash
               join review_decisions d on d.judgment_id = old.id and d.undone_at is null
               where new.run_id = ? and r.status = 'open' and new.input_hash != ''
               order by d.id""", [from_run, to_run]))
        touched = []
        for r in rows:
            store.db["review_decisions"].insert({
                "judgment_id": r["new_id"], "reviewer": r["reviewer"], "label": r["label"],
                "note": f"carried from {r['judgment_id']}" + (f": {r['note']}" if r["note"]
                                                               else ""),
                "role": r["role"], "created_at": now()})
            touched.append(r["new_id"])
        for judgment_id in dict.fromkeys(touched):
            carried += _refresh(store, judgment_id)["status"] == "resolved"
    return carried


def undo_last(store: Store, reviewer: str, run_id: str = "") -> dict[str, Any] | None:
    """Undo this reviewer's latest decision that is not undone yet (in a run, if given);
    returns the pair's new outcome with the undone decision, or None if there is none."""
    from raer.store.store import now

    with store.atomic():
        sql = """select d.* from review_decisions d join judgments j on j.id = d.judgment_id
                 where d.reviewer = ? and d.undone_at is null"""
        params: list[Any] = [reviewer]
        if run_id:
            sql += " and j.run_id = ?"
            params.append(run_id)
        last = list(store.db.query(sql + " order by d.id desc limit 1", params))
        if not last:
            return None
        store.db.execute("update review_decisions set undone_at = ? where id = ?",
                         [now(), last[0]["id"]])
        return {**_refresh(store, last[0]["judgment_id"]), "undone": last[0]}


def _rank(row: dict[str, Any]) -> tuple:
    reasons = json.loads(row["reasons"] or "[]")
    reason_rank = min((i for i, prefix in enumerate(REASON_PRIORITY)
                       for reason in reasons if reason.startswith(prefix)),
                      default=len(REASON_PRIORITY))
    confidence = row["confidence"] if row["confidence"] is not None else -1.0
    return (row["status"] != "disputed", reason_rank, confidence, row["rank"] or 10**6,
            row["judgment_id"])


def queue(store: Store, run_id: str, reviewer: str = "", overlap: int = 1,
          adjudicator: bool = False) -> list[dict[str, Any]]:
    """The pairs this reviewer should look at next, in priority order (PRIORITY_TEXT):
    open pairs with fewer than `overlap` reviewers and not decided by this reviewer, and
    disputed pairs (for an adjudicator, only those). Skipped pairs come last."""
    todo = []
    for row in review_groups(store, run_id, reviewer):
        if adjudicator:
            wanted = row["status"] == "disputed"
        elif row["status"] == "disputed":
            wanted = row["mine"] in (None, SKIP)
        else:
            wanted = (row["mine"] in (None, SKIP) and row["reviewers"] < overlap
                      and not (row["status"] == "resolved" and row["reviewers"] == 0))
        if wanted:
            todo.append(row)
    return sorted(todo, key=lambda r: (r["mine"] == SKIP, *_rank(r)))


def review_groups(store: Store, run_id: str, reviewer: str = "") -> list[dict[str, Any]]:
    """One row per distinct judge input under review in the run: its best-ranked pair's
    review (judgment_id, reasons, status, labels, confidence, rank, engine), the pairs and
    engines it covers, how many people labelled it and this reviewer's latest decision."""
    rows = store.rows(
        """select r.judgment_id, r.reasons, r.status, r.human_label, j.label, j.confidence,
                  j.rank, j.engine, j.input_hash
           from reviews r join judgments j on j.id = r.judgment_id where r.run_id = ?""",
        [run_id])
    decisions = store.rows(
        """select d.id, d.judgment_id, d.reviewer, d.label from review_decisions d
           join reviews r on r.judgment_id = d.judgment_id
           where r.run_id = ? and d.undone_at is null order by d.id""", [run_id])
    by_pair: dict[str, list[dict[str, Any]]] = {}
    for d in decisions:
        by_pair.setdefault(d["judgment_id"], []).append(d)
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["input_hash"] or row["judgment_id"], []).append(row)
    result = []
    for members in groups.values():
        members.sort(key=lambda r: (r["rank"] or 10**6, r["judgment_id"]))
        made = sorted((d for m in members for d in by_pair.get(m["judgment_id"], [])),
                      key=lambda d: d["id"])
        mine = [d["label"] for d in made if d["reviewer"] == reviewer]
        result.append({**members[0], "pairs": len(members),
                       "pair_ids": [m["judgment_id"] for m in members],
                       "engines": sorted({m["engine"] or "" for m in members}),
                       "reviewers": len({d["reviewer"] for d in made if d["label"] != SKIP}),
                       "mine": mine[-1] if mine else None})
    return result


def inter_reviewer_agreement(store: Store, run_id: str) -> dict[str, Any]:
    """How often reviewers who labelled the same pair agree: pairs with two or more
    reviewers, their share in full agreement, Krippendorff's alpha (ordinal) when the
    statistics extra is installed, and the disputed pairs."""
    per_pair: dict[str, dict[str, str]] = {}
    named: dict[str, str] = {}  # a review (per distinct judge input) by its first pair
    for d in store.rows(
            """select coalesce(nullif(j.input_hash, ''), d.judgment_id) as item,
                      d.judgment_id, d.reviewer, d.label from review_decisions d
               join judgments j on j.id = d.judgment_id
               where j.run_id = ? and d.undone_at is null and d.label != 'skip'
                 and d.role = 'reviewer' order by d.id""", [run_id]):
        jid = named.setdefault(d["item"], d["judgment_id"])
        per_pair.setdefault(jid, {})[d["reviewer"]] = d["label"]
    shared = {jid: labels for jid, labels in per_pair.items() if len(labels) >= 2}
    agreed = sum(len(set(labels.values())) == 1 for labels in shared.values())
    result: dict[str, Any] = {
        "pairs_with_2_or_more_reviewers": len(shared),
        "full_agreement": agreed / len(shared) if shared else None,
        "disputed": sorted(jid for jid, labels in shared.items()
                           if len(set(labels.values())) > 1),
        "alpha_ordinal": None}
    if shared:
        try:
            import krippendorff
            import numpy as np
        except ImportError:
            return result
        reviewers = sorted({r for labels in shared.values() for r in labels})
        order = {label: i for i, label in enumerate(ORDERED)}
        matrix = np.array([[order[shared[j][r]] if r in shared[j] else np.nan
                            for j in shared] for r in reviewers], dtype=float)
        values = {v for v in matrix.flatten() if not np.isnan(v)}
        if len(values) > 1:
            result["alpha_ordinal"] = float(krippendorff.alpha(
                reliability_data=matrix, level_of_measurement="ordinal"))
        else:
            result["alpha_ordinal"] = 1.0
    return result
