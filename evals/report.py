"""`raer report`: a run's agreement, baselines, disagreements and cost as Markdown and as one
self-contained HTML page (inline SVG charts, inline CSS, no scripts, opens offline)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from raer.evals import charts
from raer.evals.report_data import OFFLINE_NOTE, agreement_data, scope_line
from raer.evals.tables import (
    breakdown_table,
    comparison_table,
    confusion_table,
    disagreements_table,
    pct,
    per_label_table,
    raw_confusion_table,
    raw_confusion_title,
)
from raer.store import Store

CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;
padding:3px 7px;text-align:left}th{background:#f0f3f8}.explain{color:#555;font-size:13px;
max-width:80ch}.note{background:#fff6d6;
border-left:4px solid #e0b100;padding:8px 12px}.charts{display:flex;flex-wrap:wrap;gap:16px}
svg{max-width:100%;height:auto}"""


def cost_lines(cost: dict[str, Any]) -> list[str]:
    human = cost["human"]
    cheaper = (f"{human['times_cheaper']:,}× cheaper than people" if human["times_cheaper"]
               else "no model cost recorded (local or unpriced models)")
    return [f"- pairs: {cost['pairs']}; model calls: {cost['calls']} "
            f"({cost['failed_calls']} failed); tokens: {cost['tokens']:,} "
            f"(provider-cached: {cost['cached_tokens']:,})",
            f"- estimated cost: ${cost['cost_usd']:.4f}"
            + (f" ({cost['unpriced_calls']} calls unpriced)" if cost["unpriced_calls"] else "")
            + (f"; the provider's prompt cache saved ${cost['cache_saving_usd']:.6f}"
               if cost.get("cache_saving_usd") else ""),
            f"- cache reuse: requirements {cost['cache_hits']['requirements']}, guidelines "
            f"{cost['cache_hits']['guidelines']}, packshot descriptions "
            f"{cost['cache_hits']['descriptions_reused']}",
            f"- speed: {cost['pairs_per_minute'] or 'n/a'} pairs/minute; model time "
            f"{cost['model_seconds']} s",
            f"- people at ${human['price_per_label']:.2f} per label × "
            f"{human['annotators_per_pair']} annotators: ${human['cost_usd']:,.2f} — {cheaper}"]


def markdown_report(data: dict[str, Any]) -> str:
    out = [f"# raer agreement report ({data['source'] or 'all label sources'}"
           f"{', split ' + data['split'] if data['split'] else ''})", "",
           f"Scope: {scope_line(data)}.", "",
           comparison_table(data["results"], data["names"]), "", EXPLAIN["comparison"], ""]
    if pair_sets_note(data):
        out += [f"> {pair_sets_note(data)}", ""]
    if any(data["offline"].values()):
        out += [f"> {OFFLINE_NOTE}", ""]
    for run_id, groups in data["results"].items():
        overall = groups["overall"]
        out += [f"## {data['names'][run_id]}", "", breakdown_table(groups), "",
                confusion_table(overall), "", raw_confusion_title(overall), "",
                raw_confusion_table(overall), "",
                per_label_table(overall), ""]
        if data["cost"][run_id]["calls"]:
            out += ["Cost and time:", "", *cost_lines(data["cost"][run_id]), ""]
        if data["hard"][run_id]:
            out += [f"Hard disagreements: {len(data['hard'][run_id])}", "",
                    disagreements_table(data["hard"][run_id], {}), ""]
    return "\n".join(out)


def _md_table_to_html(table: str) -> str:
    lines = [line for line in table.splitlines() if line.strip()]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    body = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    return ("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                      for row in body) + "</table>")


EXPLAIN = {
    "comparison": "Each run against the human majority. Agreement: share of judged pairs "
                  "with the same label; κ (Cohen's kappa): agreement beyond chance (0 = "
                  "chance, 1 = perfect), linear and quadratic weights count a near miss "
                  "as half right; α ordinal (Krippendorff): the same on the ordered scale; "
                  "hard disagreements: two steps apart (highly relevant vs irrelevant); "
                  "intervals: 95% bootstrap over queries.",
    "breakdown": "The same figures per group (language, query type …). 'rater vs others' "
                 "is each human rater against the other raters' majority: the ceiling a "
                 "judge can be compared with.",
    "confusion": "Rows: the people's label; columns: the judge's. The diagonal agrees.",
    "per_label": "Precision: of the pairs the judge gave this label, the share people "
                 "gave it too; recall: of the pairs people gave it, the share the judge found.",
    "engines": "nDCG@10: graded gain of the top 10 against the best order of the judged "
               "pool (1 = ideal); P@10: share of relevant in the top 10; ERR: expected "
               "reciprocal rank; MRR: 1 / rank of the first relevant; irrelevant@10: "
               "share irrelevant (lower is better); judged@10: share of the top 10 with a "
               "label.",
}


def pair_sets_note(data: dict[str, Any]) -> str:
    """A warning when the runs side by side were scored on different pairs (their numbers
    are then not comparable pair for pair), or "" when they share one set."""
    judged = {data["names"].get(r, r): g["overall"]["judged"]
              for r, g in data["results"].items()}
    if len(judged) < 2 or data.get("common_pairs") or len(set(judged.values())) == 1:
        return ""
    sizes = ", ".join(f"{name}: {n}" for name, n in judged.items())
    return (f"These runs are scored on different pairs ({sizes} judged pairs): compare "
            f"them pair for pair with --common.")


def _explain(key: str) -> str:
    return f"<p class='explain'>{html.escape(EXPLAIN[key])}</p>"


def html_report(data: dict[str, Any]) -> str:
    title = (f"raer agreement report — {html.escape(data['source'] or 'all label sources')}"
             + (f", split {html.escape(data['split'])}" if data["split"] else ""))
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}"
             f"</title><style>{CSS}</style></head><body><h1>{title}</h1>",
             f"<p>Scope: {html.escape(scope_line(data))}.</p>",
             _md_table_to_html(comparison_table(data["results"], data["names"])),
             _explain("comparison")]
    if pair_sets_note(data):
        parts.append(f"<p class='note'>{html.escape(pair_sets_note(data))}</p>")
    if any(data["offline"].values()):
        parts.append(f"<p class='note'>{html.escape(OFFLINE_NOTE)}</p>")
    for run_id, groups in data["results"].items():
        overall, name = groups["overall"], data["names"][run_id]
        cost = data["cost"][run_id]
        parts += [f"<h2>{html.escape(name)}</h2>",
                  f"<p>Agreement with the human majority: <b>{pct(overall['agreement'])}%</b> "
                  f"on {overall['judged']} judged pairs of {overall['pairs']}.</p>",
                  _md_table_to_html(breakdown_table(groups)), _explain("breakdown"),
                  "<div class='charts'>",
                  charts.confusion_heatmap(overall["confusion"], "confusion (pairs)"),
                  charts.agreement_bars(groups, "agreement by group"),
                  charts.label_distribution(overall["judge_labels"], overall["human_labels"],
                                            "label distributions")]
        if cost["by_node"]:
            parts.append(charts.usage_by_node(cost["by_node"], "cost and time by node"))
        parts += ["</div>", f"<h3>{html.escape(raw_confusion_title(overall))}</h3>",
                  _explain("confusion"), _md_table_to_html(raw_confusion_table(overall)),
                  "<h3>Precision and recall per label</h3>", _explain("per_label"),
                  _md_table_to_html(per_label_table(overall))]
        if cost["calls"]:
            parts.append("<h3>Cost and time</h3><ul>" + "".join(
                f"<li>{html.escape(line[2:])}</li>" for line in cost_lines(cost)) + "</ul>")
        if data["hard"][run_id]:
            parts += [f"<h3>Hard disagreements ({len(data['hard'][run_id])})</h3>",
                      _md_table_to_html(disagreements_table(data["hard"][run_id], {}))]
    parts.append("</body></html>")
    return "\n".join(parts)


ENGINE_MEASURES = ("nDCG@10", "P@10", "ERR@10", "MRR", "irrelevant@10", "judged@10")


def engine_sections(store: Store, run_ids: list[str]) -> tuple[list[str], list[str]]:
    """(Markdown lines, HTML parts): each run's engines with the run's labels (only runs
    whose pairs carry engine ranks), and the stored evaluations over time."""
    from raer.evals.engines import evaluate_engines, summary

    md: list[str] = []
    parts: list[str] = []
    for run_id in run_ids:
        ranked = store.ranked_pairs(run_id)
        if not ranked:
            continue
        results = evaluate_engines(store, run_id, ks=(10,))
        head = "| engine | queries | " + " | ".join(ENGINE_MEASURES) + " |"
        rows = [head, "|" + "---|" * (len(ENGINE_MEASURES) + 2)]
        for engine, result in results.items():
            m = summary(result)
            rows.append(f"| {engine or '(none)'} | {len(result.queries)} | " + " | ".join(
                f"{m[n]['mean']:.3f} [{m[n]['low']:.2f}, {m[n]['high']:.2f}]"
                for n in ENGINE_MEASURES) + " |")
        table = "\n".join(rows)
        md += [f"## Engines in {run_id} (the run's labels; 95% intervals over queries)", "",
               table, ""]
        parts += [f"<h2>Engines in {html.escape(run_id)}</h2>",
                  "<p>Measured with the run's labels (a reviewer's label first); 95% "
                  "intervals over queries. `raer compare` tests the differences.</p>",
                  _explain("engines"), _md_table_to_html(table)]
    series: dict[str, list[dict[str, Any]]] = {}
    for row in store.evaluations():
        measure = json.loads(row["measures"]).get("nDCG@10")
        if measure:
            series.setdefault(row["engine"], []).append(measure)
    if any(len(points) > 1 for points in series.values()):
        md += ["## nDCG@10 over stored evaluations (`raer trend`)", ""]
        parts += ["<h2>nDCG@10 over stored evaluations</h2>",
                  charts.trend_lines(series, "nDCG@10")]
    return md, parts


def write_report(store: Store, run_ids: list[str], out_dir: str | Path, source: str = "",
                 split: str = "", resamples: int = 1000, common: bool = False,
                 ties: str = "median") -> dict[str, str]:
    data = agreement_data(store, run_ids, source, split, resamples, common, ties)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    engines_md, engines_html = engine_sections(store, run_ids)
    (out / "report.md").write_text("\n".join([markdown_report(data), "", *engines_md]),
                                   encoding="utf-8")
    from raer.evals.experiment_report import experiment_sections

    page = html_report(data)
    page = page.replace("</body></html>", "\n".join(engines_html + experiment_sections(store))
                        + "</body></html>")
    (out / "report.html").write_text(page, encoding="utf-8")
    (out / "report.json").write_text(json.dumps(
        {"runs": data["names"], "scope": scope_line(data), "common_pairs": data["common_pairs"],
         "cost": data["cost"]}, indent=2, default=str), encoding="utf-8")
    return {"markdown": str(out / "report.md"), "html": str(out / "report.html")}
