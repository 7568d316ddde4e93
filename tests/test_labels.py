"""Human labels in (ESCI sample, annotator tables, WANDS, ESCI parquet) and baselines."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from raer.cli import main
from raer.evals.baselines import fit_lexical, labelled_pairs, overlap
from raer.evals.labels import (
    parse_mapping,
    read_esci_official,
    read_esci_sample,
    read_label_table,
    read_wands,
)
from raer.nodes.inputs import InputError
from raer.store import open_store
from tests.conftest import lines_of, write_jsonl


def test_the_shared_esci_sample_is_read_in_place_with_its_split_and_mapping(esci_us):
    rows = lines_of(esci_us)
    labels = read_esci_sample(esci_us)
    assert len(labels) == len(rows)
    assert {x.split for x in labels} == {"dev", "test"}
    counts = {raw: {x.label for x in labels if x.raw_label == raw} for raw in "ESCI"}
    assert counts == {"E": {"highly relevant"}, "S": {"acceptable substitute"},
                      "C": {"irrelevant"}, "I": {"irrelevant"}}
    assert len(read_esci_sample(esci_us, split="test")) == sum(r["split"] == "test"
                                                               for r in rows)


def test_an_annotator_table_with_a_tiebreaker(tmp_path):
    path = write_jsonl(tmp_path / "labels.jsonl", [
        {"query": "jeans", "product_id": "p1", "title": "Jeans", "A1": "highly relevant",
         "A2": "irrelevant", "tiebreaker": "highly relevant"},
        {"query": "jeans", "product_id": "p2", "title": "Belt", "A1": "irrelevant",
         "A2": "irrelevant", "tiebreaker": ""}])
    labels = read_label_table(path, ["A1", "A2", "tiebreaker"])
    assert [(x.pair.product_id, x.annotator) for x in labels] == [
        ("p1", "A1"), ("p1", "A2"), ("p1", "tiebreaker"), ("p2", "A1"), ("p2", "A2")]


def test_unknown_labels_name_the_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "labels.jsonl", [
        {"query": "jeans", "product_id": "p1", "title": "Jeans", "label": "Exact"},
        {"query": "jeans", "product_id": "p2", "title": "Belt", "label": "Maybe"}])
    with pytest.raises(InputError, match=r"labels.jsonl:2: label: unknown label 'Maybe'"):
        read_label_table(path, ["label"], parse_mapping("esci"))


def test_a_custom_mapping_is_checked():
    assert parse_mapping('{"4": "highly relevant", "0": "irrelevant"}')["4"] == "highly relevant"
    with pytest.raises(ValueError, match="mapping targets"):
        parse_mapping('{"4": "great"}')


def test_wands_files_are_read_with_their_labels(tmp_path):
    (tmp_path / "query.csv").write_text("query_id\tquery\tquery_class\n0\tsalon chair\tChairs\n")
    (tmp_path / "product.csv").write_text(
        "product_id\tproduct_name\tproduct_class\tproduct_description\n"
        "10\tbarber chair\tChairs\tA chair\n11\tdesk lamp\tLamps\tA lamp\n")
    (tmp_path / "label.csv").write_text(
        "id\tquery_id\tproduct_id\tlabel\n0\t0\t10\tExact\n1\t0\t11\tIrrelevant\n")
    labels = read_wands(tmp_path)
    assert [(x.pair.title, x.label) for x in labels] == [
        ("barber chair", "highly relevant"), ("desk lamp", "irrelevant")]


def test_official_esci_parquet_files_are_joined(tmp_path):
    pq.write_table(pa.Table.from_pylist([
        {"query": "usb cable", "product_id": "B1", "product_locale": "us", "esci_label": "S",
         "split": "test"},
        {"query": "usb cable", "product_id": "B2", "product_locale": "jp", "esci_label": "E",
         "split": "test"}]), tmp_path / "examples.parquet")
    pq.write_table(pa.Table.from_pylist([
        {"product_id": "B1", "product_locale": "us", "product_title": "USB-C cable 1m",
         "product_brand": "Anker", "product_color": "black", "product_description": None,
         "product_bullet_point": "fast"}]), tmp_path / "products.parquet")
    [label] = read_esci_official(tmp_path / "examples.parquet", tmp_path / "products.parquet")
    assert (label.pair.title, label.pair.brand, label.label) == (
        "USB-C cable 1m", "Anker", "acceptable substitute")


def test_lexical_thresholds_are_fitted_to_the_majority_labels(store):
    pairs = [{"query": "red dress", "title": t, "majority": m} for t, m in (
        ("red dress", "highly relevant"), ("red summer dress", "highly relevant"),
        ("blue dress", "acceptable substitute"), ("garden hose", "irrelevant"))]
    low, high, accuracy = fit_lexical(pairs)
    assert accuracy == 1.0 and 0 < low <= 0.5 < high <= 1.0
    assert overlap("Red Dress", {"title": "dress", "colour": "RED"}) == 1.0


def test_cli_import_baselines_and_agree_on_the_esci_sample(tmp_path, esci_us):
    db = str(tmp_path / "e.db")
    runner = CliRunner()
    imported = runner.invoke(main, ["labels", "import", "esci-sample", str(esci_us),
                                    "--db", db])
    assert json.loads(imported.stdout)["labels"] == len(lines_of(esci_us))
    runs = [json.loads(runner.invoke(main, ["baseline", kind, "--db", db, "--source",
                                            "esci-sample"]).stdout)["run_id"]
            for kind in ("majority", "lexical")]
    result = runner.invoke(main, ["agree", *runs, "--db", db, "--source", "esci-sample",
                                  "--split", "test", "--resamples", "50", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    majority = data["results"][runs[0]]["overall"]
    assert majority["pairs"] == 2297 and majority["queries"] == 51
    assert majority["agreement"] == pytest.approx(1167 / 2297)  # share of Exact in test
    assert "query type: negations" in data["results"][runs[1]]
    exported = runner.invoke(main, ["labels", "pairs", "--db", db, "--source", "esci-sample",
                                    "--split", "test", "--max-queries", "4", "-o",
                                    str(tmp_path / "t.jsonl")])
    assert json.loads(exported.stdout)["queries"] == 4
    rows = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert len({r["query_type"] for r in rows}) == 4 and all(r["title"] for r in rows)
    assert len(labelled_pairs(open_store(db), "esci-sample", "dev")) == 4381


def test_export_qrels_of_people_takes_a_split(tmp_path):
    """`export qrels --human` wrote every split; a team's test qrels need the test split."""
    path = write_jsonl(tmp_path / "labels.jsonl", [
        {"query": "jeans", "language": "en", "product_id": f"p{i}", "title": f"Jeans {i}",
         "A1": "highly relevant" if i else "irrelevant", "split": "test" if i < 2 else "dev"}
        for i in range(4)])
    db = str(tmp_path / "s.db")
    runner = CliRunner()
    assert runner.invoke(main, ["labels", "import", "table", str(path), "--db", db,
                                "--source", "crowd", "--annotators", "A1"]).exit_code == 0
    out = runner.invoke(main, ["export", "qrels", "--db", db, "--human", "crowd", "--split",
                               "test"])
    assert out.exit_code == 0, out.output
    assert sorted(line.split()[2] for line in out.stdout.splitlines()) == ["p0", "p1"]


def test_a_label_import_never_changes_a_stored_product_unasked(tmp_path):
    """Titles were overwritten without a word: a product judged as "Jeans 0" then showed
    the label file's title in every run. Now refused, naming the field, nothing written;
    `--update-products` takes the file's text; a field the file leaves empty erases
    nothing."""
    db = str(tmp_path / "p.db")
    runner = CliRunner()

    def load(rows, *extra):
        path = write_jsonl(tmp_path / "l.jsonl", rows)
        return runner.invoke(main, ["labels", "import", "table", str(path), "--db", db,
                                    "--source", "crowd", "--annotators", "A1", *extra])

    row = {"query": "jeans", "language": "en", "product_id": "p0", "title": "Jeans 0",
           "brand": "Levi's", "A1": "highly relevant"}
    assert load([row]).exit_code == 0
    refused = load([{**row, "title": "Belt", "A1": "irrelevant"}])
    assert refused.exit_code == 2 and "'p0' is stored with other title" in refused.output
    store = open_store(db)
    assert store.product("p0")["title"] == "Jeans 0"
    assert store.human_label_rows("crowd")[0]["label"] == "highly relevant"  # unchanged
    assert load([{**row, "brand": ""}]).exit_code == 0  # no brand given: none erased
    assert store.product("p0")["brand"] == "Levi's"
    twice = load([row, {**row, "query": "blue jeans", "title": "Other"}])
    assert twice.exit_code == 2 and "'p0' is given two title in the file" in twice.output
    assert load([{**row, "title": "Belt"}], "--update-products").exit_code == 0
    assert store.product("p0")["title"] == "Belt"
