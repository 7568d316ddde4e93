"""Human labels in: mappings to raer's three labels and readers for common label sources.

Sources: a CSV/JSONL table with one or several annotator columns (A1, A2, tiebreaker …),
the official ESCI parquet files, WANDS (query.csv, product.csv, label.csv), and the ESCI-US
sample in ../shared/data/esci-us/pairs.jsonl. Every reader returns the judgeable pairs (the
products with their text) and the labels; unknown labels are an error naming file and line.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import operator
import random
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from raer.nodes.inputs import (
    ColumnsError,
    InputError,
    Pair,
    read_records,
    resolve_image,
)
from raer.nodes.inputs import parse_columns as _parse_columns
from raer.store import Store
from raer.store.ids import normalise_query, query_identity
from raer.store.scale import LABELS
from raer.store.store import product_row

ESCI_MAPPING = {"E": "highly relevant", "S": "acceptable substitute", "C": "irrelevant",
                "I": "irrelevant", "Exact": "highly relevant",
                "Substitute": "acceptable substitute", "Complement": "irrelevant",
                "Irrelevant": "irrelevant"}
WANDS_MAPPING = {"Exact": "highly relevant", "Partial": "acceptable substitute",
                 "Irrelevant": "irrelevant"}
RAER_MAPPING = {label: label for label in LABELS}
# TREC grades as trec_eval reads them with raer's default gains (2, 1, 0)
TREC_MAPPING = {"2": "highly relevant", "1": "acceptable substitute", "0": "irrelevant"}
MAPPINGS = {"esci": ESCI_MAPPING, "wands": WANDS_MAPPING, "raer": RAER_MAPPING,
            "trec": TREC_MAPPING}


@dataclass(frozen=True)
class HumanLabel:
    pair: Pair
    annotator: str
    raw_label: str
    label: str
    split: str = ""
    loo_estimate: float | None = None


class MappingError(ValueError):
    """A --mapping that cannot be read; the message names the option."""


_RULE = re.compile(r"^\s*(>=|<=|>|<|==|\*|else)\s*(-?[0-9]*\.?[0-9]+)?\s*:\s*(.+?)\s*$")
_COMPARE = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt,
            "==": operator.eq}


@dataclass(frozen=True)
class LabelMapping:
    """Raw label → raer label: exact strings first, then numeric rules in order.

    Rules such as `>=2.67:highly relevant, >=1.67:acceptable substitute, *:irrelevant` map a
    numeric scale (a mean or median of raters) without listing every raw value.
    """

    exact: dict[str, str] = field(default_factory=dict)
    rules: tuple[tuple[str, float, str], ...] = ()
    name: str = "custom"

    def __call__(self, raw: Any) -> str | None:
        text = str(raw).strip()
        if text in self.exact:
            return self.exact[text]
        if not self.rules:
            return None
        number = _number(text)
        for op, threshold, label in self.rules:
            if op == "*" or (number is not None and _COMPARE[op](number, threshold)):
                return label
        return None

    def describe(self) -> str:
        parts = [f"{k!r}" for k in sorted(self.exact)]
        parts += [f"{'*' if op == '*' else f'{op}{t:g}'}" for op, t, _ in self.rules]
        return ", ".join(parts)

    def __getitem__(self, raw: str) -> str:
        label = self(raw)
        if label is None:
            raise KeyError(raw)
        return label


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_mapping(spec: str, option: str = "--mapping") -> LabelMapping:
    """A mapping by name (esci, wands, raer), a file holding JSON or rules, inline JSON
    {"raw": "raer label"}, or rules like `>=2.67:highly relevant,*:irrelevant`."""
    spec = spec.strip()
    if spec in MAPPINGS:
        return LabelMapping(dict(MAPPINGS[spec]), name=spec)
    origin = "inline"
    if spec and not spec.startswith("{") and Path(spec).is_file():
        origin = f"file {spec}"
        try:
            spec = Path(spec).read_text(encoding="utf-8-sig").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise MappingError(f"{option}: cannot read {origin}: {exc}") from exc
    if spec.startswith("{"):
        try:
            exact = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise MappingError(f"{option}: {origin} is not valid JSON ({exc})") from exc
        if not isinstance(exact, dict):
            raise MappingError(f"{option}: {origin}: expected a JSON object")
        mapping = LabelMapping({str(k).strip(): v for k, v in exact.items()})
    else:
        rules = []
        for part in re.split(r"[,;\n]", spec):
            if not part.strip():
                continue
            match = _RULE.match(part)
            if not match or (match[1] not in ("*", "else") and match[2] is None):
                raise MappingError(
                    f"{option}: {origin}: cannot read {part.strip()!r}; expected a mapping "
                    f"name ({', '.join(MAPPINGS)}), JSON {{\"raw\": \"label\"}}, or rules "
                    f"like '>=2.67:highly relevant, >=1.67:acceptable substitute, *:irrelevant'")
            op = "*" if match[1] in ("*", "else") else match[1]
            rules.append((op, float(match[2] or 0), match[3]))
        if not rules:
            raise MappingError(f"{option}: empty mapping")
        mapping = LabelMapping(rules=tuple(rules))
    targets = set(mapping.exact.values()) | {label for _, _, label in mapping.rules}
    bad = sorted(t for t in targets if t not in LABELS)
    if bad:
        raise MappingError(f"{option}: mapping targets must be one of {list(LABELS)}: {bad}")
    return mapping


class _Problems:
    """Every problem of an import, gathered in one pass and raised together."""

    def __init__(self) -> None:
        self.items: list[tuple[str, int | None, str, str]] = []

    def add(self, file: str, line: int | None, field: str, message: str) -> None:
        self.items.append((file, line, field, message))

    def map(self, mapping: LabelMapping, raw: Any, file: str, line: int, field: str) -> str:
        label = mapping(raw)
        if label is None:
            self.add(file, line, field, f"unknown label {raw!r}; known: {mapping.describe()}")
        return label or ""

    def raise_any(self) -> None:
        if self.items:
            raise InputError(self.items)


def read_esci_sample(path: str | Path, mapping: LabelMapping | None = None,
                     split: str = "") -> list[HumanLabel]:
    """../shared/data/esci-us/pairs.jsonl: ESCI labels with product text, dev/test split."""
    mapping = mapping or parse_mapping("esci")
    labels, problems = [], _Problems()
    for number, row in _objects(Path(path)):
        if split and row.get("split") != split:
            continue
        missing = [k for k in ("query", "product_id", "product_title", "esci_label")
                   if not row.get(k)]
        for key in missing:
            problems.add(str(path), number, key, "field required")
        if missing:
            continue
        pair = Pair(query=row["query"], language="en", query_type=row.get("query_source") or "",
                    product_id=row["product_id"], title=row["product_title"],
                    brand=row.get("product_brand") or "",
                    colour=row.get("product_color") or "",
                    category=" > ".join(row.get("product_category_path") or []),
                    description=_esci_text(row))
        raw = row["esci_label"]
        labels.append(HumanLabel(pair, "esci", raw, problems.map(mapping, raw, str(path), number,
                                                                 "esci_label"),
                                 row.get("split") or ""))
    problems.raise_any()
    return _non_empty(labels, path)


def _esci_text(row: dict[str, Any]) -> str:
    parts = [row.get("product_description") or "", row.get("product_bullet_points") or ""]
    return "\n".join(p for p in parts if p)[:1500]


def read_esci_official(examples: str | Path, products: str | Path, locale: str = "us",
                       mapping: LabelMapping | None = None, split: str = "") -> list[HumanLabel]:
    """The official shopping_queries_dataset_examples.parquet + products parquet."""
    mapping = mapping or parse_mapping("esci")
    catalogue = {(r["product_id"], r["product_locale"]): r
                 for _, r in _objects(Path(products))}
    labels, problems = [], _Problems()
    language = {"us": "en", "es": "es", "jp": "ja"}.get(locale, locale)
    for number, row in _objects(Path(examples)):
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
        labels.append(HumanLabel(pair, "esci", raw, problems.map(
            mapping, raw, str(examples), number, "esci_label"), row.get("split") or ""))
    problems.raise_any()
    return _non_empty(labels, examples)


def read_wands(folder: str | Path, mapping: LabelMapping | None = None) -> list[HumanLabel]:
    """WANDS: query.csv, product.csv, label.csv (tab-separated, as published)."""
    mapping = mapping or parse_mapping("wands")
    folder = Path(folder)
    expected = ("query.csv", "product.csv", "label.csv")
    absent = [name for name in expected if not (folder / name).is_file()]
    if absent:
        raise InputError([(str(folder), None, "(folder)",
                           f"not a WANDS dataset folder: {', '.join(absent)} missing "
                           f"(expected {', '.join(expected)})")])

    def rows(name: str) -> list[tuple[int, dict[str, str]]]:
        with (folder / name).open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t")
            return [(reader.line_num, r) for r in reader]

    queries = {r.get("query_id"): r for _, r in rows("query.csv")}
    products = {r.get("product_id"): r for _, r in rows("product.csv")}
    labels, problems = [], _Problems()
    label_file = str(folder / "label.csv")
    for number, row in rows("label.csv"):
        query, product = queries.get(row.get("query_id")), products.get(row.get("product_id"))
        if query is None or product is None:
            problems.add(label_file, number, "query_id" if query is None else "product_id",
                         "not found in query.csv" if query is None else
                         "not found in product.csv")
            continue
        pair = Pair(query=query["query"], language="en",
                    query_type=query.get("query_class") or "", product_id=row["product_id"],
                    title=product["product_name"], category=product.get("product_class") or "",
                    description=(product.get("product_description") or "")[:1500])
        labels.append(HumanLabel(pair, "wands", row.get("label") or "",
                                 problems.map(mapping, row.get("label") or "", label_file,
                                              number, "label")))
    problems.raise_any()
    return _non_empty(labels, label_file)


def _non_empty(labels: list[HumanLabel], path: str | Path) -> list[HumanLabel]:
    if not labels:
        raise InputError([(str(path), None, "(file)", "no labels in the file")])
    return labels


DUPLICATES = ("error", "first", "mean")


@dataclass
class TableImport:
    """What `read_label_table` read, and what it had to decide on the way (stated to users)."""

    labels: list[HumanLabel]
    ids_from_title: int = 0
    duplicates_dropped: int = 0
    duplicates_averaged: int = 0


def title_product_id(title: str) -> str:
    """A stable product id for sets that have none: the hash of the normalised title."""
    return "title-" + hashlib.sha256(" ".join(title.casefold().split()).encode()).hexdigest()[:12]


def parse_columns(spec: str) -> dict[str, str]:
    """`query=search_term,product_id=pid` → {"search_term": "query", "pid": "product_id"};
    the same reading as `raer judge --columns` (raer.nodes.inputs)."""
    try:
        return _parse_columns(spec)
    except ColumnsError as exc:
        raise MappingError(str(exc)) from exc


def read_label_table(path: str | Path, annotators: list[str],
                     mapping: LabelMapping | None = None, columns: dict[str, str] | None = None,
                     duplicates: str = "error") -> list[HumanLabel]:
    """Pairs with one column per annotator (e.g. A1, A2, tiebreaker); empty cells skipped."""
    return read_label_table_full(path, annotators, mapping, columns, duplicates).labels


def read_label_table_full(path: str | Path, annotators: list[str],
                          mapping: LabelMapping | None = None,
                          columns: dict[str, str] | None = None,
                          duplicates: str = "error", spread: str = "", raters: int = 0,
                          scale: tuple[int, int] | None = None) -> TableImport:
    """Read a label table in one pass, naming every problem (file, line, field) at once.

    `columns` renames the file's columns to raer's fields; a missing product_id is made from
    the title (`title_product_id`); rows for the same (query, product, annotator) — queries
    compared after case-folding and collapsing spaces — are an error, or keep the first, or
    are averaged (numeric raw labels), by `duplicates`. `spread` names a column holding
    each aggregate's standard deviation over `raters` raters on `scale` (low, high): the
    human ceiling is then estimated from it (evals/ceiling.py states the assumption).
    """
    if duplicates not in DUPLICATES:
        raise ValueError(f"--duplicates must be one of {DUPLICATES}")
    mapping = mapping or parse_mapping("raer")
    path = Path(path)
    renames = columns or {}
    records = _objects(path)
    result, problems, file = TableImport([]), _Problems(), str(path)
    if not records:
        raise InputError([(file, None, "(file)", "no labels in the file")])
    header = set().union(*(r.keys() for _, r in records))
    for source in renames:
        if source not in header:
            problems.add(file, None, source, "column named in --columns is not in the file")
    for annotator in annotators:
        if annotator not in header and annotator not in renames.values():
            problems.add(file, None, annotator, "annotator column missing")
    seen: dict[tuple[str, str, str, str], tuple[int, int]] = {}
    raw_values: dict[int, list[float]] = {}
    for number, record in records:
        row = {renames.get(k, k): v for k, v in record.items()}
        if not str(row.get("product_id") or "").strip() and str(row.get("title") or "").strip():
            row["product_id"] = title_product_id(str(row["title"]))
            result.ids_from_title += 1
        try:
            pair = Pair.model_validate(row)
            pair = pair.model_copy(update={"image": resolve_image(pair.image, path.parent)})
        except ValidationError as exc:
            for err in exc.errors():
                problems.add(file, number, ".".join(str(p) for p in err["loc"]) or "(line)",
                             err["msg"])
            continue
        for annotator in annotators:
            raw = row.get(annotator)
            if raw is None or str(raw).strip() == "":
                continue
            ident = (" ".join(pair.query.casefold().split()), pair.language, pair.product_id,
                     annotator)
            if ident in seen:
                first_line, index = seen[ident]
                if duplicates == "error":
                    problems.add(file, number, annotator,
                                 f"duplicate of line {first_line} (same query, product and "
                                 f"annotator); choose --duplicates first or mean")
                elif duplicates == "first":
                    result.duplicates_dropped += 1
                else:
                    value = _number(str(raw).strip())
                    if value is None:
                        problems.add(file, number, annotator,
                                     f"--duplicates mean needs numeric labels, got {raw!r}")
                    else:
                        raw_values.setdefault(index, []).append(value)
                        result.duplicates_averaged += 1
                continue
            label = problems.map(mapping, raw, file, number, annotator)
            estimate = _ceiling(row, spread, raw, raters, scale, mapping, problems, file,
                                number) if spread else None
            seen[ident] = (number, len(result.labels))
            if duplicates == "mean":
                value = _number(str(raw).strip())
                if value is not None:
                    raw_values[len(result.labels)] = [value]
            result.labels.append(HumanLabel(pair, annotator, str(raw).strip(), label,
                                            str(row.get("split") or ""), estimate))
    for index, values in raw_values.items():
        if len(values) > 1:
            mean = sum(values) / len(values)
            item = result.labels[index]
            raw = f"{mean:.4g}"
            label = mapping(raw)
            if label is None:
                problems.add(file, None, item.annotator,
                             f"mean {raw} of duplicate rows for {item.pair.query!r} / "
                             f"{item.pair.product_id} has no label in the mapping; use rules "
                             f"such as '>=2.5:highly relevant'")
            else:
                result.labels[index] = replace(item, raw_label=raw, label=label)
    problems.raise_any()
    _non_empty(result.labels, path)
    return result


def _ceiling(row: dict[str, Any], spread: str, raw: Any, raters: int,
             scale: tuple[int, int] | None, mapping: LabelMapping, problems: _Problems,
             file: str, number: int) -> float | None:
    from raer.evals.ceiling import estimate_leave_one_out

    if not raters or not scale:
        problems.add(file, None, spread, "--spread needs --raters N and --scale LOW,HIGH")
        return None
    aggregate, deviation = _number(str(raw).strip()), _number(str(row.get(spread) or "").strip())
    if aggregate is None or deviation is None:
        problems.add(file, number, spread, f"--spread needs numbers: aggregate {raw!r}, "
                                           f"spread {row.get(spread)!r}")
        return None
    try:
        return estimate_leave_one_out(aggregate, deviation, raters, scale, mapping, seed=number)
    except ValueError as exc:
        problems.add(file, number, spread, str(exc))
        return None


def split_by_query(labels: list[HumanLabel], dev_share: float, seed: int = 0,
                   names: tuple[str, str] = ("dev", "test")) -> list[HumanLabel]:
    """Assign whole queries to dev (`dev_share` of them) and test, reproducibly by seed.

    Queries are identified after normalisation (case, spaces), sorted, then shuffled with
    `random.Random(seed)`, so the same file and seed always give the same split.
    """
    if not 0 < dev_share < 1:
        raise ValueError("--split-by-query takes the dev share, between 0 and 1 (e.g. 0.6)")
    queries = sorted({(normalise_query(x.pair.query), x.pair.language) for x in labels})
    random.Random(seed).shuffle(queries)
    dev = set(queries[:round(dev_share * len(queries))])
    return [replace(x, split=names[0] if (normalise_query(x.pair.query), x.pair.language)
                    in dev else names[1]) for x in labels]


def _objects(path: Path) -> list[tuple[int, dict[str, Any]]]:
    records = read_records(path)
    bad = [(str(path), n, "(line)", "expected an object") for n, r in records
           if not isinstance(r, dict)]
    if bad:
        raise InputError(bad)
    return records


class ProductConflict(ValueError):
    """An import that would change a stored product's text; the message names each field."""


def store_labels(store: Store, labels: list[HumanLabel], source: str,
                 update_products: bool = False) -> int:
    """Write queries, products and labels in one transaction; re-importing replaces labels.
    Queries are named by the store's identity (store/ids.py), as judging names them.

    A product id names one product: text a file gives for a product already stored with
    other text (or two lines giving one id two titles) is refused, naming the fields, and
    nothing is written (`update_products` takes the file's text instead). It was
    overwritten without a word, and every run that judged the old title then showed the
    new one. A field the file leaves empty never erases a stored one."""
    rows, given = [], {}
    problems = []
    for item in labels:
        pair = item.pair
        identity = query_identity(pair.query, pair.language)
        product = {k: v for k, v in product_row(pair.product().model_dump()).items()
                   if v not in ("", "{}") or k == "id"}
        earlier = given.setdefault(pair.product_id, product)
        clash = [k for k, v in product.items() if k in earlier and earlier[k] != v]
        if clash and not update_products:
            problems.append(f"{pair.product_id!r} is given two {', '.join(clash)} in the file")
        rows.append({"query": identity.row(pair.query_type), "product": product,
                     "label": {"query_id": identity.id, "product_id": pair.product_id,
                               "annotator": item.annotator, "label": item.label,
                               "raw_label": item.raw_label, "source": source,
                               "split": item.split, "loo_estimate": item.loo_estimate}})
    if not update_products:
        for pid, fields in store.product_changes(list(given.values())):
            problems.append(f"{pid!r} is stored with other {', '.join(fields)}")
    if problems:
        shown = sorted(set(problems))
        raise ProductConflict("; ".join(shown[:10]) + (f" (and {len(shown) - 10} more)"
                                                      if len(shown) > 10 else "")
                              + ". A product id names one product: give a changed product a "
                                "new id, or --update-products to take this file's text")
    store.put_imported_labels(rows)
    return len(labels)
