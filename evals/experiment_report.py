"""The experiments' page: each experiment's runs, every engine's measure over them (with the
intervals), and the last run's regressions with the products behind them. Written by
`raer experiment report` and appended to `raer report`'s page when the store has experiments.
Everything shown comes from the stored outcomes (store/snapshots.py); nothing is recomputed.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from raer.evals import charts
from raer.evals.report import CSS
from raer.store import Store


def _outcomes(store: Store, name: str) -> list[dict[str, Any]]:
    return [{**json.loads(r["outcome"]), "exit_code": r["exit_code"],
             "created_at": r["created_at"]} for r in store.experiment_runs(name)]


def experiment_sections(store: Store, names: list[str] | None = None) -> list[str]:
    """HTML parts for each experiment (all of the store's when `names` is None)."""
    rows = {r["name"]: r for r in store.experiment_rows()}
    parts: list[str] = []
    for name in names or sorted(rows):
        if name not in rows:
            raise LookupError(f"no experiment {name!r} in the store (it has: "
                              f"{', '.join(sorted(rows)) or 'none'})")
        config = json.loads(rows[name]["config"])
        measure = config["measure"]
        outcomes = _outcomes(store, name)
        parts += [f"<h2>Experiment {html.escape(name)}</h2>",
                  f"<p>{len(outcomes)} runs of <code>{html.escape(rows[name]['path'])}</code>"
                  f" · {html.escape(measure)} · engines "
                  f"{html.escape(', '.join(config['engines']))}. Each run is compared with "
                  f"the one before on one set of grades (docs/retrieve.md).</p>"]
        engines = sorted({e["engine"] for o in outcomes for e in o["engines"]})
        head = "".join(f"<th>{html.escape(e)}</th>" for e in engines)
        body = []
        series: dict[str, list[dict[str, float]]] = {e: [] for e in engines}
        for o in outcomes:
            cells = []
            by_engine = {e["engine"]: e for e in o["engines"]}
            for engine in engines:
                e = by_engine.get(engine)
                if e is None:
                    cells.append("<td>–</td>")
                    continue
                series[engine].append(e["now"])
                flag = (" <b>regressed</b>" if e["regressed"] else
                        f" ({len(e['queries'])} queries fell)" if e["queries"] else "")
                flag += " · config changed" if e["config_changed"] else ""
                cells.append(f"<td>{e['now']['mean']:.3f} [{e['now']['low']:.3f}, "
                             f"{e['now']['high']:.3f}]{flag}</td>")
            body.append(f"<tr><td>{html.escape(o['created_at'][:19])}</td>"
                        f"<td>{html.escape(o['run_id'])}</td><td>{o['calls']}</td>"
                        f"<td>{o['exit_code']}</td>{''.join(cells)}</tr>")
        parts.append(f"<table><tr><th>run at</th><th>judging run</th><th>model calls</th>"
                     f"<th>exit</th>{head}</tr>{''.join(body)}</table>")
        if any(len(points) > 1 for points in series.values()):
            parts.append(charts.trend_lines(series, measure))
        if outcomes:
            parts += _regressions(outcomes[-1])
    return parts


def _regressions(last: dict[str, Any]) -> list[str]:
    parts = []
    for e in last["engines"]:
        if not e["queries"]:
            continue
        items = []
        for q in e["queries"][:20]:
            why = [f"{p['product_id']} “{p['title'][:60]}” {p['why']} ({p['label']})"
                   for p in q["offending"][:3]]
            why += [f"left the top k: {p['product_id']} “{p['title'][:60]}” ({p['label']})"
                    for p in q.get("left_top_k", [])[:3]]
            why += [f"entered the top k: {p['product_id']} “{p['title'][:60]}” ({p['label']})"
                    for p in q.get("entered_top_k", [])[:3]]
            items.append(f"<li><code>{html.escape(q['query'])}</code> {q['before']:.3f} → "
                         f"{q['now']:.3f}<ul>" + "".join(f"<li>{html.escape(w)}</li>"
                                                         for w in why) + "</ul></li>")
        parts += [f"<h3>{html.escape(e['engine'])}: queries that fell in the last run</h3>",
                  "<ul>" + "".join(items) + "</ul>"]
    return parts


def write_experiment_page(store: Store, names: list[str] | None, out_dir: str | Path) -> str:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    title = "raer experiments"
    page = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}"
            f"</title><style>{CSS}</style></head><body><h1>{title}</h1>"
            + "\n".join(experiment_sections(store, names)) + "</body></html>")
    path = out / "experiments.html"
    path.write_text(page, encoding="utf-8")
    return str(path)
