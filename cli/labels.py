"""`raer labels import / pairs`: human labels into the store, and judgeable pairs out."""

from __future__ import annotations

import json
import sys

import click

from raer.cli.options import EXIT_BAD_INPUT, db_option, new_db_option, resolve_run
from raer.cli.output import force_option, write_output
from raer.evals.baselines import labelled_pairs
from raer.evals.labels import (
    DUPLICATES,
    ProductConflict,
    TableImport,
    parse_columns,
    parse_mapping,
    read_esci_official,
    read_esci_sample,
    read_label_table_full,
    read_wands,
    split_by_query,
    store_labels,
)
from raer.nodes.inputs import InputError
from raer.store import open_store
from raer.store.store import product_of

# Quepid's and SRW's ratings are numbers on the team's scale (0-3 is common): 2 and up highly
# relevant, 1 a substitute, 0 irrelevant; --mapping gives another rule
GRADED = ">=2:highly relevant,>=1:acceptable substitute,*:irrelevant"
DEFAULT_MAPPING = {"esci-sample": "esci", "esci": "esci", "wands": "wands", "table": "raer",
                   "trec": "trec", "srw": GRADED, "quepid": GRADED, "quepid-book": GRADED}


@click.group()
def labels() -> None:
    """Human labels: import them, export the labelled pairs for judging."""


@labels.command("import")
@click.argument("kind", type=click.Choice(list(DEFAULT_MAPPING)))
@click.argument("path", type=click.Path(exists=True))
@new_db_option
@click.option("--source", default="", help="Name to store the labels under (default: KIND).")
@click.option("--mapping", default="",
              help="Label mapping: esci, wands, raer; JSON {\"raw\": \"raer label\"}; rules "
                   "such as '>=2.67:highly relevant,>=1.67:acceptable substitute,*:irrelevant'; "
                   "or a file holding either.")
@click.option("--annotators", default="label",
              help="table: comma-separated annotator columns, e.g. A1,A2,tiebreaker.")
@click.option("--columns", default="",
              help="table: rename columns to raer's fields, e.g. "
                   "query=search_term,product_id=pid,title=name.")
@click.option("--duplicates", type=click.Choice(DUPLICATES), default="error", show_default=True,
              help="table: rows for the same query (case and spaces ignored), product and "
                   "annotator: an error, keep the first, or average numeric labels.")
@click.option("--split-by-query", "dev_share", type=float, default=None,
              help="Ignore the file's split column; put this share of the queries in 'dev' "
                   "and the rest in 'test' (whole queries, reproducible with --seed).")
@click.option("--seed", default=0, show_default=True, help="Seed for --split-by-query.")
@click.option("--spread", default="",
              help="table: column with the standard deviation of the raters behind an "
                   "aggregate label; estimates the human ceiling (needs --raters, --scale).")
@click.option("--raters", type=int, default=0, help="table: raters behind each aggregate.")
@click.option("--scale", default="", help="table: the raters' scale as LOW,HIGH, e.g. 1,4.")
@click.option("--products", type=click.Path(exists=True),
              help="esci: the products parquet beside the examples parquet.")
@click.option("--locale", default="us", help="esci: product locale.")
@click.option("--queries", "queries_file", type=click.Path(exists=True),
              help="trec: qid<TAB>query per line, or JSONL {qid, query}.")
@click.option("--catalogue", type=click.Path(exists=True),
              help="trec, srw, quepid, quepid-book: products (JSONL, CSV or Parquet) with "
                   "product_id, title, ….")
@click.option("--update-products", is_flag=True,
              help="Take this file's text for products stored with other text (refused "
                   "without it: runs that judged the old text would show the new).")
def import_labels(kind: str, path: str, db_path: str, source: str, mapping: str,
                  annotators: str, columns: str, duplicates: str, dev_share: float | None,
                  seed: int, spread: str, raters: int, scale: str, products: str | None,
                  locale: str, queries_file: str | None, catalogue: str | None,
                  update_products: bool) -> None:
    """Import human labels of KIND from PATH.

    \b
    esci-sample  ../shared/data/esci-us/pairs.jsonl (read in place, never copied)
    esci         shopping_queries_dataset_examples.parquet (+ --products)
    wands        the WANDS folder with query.csv, product.csv, label.csv
    table        CSV/TSV/JSONL/Parquet pairs with one column per annotator (--annotators)
    trec         TREC qrels (qid iter docid grade) + --queries + --catalogue
    srw          an OpenSearch SRW judgment list (.json) or CSV + --catalogue
    quepid       Quepid's ratings CSV (query,docid,rating) + --catalogue
    quepid-book  a Quepid book (.json): raters by e-mail; titles from document_fields
                 or --catalogue

    A `split` column (e.g. dev/test) is stored with each label; --split-by-query makes one.
    Every problem is reported at once, with file, line and field; nothing is written then.
    """
    table = TableImport([])
    try:
        chosen = parse_mapping(mapping or DEFAULT_MAPPING[kind])
        if kind == "esci-sample":
            items = read_esci_sample(path, chosen)
        elif kind == "esci":
            if not products:
                raise click.UsageError("esci needs --products PARQUET")
            items = read_esci_official(path, products, locale, chosen)
        elif kind == "wands":
            items = read_wands(path, chosen)
        elif kind == "trec":
            if not (queries_file and catalogue):
                raise click.UsageError("trec needs --queries and --catalogue")
            from raer.evals.trec import read_trec_qrels

            items = read_trec_qrels(path, queries_file, catalogue, chosen)
        elif kind in ("srw", "quepid", "quepid-book"):
            from raer.evals.trec import read_tool_ratings

            if kind != "quepid-book" and not catalogue:
                raise click.UsageError(f"{kind} needs --catalogue (the files name documents "
                                       f"by id only)")
            items = read_tool_ratings(kind, path, catalogue, chosen)
        else:
            table = read_label_table_full(path, [a.strip() for a in annotators.split(",")],
                                          chosen, parse_columns(columns), duplicates, spread,
                                          raters, _scale(scale))
            items = table.labels
        if dev_share is not None:
            items = split_by_query(items, dev_share, seed)
    except (InputError, ValueError) as exc:
        click.echo(f"bad input:\n{exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    try:
        count = store_labels(open_store(db_path), items, source or kind, update_products)
    except ProductConflict as exc:
        click.echo(f"bad input: {path}: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    splits: dict[str, int] = {}
    for item in items:
        splits[item.split] = splits.get(item.split, 0) + 1
    click.echo(json.dumps({
        "source": source or kind, "labels": count,
        "pairs": len({(i.pair.query, i.pair.product_id) for i in items}),
        "splits": splits, "product_ids_from_title": table.ids_from_title,
        "duplicates_dropped": table.duplicates_dropped,
        "duplicates_averaged": table.duplicates_averaged,
        "ceiling_estimated_pairs": sum(i.loo_estimate is not None for i in items)}))


def _scale(text: str) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        low, high = (int(x) for x in text.split(","))
    except ValueError as exc:
        raise ValueError(f"--scale: expected LOW,HIGH such as 1,4, not {text!r}") from exc
    return low, high


@labels.command("pairs")
@db_option
@click.option("--source", required=True, help="Label source to export.")
@click.option("--split", default="", help="Only this split (e.g. test).")
@click.option("--max-queries", type=int, default=0,
              help="At most this many queries, spread over query types (0: all).")
@click.option("--max-pairs", type=int, default=0,
              help="At most this many pairs, whole queries only, in the same spread (0: all).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True,
              help="Pairs file to write; never the store.")
@force_option
def export_pairs(db_path: str, source: str, split: str, max_queries: int, max_pairs: int,
                 output: str, force: bool) -> None:
    """Write the labelled pairs as a pairs file for `raer judge`."""
    store = open_store(db_path)
    pairs = labelled_pairs(store, source, split)
    if not pairs:
        click.echo(f"no human labels of source {source!r}"
                   + (f" in split {split!r}" if split else ""), err=True)
        sys.exit(EXIT_BAD_INPUT)
    queries = store.queries_by_id()
    order = _spread(sorted({p["query_id"] for p in pairs}), queries, max_queries)
    chosen = _within_pairs(order, pairs, max_pairs)
    products = store.products_by_id()
    lines = []
    for pair in pairs:
        if pair["query_id"] not in chosen:
            continue
        query, product = queries[pair["query_id"]], products[pair["product_id"]]
        lines.append(json.dumps({
            "query": query["text"], "language": query["language"],
            "query_type": query["query_type"], **product_of(product)},
            ensure_ascii=False) + "\n")
    write_output(output, "".join(lines), [db_path], force, what="pairs within the limits")
    click.echo(json.dumps({"queries": len(chosen),
                           "pairs": sum(p["query_id"] in chosen for p in pairs),
                           "output": output}))


def _within_pairs(order: list[str], pairs: list[dict], limit: int) -> set[str]:
    """Queries in spread order while their pairs fit in `limit` (whole queries: per-query
    measures need every labelled product of a query)."""
    if not limit:
        return set(order)
    sizes: dict[str, int] = {}
    for pair in pairs:
        sizes[pair["query_id"]] = sizes.get(pair["query_id"], 0) + 1
    chosen, total = set(), 0
    for qid in order:
        if total + sizes[qid] <= limit:
            chosen.add(qid)
            total += sizes[qid]
    return chosen


def _spread(query_ids: list[str], queries: dict, limit: int) -> list[str]:
    """Round-robin over query types so a small sample still covers each type."""
    by_type: dict[str, list[str]] = {}
    for qid in query_ids:
        by_type.setdefault(queries[qid]["query_type"] or "", []).append(qid)
    chosen: list[str] = []
    limit = limit or len(query_ids)
    while len(chosen) < limit and any(by_type.values()):
        for kind in sorted(by_type):
            if by_type[kind] and len(chosen) < limit:
                chosen.append(by_type[kind].pop(0))
    return chosen


@labels.command("from-reviews")
@click.argument("run_id")
@db_option
@click.option("--source", required=True, help="Name the labels get (e.g. reviewed).")
@click.option("--split", default="", help="Split to file them under.")
def from_reviews(run_id: str, db_path: str, source: str, split: str) -> None:
    """Copy people's decisions on RUN_ID's pairs into human labels (one per reviewer), for
    `raer agree`, `raer calibrate` and `raer ppi`."""
    store = open_store(db_path)
    run_id = resolve_run(store, run_id)
    latest = store.latest_decisions(run_id)
    with store.atomic():
        for (qid, pid, reviewer), label in latest.items():
            store.put_human_label(qid, pid, reviewer, label, source, split)
    click.echo(json.dumps({"source": source, "labels": len(latest)}))
