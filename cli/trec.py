"""TREC and friends: export qrels, runs, Quepid ratings and OpenSearch judgment lists; build
pairs to judge from a TREC run file, a queries file and a product catalogue.

Formats: qrels `qid 0 docid grade`; runs `qid Q0 docid rank score tag`; queries `qid<TAB>text`
(or JSONL {"qid", "query"}); Quepid's ratings CSV `query,docid,rating`; the OpenSearch Search
Relevance Workbench's imported judgment list (JSON). Query ids are raer's (`q-…`), or the
ones the imported run used. Bad input stops before anything is written, naming file, line
and field.
"""

from __future__ import annotations

import io
import json
import sys
from collections import defaultdict
from pathlib import Path

import click

from raer.cli.options import EXIT_BAD_INPUT, db_option, resolve_run
from raer.cli.output import OutputRefused, check_output, force_option, write_output
from raer.evals.engines import Gains, effective_labels, qrels_of
from raer.evals.interop import (
    RANK_EVAL_METRICS,
    Rated,
    quepid_book,
    rank_eval,
    ratings_csv,
    srw_judgments,
)
from raer.evals.trec import read_catalogue, read_queries, read_trec_run
from raer.nodes.inputs import InputError, Pair, resolve_image
from raer.retrieve.config import EngineConfigError
from raer.store import open_store

FORMATS = ("qrels", "run", "queries", "quepid", "quepid-book", "opensearch", "srw-csv",
           "rank-eval")
LABEL_FORMATS = ("qrels", "quepid", "quepid-book", "opensearch", "srw-csv", "rank-eval")


def _human_qrels(store, source: str, gains: Gains,
                 split: str = "") -> dict[tuple[str, str], int]:
    from raer.evals.engines import human_qrels

    return human_qrels(store, source, gains, split)


def _rated(items, grades, texts, gains: Gains, from_run: bool,
           reviews: dict | None = None) -> list[Rated]:
    """One row per (query, product): from a run with the judge's reasoning or the
    reviewer's note and name, its unrateable pairs kept as failures; from people, grades."""
    if not from_run:
        return [Rated(q, texts[q], d, g) for (q, d), g in sorted(grades.items())]
    out, seen = [], set()
    for i in sorted(items, key=lambda i: (i.query_id, i.rank, i.product_id)):
        if (i.query_id, i.product_id) in seen:
            continue  # two engines showed it: one label
        seen.add((i.query_id, i.product_id))
        review = (reviews or {}).get(i.judgment_id) if i.source == "reviewer" else None
        rater = (review or {}).get("reviewer") or ""
        why = (review or {}).get("note") or i.reasoning or ""
        out.append(Rated(i.query_id, i.query, i.product_id,
                         gains.of(i.label) if i.label else None, i.rank, why, rater,
                         {"title": i.title}))
    return out


@click.command()
@click.argument("kind", type=click.Choice(FORMATS))
@click.argument("run_id", required=False, default="")
@db_option
@click.option("--engine", default="", help="kind run: the engine whose ranking is written.")
@click.option("--human", "source", default="",
              help="Label formats: labels from this imported human source (majority per "
                   "pair) instead of RUN_ID's labels.")
@click.option("--split", default="", help="With --human: only this split (e.g. test).")
@click.option("--gains", "gains_text", default="2,1,0", show_default=True,
              help="Grades of highly relevant, acceptable substitute, irrelevant.")
@click.option("--index", default="",
              help="rank-eval: the index the ratings' documents are in.")
@click.option("--engine-config", type=click.Path(exists=True, dir_okay=False),
              help="rank-eval: an OpenSearch/Elasticsearch engine config whose query "
                   "template makes each request (default: a multi_match on title, brand, "
                   "description).")
@click.option("--metric", type=click.Choice(RANK_EVAL_METRICS), default="dcg",
              show_default=True, help="rank-eval: the metric (dcg is normalized: nDCG).")
@click.option("--k", default=10, show_default=True, type=click.IntRange(1),
              help="rank-eval: the cut-off.")
@click.option("--relevant-at", type=click.IntRange(1), default=None,
              help="rank-eval precision/MRR: the lowest relevant grade (default: highly "
                   "relevant's).")
@click.option("--judge-email", default="",
              help="quepid-book: the Quepid user the judge's ratings are filed under "
                   "(Quepid needs the user to exist; default: none).")
@click.option("--out", "out_path", default="-",
              help="File to write (default: stdout); never an input or a store.")
@force_option
def export(kind: str, run_id: str, db_path: str, engine: str, source: str, split: str,
           gains_text: str, index: str, engine_config: str | None, metric: str, k: int,
           relevant_at: int | None, judge_email: str, out_path: str, force: bool) -> None:
    """Write KIND for RUN_ID ("latest": the store's most recent judging run): TREC qrels,
    run or queries; Quepid ratings CSV or book JSON; an OpenSearch Search Relevance
    Workbench judgment list (JSON) or its CSV; an Elasticsearch/OpenSearch _rank_eval
    request body."""
    if out_path != "-":
        try:  # before anything is read: a refused --out costs nothing
            check_output(out_path, [db_path], force)
        except OutputRefused as exc:
            click.echo(f"refused: {exc}", err=True)
            sys.exit(EXIT_BAD_INPUT)
    store = open_store(db_path)
    gains = Gains.parse(gains_text)
    if not run_id and not (source and kind in LABEL_FORMATS):
        raise click.UsageError(f"give a RUN_ID (or --human SOURCE for "
                               f"{', '.join(LABEL_FORMATS)})")
    if kind == "rank-eval" and not index:
        raise click.UsageError("rank-eval needs --index (where the rated documents are)")
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
    rated = _rated(items, grades, texts, gains, from_run=not source,
                   reviews=store.resolved_reviews(run_id) if run_id and not source else None)
    name = f"raer {run_id or source}"
    said = f"raer labels of {run_id or f'human:{source}'}, grades {gains_text}"
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
    elif kind in ("quepid", "srw-csv"):
        buffer.write(ratings_csv(rated))
    elif kind == "quepid-book":
        scale = sorted({gains.irrelevant, gains.substitute, gains.highly_relevant})
        json.dump(quepid_book(rated, name, scale, judge_email), buffer, indent=2,
                  ensure_ascii=False)
    elif kind == "rank-eval":
        try:
            requests = _requests(rated, texts, engine_config, k)
        except (EngineConfigError, ValueError) as exc:
            click.echo(f"bad input: {exc}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        json.dump(rank_eval(rated, index, requests, metric, k,
                            relevant_at or gains.highly_relevant, gains.highly_relevant),
                  buffer, indent=2, ensure_ascii=False)
    else:  # opensearch: the Search Relevance Workbench's judgment list
        json.dump(srw_judgments(rated, name, said), buffer, indent=2, ensure_ascii=False)
    write_output(out_path, buffer.getvalue() if grades or items else "", [db_path], force,
                 what=f"labels in {run_id or source}")


def _requests(rated: list[Rated], texts: dict[str, str], engine_config: str | None,
              k: int) -> dict[str, dict]:
    """Each query's search request: the engine config's template filled, or a multi_match."""
    from raer.retrieve.query_set import Query
    from raer.retrieve.template import fill

    template = {"query": {"multi_match": {"query": "{{query}}",
                                          "fields": ["title", "brand", "description"]}}}
    if engine_config:
        from raer.retrieve.config import SearchEngine, load_engine

        engine = load_engine(engine_config).engine
        if not isinstance(engine, SearchEngine):
            raise ValueError(f"{engine_config}: rank-eval needs an opensearch or "
                             f"elasticsearch engine config, not {engine.kind}")
        template = engine.query
    out = {}
    for r in rated:
        if r.query_id not in out:
            body = fill(template, Query(texts[r.query_id]).values(k))
            body.pop("size", None)  # _rank_eval sets the size from the metric's k
            out[r.query_id] = body
    return out


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
