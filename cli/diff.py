"""`raer diff RUN_A RUN_B`: what changed between two runs on the same pairs.

The prompt engineer's question after an edit: which labels moved, and why did the judge
change its mind? Pairs are matched by (query, engine, product); each changed pair is shown
with both labels, confidences and reasonings, and the ids `raer show` opens.
"""

from __future__ import annotations

import json
from collections import Counter

import click
from rich.console import Console
from rich.text import Text

from raer.cli.options import db_option, json_option, resolve_run
from raer.store import open_store


@click.command()
@click.argument("run_a")
@click.argument("run_b")
@db_option
@click.option("--all", "show_all", is_flag=True,
              help="List every pair both runs judged, not only changed labels.")
@json_option
def diff(run_a: str, run_b: str, db_path: str, show_all: bool, as_json: bool) -> None:
    """List pairs whose label changed between RUN_A and RUN_B, with both reasonings."""
    store = open_store(db_path)
    run_a, run_b = resolve_run(store, run_a), resolve_run(store, run_b)
    rows = store.paired_judgments(run_a, run_b)
    changed = [r for r in rows if (r["label_a"], r["status_a"]) != (r["label_b"], r["status_b"])]
    moves = Counter(f"{r['label_a']} → {r['label_b']}" for r in changed)
    result = {"run_a": run_a, "run_b": run_b, "pairs_in_both": len(rows),
              "changed": len(changed), "moves": dict(moves.most_common()),
              "pairs": rows if show_all else changed}
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    out = Console(highlight=False)
    out.print(Text(f"{run_a} → {run_b}: {len(changed)} of {len(rows)} shared pairs changed "
                   "label or status", style="bold"))
    for move, count in moves.most_common():
        out.print(Text(f"  {count:>5}  {move}"))
    for r in result["pairs"]:
        out.print()
        out.print(Text(f"{r['query']} → {r['title']} [{r['product_id']}]"
                       + (f" · engine {r['engine']}" if r["engine"] else ""), style="bold"))
        for side in ("a", "b"):
            out.print(Text(f"  {side.upper()} {r[f'id_{side}']}: {r[f'status_{side}']} · "
                           f"{r[f'label_{side}']} ({r[f'confidence_{side}']}) · prompt "
                           f"{r[f'prompt_{side}']}"))
            out.print(Text(f"    {r[f'reasoning_{side}'] or '-'}"))
