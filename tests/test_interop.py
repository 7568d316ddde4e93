"""Exports checked field for field against the receiving tools' documents, imports of the
same formats, spreadsheet-safe CSVs, and nDCG under each tool's gain convention.

Documents (shapes copied into the assertions below):
- OpenSearch Search Relevance Workbench judgments, docs.opensearch.org/latest/search-plugins/
  search-relevance/judgments/: import body {"name", "description", "type": "IMPORT_JUDGMENT",
  "judgmentRatings": [{"query", "ratings": [{"docId", "rating": "3.000"}]}]}; its own lists
  carry "failures": [{"docId"}] per query for documents that could not be rated.
- SRW dashboards' CSV import and Quepid's ratings CSV: header query,docid,rating.
- Quepid book export/import, github.com/o19s/quepid app/views/api/v1/export/books/
  (_book, _query_doc_pair, _judgements .json.jbuilder) and app/services/book_importer.rb.
- Elasticsearch rank evaluation API, elastic.co/docs/api/doc/elasticsearch/operation/
  operation-rank-eval (the same body in OpenSearch, docs.opensearch.org/latest/api-reference/
  search-apis/rank-eval/): {"requests": [{"id", "request", "ratings": [{"_index", "_id",
  "rating"}]}], "metric": {"dcg": {"k", "normalize"}}}; its DCG gain is 2^rating - 1 over
  log2(rank + 1), normalised by the ideal order of the request's ratings.
- OWASP CSV injection, owasp.org/www-community/attacks/CSV_Injection: cells starting with
  = + - @ tab or carriage return get a leading single quote.
"""

import csv
import io
import json
import math
import sqlite3

from click.testing import CliRunner

from raer.cli import main
from raer.nodes.inputs import Pair
from raer.run import judge_pairs
from raer.store import open_store
from tests import test_engines
from tests.conftest import write_jsonl
from tests.test_engines import answers

judged = test_engines.judged  # the judged run of tests/test_engines.py, as a fixture here

HOSTILE = ["=HYPERLINK(\"http://203.0.113.9/x\",\"click\")", "+1-555", "-2+3", "@SUM(A1)",
           "\tTAB", "\rCR"]


def _export(db, run_id, kind, *extra):
    result = CliRunner().invoke(main, ["export", kind, run_id, "--db", db, *extra])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_srw_judgment_list_has_the_documented_shape_and_its_failures(judged, settings):
    store, run_id = judged
    data = json.loads(_export(settings.db_path, run_id, "opensearch"))
    assert set(data) == {"name", "description", "type", "judgmentRatings"}
    assert data["type"] == "IMPORT_JUDGMENT"
    by_query = {g["query"]: g for g in data["judgmentRatings"]}
    assert set(by_query) == {"black jeans", "red dress", "blue shirt"}
    jeans = by_query["black jeans"]
    assert {r["docId"]: r["rating"] for r in jeans["ratings"]} == {
        "1": "2.000", "2": "0.000", "3": "1.000", "4": "2.000"}
    assert jeans["failures"] == [{"docId": "5"}]  # "cannot judge": not rated, not dropped
    assert "failures" not in by_query["red dress"]
    assert all(set(r) == {"docId", "rating"} for g in by_query.values() for r in g["ratings"])


def test_quepid_and_srw_csv_round_trip_with_hostile_titles(fake_model, settings, tmp_path):
    """A query or title such as =HYPERLINK(...) became a formula when the CSV was opened in a
    spreadsheet; now every such cell starts with ' and the import takes it off again."""
    answers(fake_model)
    hostile = [Pair(query=f"{q} shoes", language="en", engine="A", rank=1,
                    product_id=f"p{i}", title=f"HR-{i} {q}") for i, q in enumerate(HOSTILE)]
    # queries themselves hostile too
    hostile += [Pair(query=q, language="en", engine="A", rank=1, product_id=f"x{i}",
                     title=f"IRR-{i}") for i, q in enumerate(HOSTILE[:4])]
    import asyncio

    asyncio.run(judge_pairs(hostile, settings))
    db, run_id = settings.db_path, settings.run_id
    for kind in ("quepid", "srw-csv"):
        text = _export(db, run_id, kind)
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0] == ["query", "docid", "rating"]
        for row in rows[1:]:
            for cell in row:
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row
        assert ["'=HYPERLINK(\"http://203.0.113.9/x\",\"click\")", "x0", "0"] in rows
    # back in as people's labels: the same queries, ids and labels
    path = tmp_path / "ratings.csv"
    path.write_text(_export(db, run_id, "quepid"))
    catalogue = write_jsonl(tmp_path / "catalogue.jsonl", [
        {"product_id": p.product_id, "title": p.title} for p in hostile])
    result = CliRunner().invoke(main, ["labels", "import", "quepid", str(path), "--db", db,
                                       "--source", "quepid", "--catalogue", str(catalogue)])
    assert result.exit_code == 0, result.output
    again = json.loads(_export(db, "", "opensearch", "--human", "quepid"))
    queries = {g["query"] for g in again["judgmentRatings"]}
    assert set(HOSTILE[:4]) <= queries  # the ' is gone again: nothing lost


def test_quepid_book_carries_who_judged_and_why_and_imports_back(judged, settings, tmp_path):
    store, run_id = judged
    [one] = store.rows("select id from judgments where product_id = '2' and engine = 'A' "
                       "and run_id = ?", [run_id])
    store.resolve_review(one["id"], "acceptable substitute", "ana@shop.example",
                         note="close: same cut")
    book = json.loads(_export(settings.db_path, run_id, "quepid-book", "--judge-email",
                              "judge@shop.example"))
    assert set(book) == {"name", "show_rank", "support_implicit_judgements", "scale",
                         "query_doc_pairs"}
    assert book["scale"] == [0, 1, 2]
    pairs_ = {(p["query_text"], p["doc_id"]): p for p in book["query_doc_pairs"]}
    pair = pairs_[("black jeans", "2")]
    assert set(pair) == {"query_text", "doc_id", "position", "document_fields", "judgements"}
    assert json.loads(pair["document_fields"]) == {"title": "IRR-2"}  # a JSON text column
    [judgement] = pair["judgements"]
    assert set(judgement) == {"rating", "unrateable", "judge_later", "user_email",
                              "explanation"}
    assert judgement["rating"] == 1.0 and judgement["user_email"] == "ana@shop.example"
    assert pairs_[("black jeans", "1")]["judgements"][0]["user_email"] == "judge@shop.example"
    assert pairs_[("black jeans", "1")]["judgements"][0]["explanation"]  # the reasoning
    failed = pairs_[("black jeans", "5")]["judgements"][0]
    assert failed["unrateable"] is True and failed["rating"] is None
    path = tmp_path / "book.json"
    path.write_text(json.dumps(book))
    other = str(tmp_path / "other.db")
    result = CliRunner().invoke(main, ["labels", "import", "quepid-book", str(path), "--db",
                                       other, "--source", "book"])
    assert result.exit_code == 0, result.output
    rows = sqlite3.connect(other).execute(
        "select product_id, annotator, label from human_labels").fetchall()
    assert ("2", "ana@shop.example", "acceptable substitute") in rows
    assert ("1", "judge@shop.example", "highly relevant") in rows
    assert not any(pid == "5" for pid, _, _ in rows)  # unrateable: not a label


def test_rank_eval_body_and_raer_ndcg_equal_the_engines_formula(judged, settings, tmp_path):
    store, run_id = judged
    body = json.loads(_export(settings.db_path, run_id, "rank-eval", "--index", "products",
                              "--k", "3"))
    assert set(body) == {"requests", "metric"}
    assert body["metric"] == {"dcg": {"k": 3, "normalize": True}}
    jeans_id = next(r["id"] for r in body["requests"]
                    if r["request"]["query"]["multi_match"]["query"] == "black jeans")
    request = next(r for r in body["requests"] if r["id"] == jeans_id)
    assert set(request) == {"id", "request", "ratings"}
    assert {"_index": "products", "_id": "1", "rating": 2} in request["ratings"]
    assert all(set(r) == {"_index", "_id", "rating"} for r in request["ratings"])
    # Elasticsearch's normalized DCG of engine A on "black jeans" (HR, IRR, SUB, HR at k=3),
    # computed here from its documented formula, is raer's with --gain exponential and
    # the ideal from every rating
    ratings = {r["_id"]: r["rating"] for r in request["ratings"]}
    ranked = ["1", "2", "3"]

    def dcg(grades):
        return sum((2 ** g - 1) / math.log2(i + 2) for i, g in enumerate(grades))

    expected = dcg([ratings[d] for d in ranked]) / dcg(sorted(ratings.values(),
                                                              reverse=True)[:3])
    result = CliRunner().invoke(main, ["evaluate", run_id, "--db", settings.db_path,
                                       "--engines", "A", "--k", "3", "--gain", "exponential",
                                       "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    per_query = report["engines"]["A"]
    assert "gain 2^g-1" in report["convention"]
    [row] = [r for r in store.evaluations("A")]
    values = json.loads(row["per_query"])["nDCG@3"]
    assert round(values[jeans_id], 10) == round(expected, 10)
    linear = json.loads(CliRunner().invoke(main, ["evaluate", run_id, "--db",
                                                  settings.db_path, "--engines", "A", "--k",
                                                  "3", "--json"]).stdout)
    assert linear["engines"]["A"]["measures"]["nDCG@3"] != per_query["measures"]["nDCG@3"]


def test_relevant_at_counts_substitutes_as_srw_does(judged, settings):
    """SRW counts any rating above 0 as relevant: P@3 of A on black jeans is then 2/3."""
    _, run_id = judged
    strict = json.loads(CliRunner().invoke(main, [
        "evaluate", run_id, "--db", settings.db_path, "--engines", "A", "--k", "3",
        "--json"]).stdout)
    loose = json.loads(CliRunner().invoke(main, [
        "evaluate", run_id, "--db", settings.db_path, "--engines", "A", "--k", "3",
        "--relevant-at", "1", "--json"]).stdout)
    s, lo = strict["engines"]["A"]["measures"], loose["engines"]["A"]["measures"]
    assert lo["P@3"]["mean"] == s["P+sub@3"]["mean"] > s["P@3"]["mean"]
    assert "count grade >= 1 as relevant" in loose["convention"]
    too_high = CliRunner().invoke(main, ["evaluate", run_id, "--db", settings.db_path,
                                         "--relevant-at", "3"])
    assert too_high.exit_code == 2 and "above the highest grade" in too_high.stderr


def test_bad_tool_files_are_named_by_line_and_field_and_write_nothing(tmp_path):
    catalogue = write_jsonl(tmp_path / "catalogue.jsonl", [{"product_id": "d1", "title": "x"}])
    db = tmp_path / "labels.db"
    cases = {
        "ratings.csv": ("quepid", "query,docid,rating\nred dress,d1,2\n,d1,1\nblue,d1,high\n"
                                  "a,b\n",
                        ["ratings.csv:3: query: empty", "ratings.csv:4: rating: 'high'",
                         "ratings.csv:5: (line): expected 3 fields"]),
        "unknown.csv": ("srw", "red dress,d1,2\nblue,d9,1\n",
                        ["unknown.csv:2: docid: 'd9' is not in"]),
        "srw.json": ("srw", json.dumps({"judgmentRatings": [
            {"query": "red dress", "ratings": [{"docId": "d1", "rating": "x"}]},
            {"ratings": []}]}),
            ["judgmentRatings[0].ratings[0].rating: 'x' is not a number",
             "judgmentRatings[1].query: missing"]),
        "book.json": ("quepid-book", json.dumps({"query_doc_pairs": [
            {"query_text": "red", "doc_id": "d1", "judgements": [{"rating": "bad"}]}]}),
            ["query_doc_pairs[0].judgements[0].rating: 'bad' is not a number"]),
        "book2.json": ("quepid-book", json.dumps({"query_doc_pairs": [
            {"query_text": "red", "doc_id": "d1", "document_fields": "{\"title\": \"x\"}",
             "judgements": [{"rating": 2}]},
            {"query_text": "red", "doc_id": "d7", "judgements": [{"rating": 2}]}]}),
            ["query_doc_pairs[1].doc_id: 'd7' is not in"]),
    }
    for name, (kind, text, messages) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        args = ["labels", "import", kind, str(path), "--db", str(db), "--source", kind]
        if kind != "quepid-book":
            args += ["--catalogue", str(catalogue)]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        for message in messages:
            assert message in result.stderr, (message, result.stderr)
    assert not db.exists() or not sqlite3.connect(db).execute(
        "select count(*) from human_labels").fetchone()[0]


def test_srw_json_imports_as_people_labels(tmp_path):
    catalogue = write_jsonl(tmp_path / "c.jsonl", [
        {"product_id": d, "title": f"dress {d}"} for d in ("B077ZJXCTS", "B071S6LTJJ")])
    path = tmp_path / "srw.json"
    path.write_text(json.dumps({  # the documented example, cut short
        "name": "Imported Judgments", "description": "Judgments generated outside SRW",
        "type": "IMPORT_JUDGMENT", "judgmentRatings": [{"query": "red dress", "ratings": [
            {"docId": "B077ZJXCTS", "rating": "3.000"},
            {"docId": "B071S6LTJJ", "rating": "1.000"}]}]}))
    db = str(tmp_path / "s.db")
    result = CliRunner().invoke(main, ["labels", "import", "srw", str(path), "--db", db,
                                       "--catalogue", str(catalogue)])
    assert result.exit_code == 0, result.output
    rows = open_store(db).rows("select product_id, label, raw_label from human_labels "
                               "order by product_id")
    assert [(r["product_id"], r["label"], r["raw_label"]) for r in rows] == [
        ("B071S6LTJJ", "acceptable substitute", "1.000"),
        ("B077ZJXCTS", "highly relevant", "3.000")]
