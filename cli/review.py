"""`raer review list / resolve`: the queue of escalated pairs and people's verdicts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from raer.cli.options import EXIT_BAD_INPUT, db_option, json_option, resolve_run
from raer.cli.output import force_option, write_output
from raer.store import open_store
from raer.store.reviews import (
    SKIP,
    ReviewError,
    inter_reviewer_agreement,
    open_review,
    undo_last,
)
from raer.store.scale import LABELS

WIDE = 120  # columns below which the queue is printed as one block per pair


@click.group()
def review() -> None:
    """Work through pairs the judge escalated to people."""


@review.command("list")
@db_option
@click.option("--run", "run_id", default="", help="Only this run (latest: the newest).")
@click.option("--all", "show_all", is_flag=True, help="Include resolved reviews.")
@json_option
def list_reviews(db_path: str, run_id: str, show_all: bool, as_json: bool) -> None:
    """List escalated pairs with the reasons they were escalated."""
    store = open_store(db_path)
    if run_id == "latest":
        run_id = resolve_run(store, run_id)
    rows = store.reviews(run_id or None, None if show_all else "open")
    for row in rows:
        row["reasons"] = json.loads(row["reasons"] or "[]")
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    console = Console(highlight=False)
    if console.width >= WIDE:
        table = Table(title=_title(rows))
        for column in ("judgment", "query", "product", "engines", "judge label", "conf.",
                       "reasons", "status"):
            table.add_column(column, overflow="fold")
        for r in rows:
            table.add_row(r["judgment_id"], Text(r["query"]),
                          Text(f"{r['title'][:40]} [{r['product_id']}]"),
                          Text(", ".join(r["engines"])), r["label"] or "-",
                          str(r["confidence"]), Text("; ".join(r["reasons"])),
                          r["status"] + (f": {r['human_label']}" if r["human_label"] else ""))
        console.print(table)
        return
    # narrow terminals: one block per pair, each line cut to the width, ids never broken
    console.print(Text(_title(rows), style="bold"))
    for r in rows:
        status = r["status"] + (f": {r['human_label']}" if r["human_label"] else "")
        lines = [f"{r['judgment_id']}  {status}  judge: {r['label'] or '-'} "
                 f"({r['confidence']})",
                 f"  query:   {r['query']}",
                 f"  product: {r['title']} [{r['product_id']}]",
                 *([f"  engines: {', '.join(r['engines'])} (one review for "
                    f"{r['pairs']} pairs)"] if r["pairs"] > 1 else []),
                 *(f"  why:     {reason}" for reason in r["reasons"])]
        console.print()
        for line in lines:
            console.print(Text(_cut(line, console.width)), no_wrap=True)


def _title(rows: list[dict]) -> str:
    pairs = sum(r["pairs"] for r in rows)
    if pairs == len(rows):
        return f"{len(rows)} pairs for review"
    return (f"{len(rows)} reviews for {pairs} pairs (one per distinct judge input: pairs "
            f"that gave the judge the same input share a decision)")


def _cut(line: str, width: int) -> str:
    return line if len(line) <= width else line[:width - 1] + "…"


@review.command("resolve")
@click.argument("judgment_id")
@click.argument("label", type=click.Choice([*LABELS, SKIP]))
@db_option
@click.option("--reviewer", default="cli", show_default=True, help="Who decided (name or id).")
@click.option("--note", default="", help="Why.")
@click.option("--adjudicate", is_flag=True,
              help="Settle the pair as its adjudicator (wins over disagreeing reviewers).")
def resolve(judgment_id: str, label: str, db_path: str, reviewer: str, note: str,
            adjudicate: bool) -> None:
    """Record a person's LABEL for an escalated pair (several reviewers may label one)."""
    try:
        result = open_store(db_path).resolve_review(
            judgment_id, label, reviewer, note, "adjudicator" if adjudicate else "reviewer")
    except KeyError:
        click.echo(f"no judgment {judgment_id} in {db_path}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except ReviewError as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_BAD_INPUT)
    click.echo(json.dumps(result, ensure_ascii=False))


@review.command("undo")
@db_option
@click.option("--reviewer", default="cli", show_default=True)
@click.option("--run", "run_id", default="", help="Only decisions on this run's pairs.")
def undo(db_path: str, reviewer: str, run_id: str) -> None:
    """Undo REVIEWER's latest decision (kept in the store, marked undone)."""
    result = undo_last(open_store(db_path), reviewer, run_id)
    if result is None:
        click.echo(f"{reviewer} has no decision to undo", err=True)
        sys.exit(EXIT_BAD_INPUT)
    click.echo(json.dumps(result, ensure_ascii=False))


@review.command("stats")
@click.argument("run_id", default="latest")
@db_option
@json_option
def stats(run_id: str, db_path: str, as_json: bool) -> None:
    """Review progress of RUN_ID and how often reviewers of the same pair agree."""
    store = open_store(db_path)
    run_id = resolve_run(store, run_id)
    statuses = store.review_status_counts(run_id)
    per_reviewer = store.decisions_per_reviewer(run_id)
    result = {"run_id": run_id, "reviews": statuses, "decisions_per_reviewer": per_reviewer,
              "inter_reviewer": inter_reviewer_agreement(store, run_id)}
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    agreement = result["inter_reviewer"]
    share = agreement["full_agreement"]
    alpha = agreement["alpha_ordinal"]
    click.echo("\n".join([
        f"run {run_id}: " + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())),
        "decisions: " + (", ".join(f"{r} {n}" for r, n in sorted(per_reviewer.items()))
                         or "none"),
        f"pairs with two or more reviewers: {agreement['pairs_with_2_or_more_reviewers']}"
        + (f"; full agreement {share:.0%}" if share is not None else "")
        + (f"; Krippendorff's alpha (ordinal) {alpha:.2f}" if alpha is not None else ""),
        *(f"disputed, for an adjudicator: {jid}" for jid in agreement["disputed"])]))


@review.command("serve")
@db_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Off loopback the page needs RAER_REVIEW_TOKEN.")
@click.option("--port", default=8765, show_default=True, type=int)
@click.option("--images-root", default="", type=click.Path(file_okay=False),
              help="Folder local packshots are read from (default: each run's own).")
def serve(db_path: str, host: str, port: int, images_root: str) -> None:
    """Serve the review page: the queue with packshots, one key per label, undo."""
    try:
        import uvicorn

        from raer.web.review.app import (
            TOKEN_ENV,
            TOKENS_ENV,
            config_from_environment,
            is_loopback,
            review_app,
        )
    except ModuleNotFoundError as exc:
        click.echo(f"not set up: `raer review serve` needs {exc.name}: "
                   f"pip install 'raer[review]'", err=True)
        sys.exit(EXIT_BAD_INPUT)
    try:
        config = config_from_environment(str(Path(db_path).resolve()),
                                         str(Path(images_root).resolve()) if images_root else "")
    except ValueError as exc:
        click.echo(f"bad input: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if not is_loopback(host) and not config.token and not config.identities:
        click.echo(f"refused: binding {host} (off loopback) needs tokens in {TOKENS_ENV} "
                   f"(one per reviewer) or {TOKEN_ENV}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    open_store(db_path)  # an unusable store fails here, not at the first request
    click.echo(f"review page: http://{host}:{port}/  (store {db_path}; Ctrl-C stops)")
    uvicorn.run(review_app(config), host=host, port=port, log_level="warning")


@review.command("sample")
@click.argument("run_id", default="latest")
@db_option
@click.option("--budget", required=True, type=click.IntRange(1), help="Pairs people can label.")
@click.option("--seed", default=0, show_default=True)
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default="-",
              help="JSONL of the drawn pairs with their inclusion probability (default: stdout).")
@click.option("--enqueue", is_flag=True,
              help="Also put the drawn pairs in the review queue (the review page shows them).")
@force_option
def sample(run_id: str, db_path: str, budget: int, seed: int, out_path: str,
           enqueue: bool, force: bool) -> None:
    """Draw BUDGET pairs of RUN_ID for people to label: stratified by query and engine,
    weighted to the judge's uncertainty, each with its inclusion probability."""
    from raer.evals.sampling import sample_for_people

    store = open_store(db_path)
    run_id = resolve_run(store, run_id)
    drawn = sample_for_people(store, run_id, budget, seed)
    rows = store.run_judgments(run_id)
    titles = store.product_titles(run_id)
    lines = []
    for d in drawn:
        j = rows[d.judgment_id]
        lines.append({"judgment_id": d.judgment_id, "query": j["query"], "engine": d.engine,
                      "rank": j["rank"], "product_id": j["product_id"],
                      "title": titles.get(j["product_id"], ""), "judge_label": j["label"],
                      "confidence": j["confidence"], "inclusion": round(d.inclusion, 6),
                      "weight": round(d.weight, 6)})
    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    write_output(out_path, text, [db_path], force, what=f"pairs drawn from {run_id}")
    if enqueue:
        with store.atomic():
            for d in drawn:
                open_review(store, d.judgment_id, run_id, [
                    f"sampled for people (budget {budget}, inclusion {d.inclusion:.3f})"])
    strata = len({(d.query_id, d.engine) for d in drawn})
    click.echo(f"drew {len(drawn)} pairs over {strata} query×engine strata"
               + (" and queued them for review" if enqueue else ""), err=True)


@review.command("export")
@click.argument("run_id", default="latest")
@db_option
@click.option("--format", "fmt", type=click.Choice(["label-studio"]), default="label-studio",
              show_default=True)
@click.option("--all", "every", is_flag=True, help="Every escalated pair, not only open ones.")
@click.option("--image-base", default="",
              help="URL prefix for local packshots, e.g. the review page's "
                   "http://127.0.0.1:8765/api/packshot/ (default: remote packshots only).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Folder for tasks.json and label_config.xml.")
def export_reviews(run_id: str, db_path: str, fmt: str, every: bool, image_base: str,
                   out_dir: str) -> None:
    """Write RUN_ID's review queue as Label Studio tasks, with the judge's label as a
    prediction, and the labelling config to create the project with."""
    from raer.evals.label_studio import LABEL_CONFIG, export_tasks

    store = open_store(db_path)
    run_id = resolve_run(store, run_id)
    tasks = export_tasks(store, run_id, None if every else "open", image_base)
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tasks.json").write_text(json.dumps(tasks, indent=2, ensure_ascii=False) + "\n",
                                       encoding="utf-8")
    (folder / "label_config.xml").write_text(LABEL_CONFIG, encoding="utf-8")
    click.echo(json.dumps({"tasks": len(tasks), "out": str(folder)}))


@review.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@db_option
@click.option("--format", "fmt", type=click.Choice(["label-studio"]), default="label-studio",
              show_default=True)
@click.option("--as-labels", "source", default="",
              help="Store as human labels of this source (for raer agree) instead of as "
                   "review decisions.")
@click.option("--split", default="", help="With --as-labels: the split to file them under.")
def import_reviews(path: str, db_path: str, fmt: str, source: str, split: str) -> None:
    """Read a Label Studio JSON export back: each annotation becomes a reviewer's decision
    (or a human label). Checked whole first: a bad task writes nothing."""
    from raer.evals.label_studio import LabelStudioError, check_known, read_export
    from raer.store.reviews import decide

    store = open_store(db_path)
    try:
        annotations = read_export(path)
        check_known(store, annotations, path)
    except LabelStudioError as exc:
        click.echo(f"bad input: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    written = 0
    with store.atomic():
        for a in annotations:
            if source:
                j = store.judgment_pair(a.judgment_id)
                store.put_human_label(j["query_id"], j["product_id"], a.annotator, a.label,
                                      source, split)
                written += 1
                continue
            if store.latest_decision(a.judgment_id, a.annotator) == a.label:
                continue  # imported before: an import is idempotent
            decide(store, a.judgment_id, a.annotator, a.label, a.note)
            written += 1
    click.echo(json.dumps({"annotations": len(annotations), "written": written,
                           "as": f"human labels {source!r}" if source else "review decisions"}))
