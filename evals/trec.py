"""Readers for TREC files: runs, qrels, queries (TSV or JSONL) and product catalogues.

Everything is read and checked before anything is written; problems are reported together,
each with file, line and field (`InputError`).
"""

from __future__ import annotations

from pathlib import Path

from raer.evals.labels import HumanLabel, LabelMapping, _Problems
from raer.nodes.inputs import InputError, Pair, read_records
from raer.nodes.schemas import Product


def read_trec_run(path: Path) -> list[tuple[int, str, str, int, str]]:
    """(line, qid, docid, rank, tag) per line of a TREC run; problems raise InputError."""
    rows, problems = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 6:
            problems.append((str(path), n, "line", f"expected 6 fields "
                             f"(qid Q0 docid rank score tag), found {len(parts)}"))
            continue
        qid, _, docid, rank, score, tag = parts
        try:
            float(score)
        except ValueError:
            problems.append((str(path), n, "score", f"not a number: {score!r}"))
            continue
        if not rank.lstrip("-").isdigit():
            problems.append((str(path), n, "rank", f"not an integer: {rank!r}"))
            continue
        rows.append((n, qid, docid, int(rank), tag))
    if problems:
        raise InputError(problems)
    return rows


def read_queries(path: Path) -> dict[str, str]:
    problems, queries = [], {}
    if path.suffix == ".jsonl":
        for n, record in read_records(path):
            if not isinstance(record, dict) or not record.get("qid") or not record.get("query"):
                problems.append((str(path), n, "qid/query", "both are required"))
            else:
                queries[str(record["qid"])] = str(record["query"])
    else:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                qid, sep, text = line.partition("\t")
                if not sep or not text.strip():
                    problems.append((str(path), n, "query", "expected 'qid<TAB>query text'"))
                else:
                    queries[qid.strip()] = text.strip()
    if problems:
        raise InputError(problems)
    return queries


def read_catalogue(path: Path, unique: bool = False) -> dict[str, Product]:
    """product id → Product of a products file (JSONL, CSV or Parquet); every bad line
    named. `unique`: an id given twice is a problem (else the last line wins)."""
    problems, products = [], {}
    for n, record in read_records(path):
        if not isinstance(record, dict):
            problems.append((str(path), n, "(line)", "expected an object"))
            continue
        try:
            product = Product.model_validate({k: v for k, v in record.items()
                                              if k in Product.model_fields})
        except Exception as exc:  # a pydantic ValidationError: name the fields
            for error in getattr(exc, "errors", lambda: [])():
                problems.append((str(path), n, ".".join(map(str, error["loc"])),
                                 error["msg"]))
            continue
        if unique and product.product_id in products:
            problems.append((str(path), n, "product_id",
                             f"{product.product_id!r} is in the catalogue twice"))
            continue
        products[product.product_id] = product
    if problems:
        raise InputError(problems)
    return products


def read_trec_qrels(path: str | Path, queries_path: str | Path, catalogue_path: str | Path,
                    mapping: LabelMapping) -> list[HumanLabel]:
    """`qid iter docid grade` lines as human labels (annotator "trec"); the queries file
    gives each qid's text and the catalogue each docid's product."""
    path = Path(path)
    queries = read_queries(Path(queries_path))
    products = read_catalogue(Path(catalogue_path))
    labels, problems = [], _Problems()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 4:
            problems.add(str(path), n, "line", f"expected 4 fields (qid iter docid grade), "
                         f"found {len(parts)}")
            continue
        qid, _, docid, grade = parts
        if qid not in queries:
            problems.add(str(path), n, "qid", f"{qid!r} is not in {queries_path}")
            continue
        if docid not in products:
            problems.add(str(path), n, "docid", f"{docid!r} is not in {catalogue_path}")
            continue
        label = problems.map(mapping, grade, str(path), n, "grade")
        pair = Pair(query=queries[qid], **products[docid].model_dump())
        labels.append(HumanLabel(pair, "trec", grade, label))
    problems.raise_any()
    if not labels:
        raise InputError([(str(path), None, "(file)", "no qrels in the file")])
    return labels


def read_tool_ratings(kind: str, path: str | Path, catalogue_path: str | Path | None,
                      mapping: LabelMapping) -> list[HumanLabel]:
    """SRW judgment lists (JSON or CSV), Quepid ratings CSVs and Quepid books as human
    labels (evals/interop.py reads the formats). A rater is the book's user e-mail, else the
    tool's name; a document comes from the catalogue, else (a book) from its
    document_fields."""
    from raer.evals.interop import read_quepid_book, read_ratings

    path = Path(path)
    rows = read_quepid_book(path) if kind == "quepid-book" else read_ratings(path)
    products = read_catalogue(Path(catalogue_path)) if catalogue_path else {}
    labels, problems = [], _Problems()
    for row in rows:
        line = row.line
        where = f"{row.where}.doc_id" if row.where.startswith("query_doc") else (
            f"{row.where}.docId" if row.where else "docid")
        product = products.get(row.doc_id)
        if product is None and row.fields and str(row.fields.get("title") or "").strip():
            fields = {k: v for k, v in row.fields.items() if k in Product.model_fields
                      and isinstance(v, str)}
            product = Product.model_validate({**fields, "product_id": row.doc_id})
        if product is None:
            problems.add(str(path), line, where, f"{row.doc_id!r} is not in "
                         f"{catalogue_path or 'the catalogue (give --catalogue)'}")
            continue
        label = problems.map(mapping, row.rating, str(path), line, "rating")
        pair = Pair(query=row.query, **product.model_dump())
        labels.append(HumanLabel(pair, row.rater or kind.split("-")[0], row.rating, label))
    problems.raise_any()
    if not labels:
        raise InputError([(str(path), None, "(file)", "no ratings in the file")])
    return labels
