"""Pairs files: JSONL, CSV and Parquet; bad input names the file, line and field."""

import csv

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raer.nodes.inputs import InputError, read_pairs
from tests.conftest import write_jsonl


def test_jsonl_pairs_are_read_and_relative_images_resolved(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [
        {"query": "red dress", "product_id": 7, "title": "Dress", "color": "red",
         "image": "img/a.png", "rank": "3", "attributes": '{"size": "M"}'}])
    [pair] = read_pairs(path)
    assert pair.product_id == "7" and pair.colour == "red" and pair.rank == 3
    assert pair.image == str(tmp_path / "img" / "a.png")
    assert pair.attributes == {"size": "M"}


def test_csv_and_parquet_give_the_same_pairs(tmp_path):
    rows = [{"query": "jeans", "language": "en", "engine": "A", "rank": 1, "product_id": "p1",
             "title": "Black jeans", "brand": "Levi's", "image": "https://x.test/a.png"}]
    with (tmp_path / "p.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "p.parquet")
    assert read_pairs(tmp_path / "p.csv") == read_pairs(tmp_path / "p.parquet")


def test_errors_name_file_line_and_field_for_every_bad_line(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [
        {"query": "jeans", "product_id": "p1", "title": "ok"},
        {"query": "", "product_id": "p2", "title": "empty query"},
        {"query": "jeans", "product_id": "p3"},
        {"query": "jeans", "product_id": "p4", "title": "x", "rank": "first"},
    ])
    with pytest.raises(InputError) as error:
        read_pairs(path)
    message = str(error.value)
    assert f"{path}:2: query:" in message
    assert f"{path}:3: title: Field required" in message
    assert f"{path}:4: rank:" in message


def test_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"query": "a", "product_id": "1", "title": "t"}\n{"query": \n')
    with pytest.raises(InputError, match=r"broken.jsonl:2: \(line\): invalid JSON"):
        read_pairs(path)


def test_duplicate_pairs_are_rejected_naming_the_first(tmp_path):
    row = {"query": "Jeans", "product_id": "p1", "title": "t", "engine": "A"}
    path = write_jsonl(tmp_path / "dup.jsonl", [row, {**row, "query": "jeans "}])
    with pytest.raises(InputError, match=r"dup.jsonl:2: product_id: duplicate of line 1"):
        read_pairs(path)


def test_unknown_format_and_missing_file_are_clear(tmp_path):
    (tmp_path / "p.xlsx").write_text("x")
    with pytest.raises(InputError, match="unsupported format"):
        read_pairs(tmp_path / "p.xlsx")
    with pytest.raises(InputError, match="no such file"):
        read_pairs(tmp_path / "nope.jsonl")


def test_packshot_paths_resolve_as_path_resolve_does(tmp_path):
    """Resolving each line's folder once (for speed) follows the same symlinks as resolving
    every path whole: a linked folder, a linked file, '..' through a link, a missing file."""
    import os
    from pathlib import Path

    from raer.nodes.inputs import resolve_image

    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.png").write_bytes(b"x")
    os.symlink(tmp_path / "real", tmp_path / "img")
    os.symlink(tmp_path / "real" / "a.png", tmp_path / "link.png")
    folders: dict[str, str] = {}
    for image in ("img/a.png", "link.png", "img/../real/a.png", "missing.png", "img/a.png"):
        assert resolve_image(image, tmp_path, folders) == str((tmp_path / image).resolve())
    assert resolve_image("/abs/x.png", tmp_path, folders) == "/abs/x.png"
    assert resolve_image("https://shop.example/x.png", tmp_path, folders).startswith("https")
    assert resolve_image("x.png", Path("/"), {}) == "/x.png"


def test_a_url_of_another_scheme_is_not_read_as_a_file_path(tmp_path):
    """One packshot-source rule (nodes/image_source.py): "ftp://…" was joined to the pairs
    file's folder as a relative path by the reader, while the loader called it a URL."""
    from raer.nodes.image_source import image_kind
    from raer.nodes.inputs import resolve_image

    assert resolve_image("ftp://cdn.example/a.png", tmp_path) == "ftp://cdn.example/a.png"
    assert [image_kind(s) for s in ("", "data:image/png;base64,AA", "HTTPS://x/a.png",
                                    "ftp://x/a.png", "img/a.png")] == [
        "none", "data", "web", "url", "file"]
