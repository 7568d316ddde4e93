"""`raer labels import / pairs`: human labels into the store, and judgeable pairs out."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from raer.evals.baselines import labelled_pairs
from raer.evals.labels import (
    parse_mapping,
    read_esci_official,
    read_esci_sample,
    read_label_table,
    read_wands,
    store_labels,
)
from raer.graph.cli.options import EXIT_BAD_INPUT, db_option
from raer.nodes.inputs import InputError
from raer.store import open_store

DEFAULT_MAPPING = {"esci-sample": "esci", "esci": "esci", "wands": "wands", "table": "raer"}


@click.group()
def labels() -> None:
    """Human labels: import them, export the labelled pairs for judging."""


@labels.command("import")
@click.argument("kind", type=click.Choice(list(DEFAULT_MAPPING)))
@click.argument("path", type=click.Path(exists=True))
@db_option
@click.option("--source", default="", help="Name to store the labels under (default: KIND).")
@click.option("--mapping", default="",
              help='Label mapping: esci, wands, raer, or JSON {"raw": "raer label"}.')
@click.option("--annotators", default="label",
              help="table: comma-separated annotator columns, e.g. A1,A2,tiebreaker.")
@click.option("--products", type=click.Path(exists=True),
              help="esci: the products parquet beside the examples parquet.")
@click.option("--locale", default="us", help="esci: product locale.")
def import_labels(kind: str, path: str, db_path: str, source: str, mapping: str,
                  annotators: str, products: str | None, locale: str) -> None:
    """Import human labels of KIND from PATH.

    \b
    esci-sample  ../shared/data/esci-us/pairs.jsonl (read in place, never copied)
    esci         shopping_queries_dataset_examples.parquet (+ --products)
    wands        the WANDS folder with query.csv, product.csv, label.csv
    table        CSV/JSONL/Parquet pairs with one column per annotator (--annotators)
    """
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
        else:
            items = read_label_table(path, [a.strip() for a in annotators.split(",")], chosen)
    except (InputError, ValueError) as exc:
        click.echo(f"bad input:\n{exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    count = store_labels(open_store(db_path), items, source or kind)
    click.echo(json.dumps({"source": source or kind, "labels": count,
                           "pairs": len({(i.pair.query, i.pair.product_id) for i in items})}))


@labels.command("pairs")
@db_option
@click.option("--source", required=True, help="Label source to export.")
@click.option("--split", default="", help="Only this split (e.g. test).")
@click.option("--max-queries", type=int, default=0,
              help="At most this many queries, spread over query types (0: all).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True)
def export_pairs(db_path: str, source: str, split: str, max_queries: int, output: str) -> None:
    """Write the labelled pairs as a pairs file for `raer judge`."""
    store = open_store(db_path)
    pairs = labelled_pairs(store, source, split)
    queries = {r["id"]: r for r in store.rows("select * from queries")}
    chosen = _spread(sorted({p["query_id"] for p in pairs}), queries, max_queries)
    products = {r["id"]: r for r in store.rows("select * from products")}
    with Path(output).open("w", encoding="utf-8") as out:
        for pair in pairs:
            if pair["query_id"] not in chosen:
                continue
            query, product = queries[pair["query_id"]], products[pair["product_id"]]
            out.write(json.dumps({
                "query": query["text"], "language": query["language"],
                "query_type": query["query_type"], "product_id": product["id"],
                **{k: product[k] or "" for k in ("title", "brand", "colour", "category",
                                                  "description", "image")},
                "attributes": json.loads(product["attributes"] or "{}")},
                ensure_ascii=False) + "\n")
    click.echo(json.dumps({"queries": len(chosen), "output": output}))


def _spread(query_ids: list[str], queries: dict, limit: int) -> set[str]:
    """Round-robin over query types so a small sample still covers each type."""
    if not limit:
        return set(query_ids)
    by_type: dict[str, list[str]] = {}
    for qid in query_ids:
        by_type.setdefault(queries[qid]["query_type"] or "", []).append(qid)
    chosen: list[str] = []
    while len(chosen) < limit and any(by_type.values()):
        for kind in sorted(by_type):
            if by_type[kind] and len(chosen) < limit:
                chosen.append(by_type[kind].pop(0))
    return set(chosen)
