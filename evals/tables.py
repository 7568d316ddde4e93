"""Agreement results as Markdown tables (for the terminal, the README and reports)."""

from __future__ import annotations

import math
from typing import Any

from raer.evals.agreement import Item
from raer.store.scale import ORDERED, SHORT


def pct(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.1f}"


def num(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


def ci(bounds: tuple[float, float], as_pct: bool = True) -> str:
    fmt = pct if as_pct else num
    return f"[{fmt(bounds[0])}, {fmt(bounds[1])}]"


def _cell(text: str) -> str:
    return str(text).replace("|", "/").replace("\n", " ")


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def comparison_table(results: dict[str, dict[str, Any]], names: dict[str, str]) -> str:
    """One row per run (overall figures): the baselines next to the judge. Escalated pairs
    are counted apart, with the agreement on the pairs the judge kept beside the whole."""
    rows = []
    for run_id, result in results.items():
        m = result["overall"]
        rows.append([names.get(run_id, run_id), str(m["pairs"]), str(m["judged"]),
                     f"{pct(m['agreement'])} {ci(m['agreement_ci'])}",
                     f"{pct(m['matches_any'])}",
                     num(m["kappa"]), num(m["kappa_linear"]),
                     f"{num(m['kappa_quadratic'])} {ci(m['kappa_quadratic_ci'], False)}",
                     num(m["alpha_ordinal"]), str(m["hard_disagreements"]), str(m["escalated"]),
                     f"{pct(m['agreement_kept'])} (n={m['kept']})"])
    return _table(["run", "pairs", "judged", "agreement % [95% CI]", "matches any %", "κ",
                   "κ linear", "κ quadratic [95% CI]", "α ordinal", "hard disagreements",
                   "escalated to people", "agreement on pairs kept %"], rows)


def breakdown_table(groups: dict[str, dict[str, Any]]) -> str:
    """Per group; "rater vs others %" is each rater against the majority of the other raters
    (the ceiling comparable to the judge's agreement), "rater vs rater %" pairwise."""
    rows = []
    for name, m in groups.items():
        same = m.get("same_as_overall") or []
        label = f"{name} (= {', '.join(same)})" if same else name
        rows.append([label, str(m["queries"]), str(m["pairs"]), str(m["judged"]),
                     f"{pct(m['agreement'])} {ci(m['agreement_ci'])}", pct(m["matches_any"]),
                     num(m["kappa_quadratic"]), num(m["alpha_ordinal"]),
                     pct(m.get("human_loo", math.nan))
                     + (" (estimated)" if m.get("human_loo_estimated") else ""),
                     pct(m["human_pairwise"]),
                     str(m["escalated"]), str(m["failed"]),
                     f"{pct(m['agreement_kept'])} (n={m['kept']})"])
    return _table(["group", "queries", "pairs", "judged", "agreement % [95% CI]",
                   "matches any %", "κ quad", "α ord", "rater vs others %", "rater vs rater %",
                   "escalated", "failed", "agreement without escalated %"], rows)


def confusion_table(m: dict[str, Any]) -> str:
    rows = [[f"human {SHORT[label]}"] + [str(v) for v in row]
            for label, row in zip(ORDERED, m["confusion"], strict=True)]
    return _table(["", *[f"judge {SHORT[c]}" for c in ORDERED]], rows)


def raw_confusion_title(m: dict[str, Any]) -> str:
    raw = m["confusion_raw"]
    who = raw.get("annotators") or []
    counted = ("every annotator's label counted" if len(who) > 1
               else f"annotator {who[0]}" if who else "no labels")
    return (f"Original labels × judge ({len(raw['rows'])} original values; {counted}; "
            f"rows in label order)")


def raw_confusion_table(m: dict[str, Any]) -> str:
    raw = m["confusion_raw"]
    rows = [[f"human {r}"] + [str(v) for v in row]
            for r, row in zip(raw["rows"], raw["matrix"], strict=True)]
    return _table(["", *[f"judge {SHORT[c]}" for c in raw["columns"]]], rows)


def per_label_table(m: dict[str, Any]) -> str:
    rows = [[label, pct(v["precision"]), pct(v["recall"]), str(v["support"])]
            for label, v in m["per_label"].items()]
    return _table(["label", "precision %", "recall %", "human support"], rows)


def disagreements_table(items: list[Item], categories: dict[str, str],
                        limit: int | None = 20) -> str:
    """The first `limit` (None: all); a cut list says so."""
    shown = items if limit is None else items[:limit]
    rows = [[i.query, f"{i.title[:50]} [{i.product_id}]", i.majority, i.judge or "",
             categories.get(i.judgment_id, "") or "-", (i.reasoning or "")[:120]]
            for i in shown]
    table = _table(["query", "product", "human", "judge", "category", "judge's reasoning"],
                   rows)
    if len(shown) < len(items):
        table += (f"\n\nFirst {len(shown)} of {len(items)} hard disagreements "
                  f"(all of them: --all-disagreements, or --json).")
    return table
