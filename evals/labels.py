"""Human labels in: mappings to raer's three labels and readers for common label sources.

Sources: a CSV/JSONL table with one or several annotator columns (A1, A2, tiebreaker …),
the official ESCI parquet files, WANDS (query.csv, product.csv, label.csv), and the ESCI-US
sample in ../shared/data/esci-us/pairs.jsonl. Every reader returns the judgeable pairs (the
products with their text) and the labels; unknown labels are an error naming file and line.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raer.nodes.common import normalise_query, query_id
from raer.nodes.inputs import InputError, Pair, read_pairs
from raer.nodes.schemas import LABELS
from raer.store import Store
from raer.store.store import now

ESCI_MAPPING = {"E": "highly relevant", "S": "acceptable substitute", "C": "irrelevant",
                "I": "irrelevant", "Exact": "highly relevant",
                "Substitute": "acceptable substitute", "Complement": "irrelevant",
                "Irrelevant": "irrelevant"}
WANDS_MAPPING = {"Exact": "highly relevant", "Partial": "acceptable substitute",
                 "Irrelevant": "irrelevant"}
RAER_MAPPING = {label: label for label in LABELS}
MAPPINGS = {"esci": ESCI_MAPPING, "wands": WANDS_MAPPING, "raer": RAER_MAPPING}


@dataclass(frozen=True)
class HumanLabel:
    pair: Pair
    annotator: str
    raw_label: str
    label: str
    split: str = ""


def parse_mapping(spec: str) -> dict[str, str]:
    """A mapping by name (esci, wands, raer) or as JSON {"raw": "raer label"}."""
    mapping = MAPPINGS.get(spec) if spec in MAPPINGS else json.loads(spec)
    bad = {raw: label for raw, label in mapping.items() if label not in LABELS}
    if bad:
        raise ValueError(f"mapping targets must be one of {list(LABELS)}: {bad}")
    return mapping


def _map(mapping: dict[str, str], raw: Any, file: str, line: int, field: str) -> str:
    label = mapping.get(str(raw).strip())
    if label is None:
        raise InputError([(file, line, field, f"unknown label {raw!r}; known: "
                           f"{sorted(mapping)}")])
    return label


def read_esci_sample(path: str | Path, mapping: dict[str, str] = ESCI_MAPPING,
                     split: str = "") -> list[HumanLabel]:
    """../shared/data/esci-us/pairs.jsonl: ESCI labels with product text, dev/test split."""
    labels = []
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            row = json.loads(line)
            if split and row["split"] != split:
                continue
            pair = Pair(query=row["query"], language="en", query_type=row["query_source"],
                        product_id=row["product_id"], title=row["product_title"],
                        brand=row.get("product_brand") or "",
                        colour=row.get("product_color") or "",
                        category=" > ".join(row.get("product_category_path") or []),
                        description=_esci_text(row))
            raw = row["esci_label"]
            labels.append(HumanLabel(pair, "esci", raw, _map(mapping, raw, str(path), number,
                                                             "esci_label"), row["split"]))
    return labels


def _esci_text(row: dict[str, Any]) -> str:
    parts = [row.get("product_description") or "", row.get("product_bullet_points") or ""]
    return "\n".join(p for p in parts if p)[:1500]


def read_esci_official(examples: str | Path, products: str | Path, locale: str = "us",
                       mapping: dict[str, str] = ESCI_MAPPING, split: str = "") -> list[HumanLabel]:
    """The official shopping_queries_dataset_examples.parquet + products parquet."""
    import pyarrow.parquet as pq

    catalogue = {(r["product_id"], r["product_locale"]): r
                 for r in pq.read_table(products).to_pylist()}
    labels = []
    language = {"us": "en", "es": "es", "jp": "ja"}.get(locale, locale)
    for number, row in enumerate(pq.read_table(examples).to_pylist(), start=1):
        if row.get("product_locale") != locale or (split and row.get("split") != split):
            continue
        product = catalogue.get((row["product_id"], locale), {})
        pair = Pair(query=row["query"], language=language, product_id=row["product_id"],
                    title=product.get("product_title") or row["product_id"],
                    brand=product.get("product_brand") or "",
                    colour=product.get("product_color") or "",
                    description=((product.get("product_description") or "") + "\n" +
                                 (product.get("product_bullet_point") or "")).strip()[:1500])
        raw = row["esci_label"]
        labels.append(HumanLabel(pair, "esci", raw, _map(mapping, raw, str(examples), number,
                                                         "esci_label"), row.get("split", "")))
    return labels


def read_wands(folder: str | Path, mapping: dict[str, str] = WANDS_MAPPING) -> list[HumanLabel]:
    """WANDS: query.csv, product.csv, label.csv (tab-separated, as published)."""
    folder = Path(folder)

    def rows(name: str) -> list[tuple[int, dict[str, str]]]:
        with (folder / name).open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t")
            return [(reader.line_num, r) for r in reader]

    queries = {r["query_id"]: r for _, r in rows("query.csv")}
    products = {r["product_id"]: r for _, r in rows("product.csv")}
    labels = []
    for number, row in rows("label.csv"):
        query, product = queries[row["query_id"]], products[row["product_id"]]
        pair = Pair(query=query["query"], language="en",
                    query_type=query.get("query_class", ""), product_id=row["product_id"],
                    title=product["product_name"], category=product.get("product_class", ""),
                    description=(product.get("product_description") or "")[:1500])
        labels.append(HumanLabel(pair, "wands", row["label"],
                                 _map(mapping, row["label"], str(folder / "label.csv"),
                                      number, "label")))
    return labels


def read_label_table(path: str | Path, annotators: list[str],
                     mapping: dict[str, str] = RAER_MAPPING) -> list[HumanLabel]:
    """Pairs with one column per annotator (e.g. A1, A2, tiebreaker); empty cells skipped."""
    pairs = read_pairs(path)
    records = _raw_records(Path(path))
    if len(records) != len(pairs):
        raise InputError([(str(path), None, "(file)", "blank lines confuse the line count")])
    labels = []
    for pair, (number, record) in zip(pairs, records, strict=True):
        missing = [a for a in annotators if a not in record]
        if missing:
            raise InputError([(str(path), number, missing[0], "annotator column missing")])
        for annotator in annotators:
            raw = record.get(annotator)
            if raw in (None, ""):
                continue
            labels.append(HumanLabel(pair, annotator, str(raw),
                                     _map(mapping, raw, str(path), number, annotator),
                                     str(record.get("split") or "")))
    return labels


def _raw_records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return list(enumerate(pq.read_table(path).to_pylist(), start=1))
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            return [(reader.line_num, r) for r in reader]
    with path.open(encoding="utf-8") as handle:
        return [(n, json.loads(line)) for n, line in enumerate(handle, start=1) if line.strip()]


def store_labels(store: Store, labels: list[HumanLabel], source: str) -> int:
    """Write queries, products and labels in one transaction; re-importing replaces labels."""
    with store.lock, store.db.atomic():
        for item in labels:
            pair = item.pair
            normalised = normalise_query(pair.query)
            qid = query_id(normalised, pair.language or "en")
            store.db["queries"].upsert({"id": qid, "text": pair.query, "normalised": normalised,
                                        "language": pair.language or "en",
                                        "query_type": pair.query_type}, pk="id")
            product = pair.product().model_dump()
            store.db["products"].upsert({
                "id": pair.product_id, **{k: product[k] for k in (
                    "title", "brand", "colour", "category", "description", "image")},
                "attributes": json.dumps(product["attributes"])}, pk="id")
            store.db.execute(
                """insert into human_labels (query_id, product_id, annotator, label, raw_label,
                                             source, split, created_at)
                   values (?, ?, ?, ?, ?, ?, ?, ?)
                   on conflict (query_id, product_id, annotator, source) do update set
                   label = excluded.label, raw_label = excluded.raw_label,
                   split = excluded.split""",
                [qid, pair.product_id, item.annotator, item.label, item.raw_label, source,
                 item.split, now()])
    return len(labels)
