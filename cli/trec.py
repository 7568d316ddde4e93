"""TREC and friends: export qrels, runs, Quepid ratings and OpenSearch judgment lists; build
pairs to judge from a TREC run file, a queries file and a product catalogue.

Formats: qrels `qid 0 docid grade`; runs `qid Q0 docid rank score tag`; queries `qid<TAB>text`
(or JSONL {"qid", "query"}); Quepid's ratings CSV `query,docid,rating`; the OpenSearch Search
Relevance Workbench's imported judgment list (JSON). Query ids are raer's (`q-…`), or the
ones the imported run used. Bad input stops before anything is written, naming file, line
and field.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections import defaultdict
from pathlib import Path

import click

from raer.cli.options import EXIT_BAD_INPUT, db_option, resolve_run
from raer.cli.output import OutputRefused, check_output, force_option, write_output
from raer.evals.engines import Gains, effective_labels, qrels_of
from raer.evals.trec import read_catalogue, read_queries, read_trec_run
from raer.nodes.inputs import InputError, Pair, resolve_image
from raer.store import open_store

FORMATS = ("qrels", "run", "queries", "quepid", "opensearch")


def _human_qrels(store, source: str, gains: Gains,
                 split: str = "") -> dict[tuple[str, str], int]:
    from raer.evals.engines import human_qrels

    return human_qrels(store, source, gains, split)


@click.command()
@click.argument("kind", type=click.Choice(FORMATS))
@click.argument("run_id", required=False, default="")
@db_option
@click.option("--engine", default="", help="kind run: the engine whose ranking is written.")
@click.option("--human", "source", default="",
              help="kind qrels/quepid/opensearch: labels from this imported human source "
                   "(majority per pair) instead of RUN_ID's labels.")
@click.option("--split", default="", help="With --human: only this split (e.g. test).")
@click.option("--gains", "gains_text", default="2,1,0", show_default=True,
              help="Grades of highly relevant, acceptable substitute, irrelevant.")
@click.option("--out", "out_path", default="-",
              help="File to write (default: stdout); never an input or a store.")
@force_option
def export(kind: str, run_id: str, db_path: str, engine: str, source: str, split: str,
           gains_text: str, out_path: str, force: bool) -> None:
    """Write KIND (qrels, run, queries, quepid, opensearch) for RUN_ID ("latest": the
    store's most recent judging run)."""
    if out_path != "-":
        try:  # before anything is read: a refused --out costs nothing
            check_output(out_path, [db_path], force)
        except OutputRefused as exc:
            click.echo(f"refused: {exc}", err=True)
            sys.exit(EXIT_BAD_INPUT)
    store = open_store(db_path)
    gains = Gains.parse(gains_text)
    if not run_id and not (source and kind in ("qrels", "quepid", "opensearch")):
        raise click.UsageError("give a RUN_ID (or --human SOURCE for qrels/quepid/opensearch)")
    if run_id:
        run_id = resolve_run(store, run_id)
    try:
        items = effective_labels(store, run_id) if run_id else []
        if split and not source:
            raise LookupError("--split chooses among human labels: give --human SOURCE")
        grades = _human_qrels(store, source, gains, split) if source else qrels_of(items,
                                                                                     gains)
    except LookupError as exc:
        click.echo(f"bad input: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    texts = store.query_texts()
    buffer = io.StringIO()
    if kind == "qrels":
        for (q, d), g in sorted(grades.items()):
            buffer.write(f"{q} 0 {d} {g}\n")
    elif kind == "queries":
        for q in sorted({i.query_id for i in items}):
            buffer.write(f"{q}\t{texts[q]}\n")
    elif kind == "run":
        engines = sorted({i.engine for i in items})
        if engine not in engines:
            click.echo(f"bad input: --engine must be one of {engines}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        ranked: dict[str, list] = defaultdict(list)
        for i in items:
            if i.engine == engine:
                ranked[i.query_id].append(i)
        for q in sorted(ranked):
            for pos, i in enumerate(sorted(ranked[q], key=lambda i: i.rank), start=1):
                buffer.write(f"{q} Q0 {i.product_id} {pos} {len(ranked[q]) - pos + 1} "
                             f"{engine or 'raer'}\n")
    elif kind == "quepid":
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["query", "docid", "rating"])
        for (q, d), g in sorted(grades.items()):
            writer.writerow([texts[q], d, g])
    else:  # opensearch: the Search Relevance Workbench's imported judgment list
        by_query: dict[str, list] = defaultdict(list)
        for (q, d), g in sorted(grades.items()):
            by_query[texts[q]].append({"docId": d, "rating": str(g)})
        json.dump({"name": f"raer {run_id or source}", "type": "IMPORT_JUDGMENT",
                   "description": f"raer labels, gains {gains.__dict__}",
                   "judgmentRatings": [{"query": q, "ratings": r}
                                       for q, r in by_query.items()]},
                  buffer, indent=2, ensure_ascii=False)
    write_output(out_path, buffer.getvalue() if grades or items else "", [db_path], force,
                 what=f"labels in {run_id or source}")


@click.command("import-run")
@click.argument("run_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--queries", "queries_file", required=True,
              type=click.Path(exists=True, dir_okay=False),
              help="qid<TAB>query per line, or JSONL {qid, query}.")
@click.option("--catalogue", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Products (JSONL, CSV or Parquet) with product_id, title, ….")
@click.option("--engine", default="", help="Engine name (default: the run's tag).")
@click.option("--depth", default=0, type=click.IntRange(0),
              help="Only the top N per query (0: all).")
@click.option("--out", "out_path", required=True,
              help="Pairs file to write (JSONL), for `raer judge`; never an input.")
@force_option
def import_run(run_file: str, queries_file: str, catalogue: str, engine: str, depth: int,
               out_path: str, force: bool) -> None:
    """Build a pairs file from a TREC RUN_FILE, its queries and a product catalogue."""
    inputs = [run_file, queries_file, catalogue]
    try:
        check_output(out_path, inputs, force)
    except OutputRefused as exc:
        click.echo(f"refused: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    try:
        rows = read_trec_run(Path(run_file))
        queries = read_queries(Path(queries_file))
        products = read_catalogue(Path(catalogue))
        problems = []
        seen: dict[tuple[str, str, str], int] = {}
        for n, qid, docid, _, tag in rows:
            if qid not in queries:
                problems.append((run_file, n, "qid", f"{qid!r} is not in {queries_file}"))
            if docid not in products:
                problems.append((run_file, n, "docid", f"{docid!r} is not in {catalogue}"))
            # `raer judge` refuses a product twice for one query and engine (and trec_eval
            # a docid twice for one topic): refused here, naming both lines
            first = seen.setdefault((qid, docid, engine or tag), n)
            if first != n:
                problems.append((run_file, n, "docid", f"{docid!r} is ranked twice for "
                                 f"{qid!r} (first on line {first})"))
        if problems:
            raise InputError(problems)
    except InputError as exc:
        click.echo(f"bad input:\n{exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    lines = []
    for _, qid, docid, rank, tag in sorted(rows, key=lambda r: (r[1], r[3])):
        if depth and rank > depth:
            continue
        product = products[docid].model_dump()
        # a relative packshot path is the catalogue's: written absolute, so the pairs file
        # means the same image wherever it is written
        product["image"] = resolve_image(product.get("image") or "", Path(catalogue).parent)
        pair = Pair(query=queries[qid], **{**product, "engine": engine or tag, "rank": rank})
        lines.append(pair.model_dump_json(exclude_defaults=True))
    write_output(out_path, "".join(line + "\n" for line in lines), inputs, force,
                 what="pairs within --depth")
    click.echo(json.dumps({"pairs": len(lines), "queries": len({r[1] for r in rows}),
                           "out": out_path}))
