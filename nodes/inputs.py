"""Reading pairs files (JSONL, CSV, Parquet) into validated `Pair` records.

Everything is read and checked before anything is written, so bad input leaves the store
untouched. Errors name the file, the line (or Parquet row) and the field. Relative image
paths are resolved against the pairs file's folder.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, ConfigDict, Field, ValidationError, field_validator

from raer.nodes.image_source import image_kind
from raer.nodes.schemas import Product

PRODUCT_FIELDS = frozenset(Product.model_fields)

MAX_REPORTED = 20


class InputError(ValueError):
    """Bad pairs input; `problems` are (file, line, field, message)."""

    def __init__(self, problems: list[tuple[str, int | None, str, str]]):
        self.problems = problems
        lines = [f"{file}:{line}: {field}: {msg}" if line else f"{file}: {field}: {msg}"
                 for file, line, field, msg in problems[:MAX_REPORTED]]
        more = len(problems) - MAX_REPORTED
        super().__init__("\n".join(lines) + (f"\n… and {more} more" if more > 0 else ""))


class Pair(Product):
    """One line of input: a query and one product an engine returned for it (a `Product`
    plus the query's fields; unknown columns are ignored, `color` is read as `colour`)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    query: str = Field(min_length=1)
    language: str = ""
    query_type: str = ""
    colour: str = Field(default="", validation_alias=AliasChoices("colour", "color"))

    @field_validator("query", mode="before")
    @classmethod
    def _strip_query(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: Any) -> Any:
        return (value or "").strip().lower() if isinstance(value, str | None) else value

    @field_validator("query_type", mode="before")
    @classmethod
    def _no_type(cls, value: Any) -> Any:
        return "" if value is None else value

    def product(self) -> Product:
        return Product.model_validate(self.product_fields())

    def product_fields(self) -> dict[str, Any]:
        """The product's fields as a dict: a Pair is a validated Product already, so this
        is `product().model_dump()` without validating it a second time."""
        return self.model_dump(include=PRODUCT_FIELDS)


def check_query_input(state: dict[str, Any]) -> None:
    """The graph's input, checked before any call: a non-empty query and a non-empty list
    of valid products. Errors name the product's position and field (`InputError`)."""
    problems: list[tuple[str, int | None, str, str]] = []
    query = state.get("query")
    if not isinstance(query, str) or not query.strip():
        problems.append(("input", None, "query", "a non-empty query is required"))
    products = state.get("products")
    if not isinstance(products, list) or not products:
        problems.append(("input", None, "products", "a non-empty list of products is required"))
        products = []
    for i, item in enumerate(products):
        try:
            Product.model_validate(item)
        except ValidationError as exc:
            for error in exc.errors():
                where = ".".join(str(p) for p in error["loc"]) or "product"
                problems.append(("input", None, f"products[{i}].{where}", error["msg"]))
    if problems:
        raise InputError(problems)


def read_records(path: Path) -> list[tuple[int, Any]]:
    """(line, record) of a JSONL, CSV, TSV or Parquet file. A byte-order mark (what Excel
    writes) is accepted; a missing file, another encoding or a corrupt file is an InputError
    naming the file, not a traceback. Pairs files and human-label files both read here."""
    if not path.is_file():
        raise InputError([(str(path), None, "(file)", "no such file")])
    try:
        return _read_records(path)
    except UnicodeDecodeError as exc:
        raise InputError([(str(path), None, "(file)", f"not UTF-8 text (byte {exc.start}); "
                                                      f"save it as UTF-8")]) from exc
    except (InputError, OSError):
        raise
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise InputError([(str(path), None, "(file)",
                           f"cannot read {path.suffix.lstrip('.')} file: {exc}")]) from exc


def _read_records(path: Path) -> list[tuple[int, Any]]:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        out = []
        with path.open(encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        out.append((number, json.loads(line)))
                    except json.JSONDecodeError as exc:
                        raise InputError([(str(path), number, "(line)",
                                           f"invalid JSON: {exc.msg}")]) from exc
        return out
    if suffix in (".csv", ".tsv"):
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ",")
            return [(reader.line_num, row) for row in reader]
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return list(enumerate(pq.read_table(path).to_pylist(), start=1))
    raise InputError([(str(path), None, "(file)",
                       "unsupported format: use .jsonl, .csv, .tsv or .parquet")])


def resolve_image(image: str, folder: Path, folders: dict[str, str] | None = None) -> str:
    """A relative packshot path made absolute against the pairs file's folder, symlinks
    resolved (an absolute one is kept as given). `folders`: resolved folders, shared by the
    lines of one file (resolving each of 20,000 paths whole took half of a no-op rerun)."""
    if image_kind(image) != "file":
        return image
    if os.path.isabs(image):
        return image
    joined = os.path.join(folder, image)
    if folders is None or os.path.islink(joined):
        return os.path.realpath(joined)
    head, tail = os.path.split(joined)
    real = folders.get(head)
    if real is None:
        real = folders[head] = os.path.realpath(head)
    return os.path.join(real, tail)


class ColumnsError(ValueError):
    """A --columns option that cannot be read; the message names the option."""


def parse_columns(spec: str, option: str = "--columns") -> dict[str, str]:
    """`query=search_term,product_id=pid` → {"search_term": "query", "pid": "product_id"}."""
    renames: dict[str, str] = {}
    for part in (p for p in spec.split(",") if p.strip()):
        target, _, source = part.partition("=")
        if not target.strip() or not source.strip():
            raise ColumnsError(f"{option}: cannot read {part!r}; expected FIELD=COLUMN, "
                               f"e.g. query=search_term")
        renames[source.strip()] = target.strip()
    return renames


def read_pairs(path: str | Path, columns: dict[str, str] | None = None) -> list[Pair]:
    """All pairs of a file, validated; raises InputError listing every bad line.
    `columns` renames a shop's own columns to raer's fields ({"search_term": "query"})."""
    path = Path(path)
    problems: list[tuple[str, int | None, str, str]] = []
    records = read_records(path)
    if columns:
        unknown = [f"{field}={column}" for column, field in columns.items()
                   if field not in Pair.model_fields]
        if unknown:
            raise InputError([(str(path), None, "--columns", f"{', '.join(unknown)}: not a "
                               f"raer field ({', '.join(Pair.model_fields)})")])
        seen_columns = {k for _, r in records if isinstance(r, dict) for k in r}
        absent = [c for c in columns if c not in seen_columns]
        if absent:
            raise InputError([(str(path), None, "--columns", f"no column {', '.join(absent)} "
                               f"in the file (it has: {', '.join(sorted(seen_columns))})")])
        records = [(n, {columns.get(k, k): v for k, v in r.items()} if isinstance(r, dict)
                    else r) for n, r in records]
    pairs: list[Pair] = []
    seen: dict[tuple[str, str, str, str], int] = {}
    products: dict[str, tuple[int, dict[str, Any]]] = {}
    folders: dict[str, str] = {}
    for number, record in records:
        if not isinstance(record, dict):
            problems.append((str(path), number, "(line)", "expected an object"))
            continue
        try:
            pair = Pair.model_validate(record)
        except ValidationError as exc:
            for err in exc.errors():
                field = ".".join(str(p) for p in err["loc"]) or "(line)"
                problems.append((str(path), number, field, err["msg"]))
            continue
        ident = (" ".join(pair.query.casefold().split()), pair.language, pair.engine,
                 pair.product_id)
        if ident in seen:
            problems.append((str(path), number, "product_id",
                             f"duplicate of line {seen[ident]} (same query, engine, product)"))
            continue
        seen[ident] = number
        content = {k: v for k, v in pair.product_fields().items() if k not in ("engine", "rank")}
        first = products.setdefault(pair.product_id, (number, content))
        if first[1] != content:
            problems.append((str(path), number, "product_id",
                             f"{pair.product_id!r} has other content than on line {first[0]}; "
                             f"a product id names one product"))
            continue
        pairs.append(pair.model_copy(update={"image": resolve_image(pair.image, path.parent,
                                                                     folders)}))
    if problems:
        raise InputError(problems)
    if not pairs:
        raise InputError([(str(path), None, "(file)", "no pairs in the file")])
    return pairs
