"""Reading pairs files (JSONL, CSV, Parquet) into validated `Pair` records.

Everything is read and checked before anything is written, so bad input leaves the store
untouched. Errors name the file, the line (or Parquet row) and the field. Relative image
paths are resolved against the pairs file's folder.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from raer.nodes.schemas import Product

MAX_REPORTED = 20


class InputError(ValueError):
    """Bad pairs input; `problems` are (file, line, field, message)."""

    def __init__(self, problems: list[tuple[str, int | None, str, str]]):
        self.problems = problems
        lines = [f"{file}:{line}: {field}: {msg}" if line else f"{file}: {field}: {msg}"
                 for file, line, field, msg in problems[:MAX_REPORTED]]
        more = len(problems) - MAX_REPORTED
        super().__init__("\n".join(lines) + (f"\n… and {more} more" if more > 0 else ""))


class Pair(BaseModel):
    """One line of input: a query and one product an engine returned for it."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    query: str = Field(min_length=1)
    language: str = ""
    query_type: str = ""
    engine: str = ""
    rank: int | None = None
    product_id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    brand: str = ""
    colour: str = Field(default="", validation_alias=AliasChoices("colour", "color"))
    category: str = ""
    description: str = ""
    attributes: dict[str, str] = Field(default_factory=dict)
    image: str = ""

    @field_validator("query", "title", "product_id", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("product_id", "engine", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @field_validator("rank", mode="before")
    @classmethod
    def _empty_rank(cls, value: Any) -> Any:
        return None if value in ("", None) else value

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: Any) -> Any:
        return (value or "").strip().lower() if isinstance(value, str | None) else value

    @field_validator("attributes", mode="before")
    @classmethod
    def _attributes(cls, value: Any) -> Any:
        if value in ("", None):
            return {}
        if isinstance(value, str):
            value = json.loads(value)  # a ValueError here becomes a field error
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        return value

    @field_validator("brand", "colour", "category", "description", "image", "query_type",
                     mode="before")
    @classmethod
    def _none_as_empty(cls, value: Any) -> Any:
        return "" if value is None else value

    def product(self) -> Product:
        return Product(product_id=self.product_id, title=self.title, brand=self.brand,
                       colour=self.colour, category=self.category,
                       description=self.description, attributes=self.attributes,
                       image=self.image, engine=self.engine, rank=self.rank)


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


def resolve_image(image: str, folder: Path) -> str:
    if not image or image.startswith(("http://", "https://", "data:")):
        return image
    path = Path(image)
    return str(path if path.is_absolute() else (folder / path).resolve())


def read_pairs(path: str | Path) -> list[Pair]:
    """All pairs of a file, validated; raises InputError listing every bad line."""
    path = Path(path)
    problems: list[tuple[str, int | None, str, str]] = []
    pairs: list[Pair] = []
    seen: dict[tuple[str, str, str, str], int] = {}
    products: dict[str, tuple[int, dict[str, Any]]] = {}
    for number, record in read_records(path):
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
        content = pair.product().model_dump(exclude={"engine", "rank"})
        first = products.setdefault(pair.product_id, (number, content))
        if first[1] != content:
            problems.append((str(path), number, "product_id",
                             f"{pair.product_id!r} has other content than on line {first[0]}; "
                             f"a product id names one product"))
            continue
        pairs.append(pair.model_copy(update={"image": resolve_image(pair.image, path.parent)}))
    if problems:
        raise InputError(problems)
    if not pairs:
        raise InputError([(str(path), None, "(file)", "no pairs in the file")])
    return pairs
