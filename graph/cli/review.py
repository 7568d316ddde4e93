"""`raer review list / resolve`: the queue of escalated pairs and people's verdicts."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from raer.graph.cli.options import EXIT_BAD_INPUT, db_option, json_option
from raer.nodes.schemas import LABELS
from raer.store import open_store

WIDE = 120  # columns below which the queue is printed as one block per pair


@click.group()
def review() -> None:
    """Work through pairs the judge escalated to people."""


@review.command("list")
@db_option
@click.option("--run", "run_id", default="", help="Only this run.")
@click.option("--all", "show_all", is_flag=True, help="Include resolved reviews.")
@json_option
def list_reviews(db_path: str, run_id: str, show_all: bool, as_json: bool) -> None:
    """List escalated pairs with the reasons they were escalated."""
    rows = open_store(db_path).reviews(run_id or None, None if show_all else "open")
    for row in rows:
        row["reasons"] = json.loads(row["reasons"] or "[]")
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    console = Console(highlight=False)
    if console.width >= WIDE:
        table = Table(title=f"{len(rows)} pairs for review")
        for column in ("judgment", "query", "product", "judge label", "conf.", "reasons",
                       "status"):
            table.add_column(column, overflow="fold")
        for r in rows:
            table.add_row(r["judgment_id"], Text(r["query"]),
                          Text(f"{r['title'][:40]} [{r['product_id']}]"),
                          r["label"] or "-", str(r["confidence"]), Text("; ".join(r["reasons"])),
                          r["status"] + (f": {r['human_label']}" if r["human_label"] else ""))
        console.print(table)
        return
    # narrow terminals: one block per pair, each line cut to the width, ids never broken
    console.print(Text(f"{len(rows)} pairs for review", style="bold"))
    for r in rows:
        status = r["status"] + (f": {r['human_label']}" if r["human_label"] else "")
        lines = [f"{r['judgment_id']}  {status}  judge: {r['label'] or '-'} "
                 f"({r['confidence']})",
                 f"  query:   {r['query']}",
                 f"  product: {r['title']} [{r['product_id']}]",
                 *(f"  why:     {reason}" for reason in r["reasons"])]
        console.print()
        for line in lines:
            console.print(Text(_cut(line, console.width)), no_wrap=True)


def _cut(line: str, width: int) -> str:
    return line if len(line) <= width else line[:width - 1] + "…"


@review.command("resolve")
@click.argument("judgment_id")
@click.argument("label", type=click.Choice(list(LABELS)))
@db_option
@click.option("--reviewer", default="", help="Who decided (name or id).")
@click.option("--note", default="", help="Why.")
def resolve(judgment_id: str, label: str, db_path: str, reviewer: str, note: str) -> None:
    """Record a person's LABEL for an escalated pair."""
    try:
        open_store(db_path).resolve_review(judgment_id, label, reviewer, note)
    except KeyError:
        click.echo(f"no judgment {judgment_id} in {db_path}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    click.echo(json.dumps({"judgment_id": judgment_id, "human_label": label}))
