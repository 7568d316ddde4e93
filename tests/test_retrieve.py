"""`raer retrieve` against loopback servers that answer as OpenSearch, Elasticsearch, Solr
and a generic JSON API document it (tests/engine_servers.py cites the documents), and
against the local BM25 engine. Each request's shape is checked; bad configs, engine errors,
timeouts and empty results end with a clear message and nothing written."""

import base64
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from raer.cli import main
from tests.engine_servers import Server, engine_error, search_response, solr_response

CATALOGUE = {
    "black jeans": [{"id": "p1", "title": "Levi's 501 black jeans", "brand": "Levi's"},
                    {"id": "p2", "title": "Wrangler black jeans", "brand": "Wrangler"}],
    "red dress": [{"id": "p3", "title": "Red summer dress", "brand": "Lena"}],
}


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _queries(tmp_path: Path) -> str:
    return _write(tmp_path / "queries.txt", "black jeans\nred dress\nBlack  Jeans\n")


def _retrieve(tmp_path, *engines, extra=(), out="pairs.jsonl"):
    return CliRunner().invoke(main, ["retrieve", _queries(tmp_path), *sum(
        (["--engine", e] for e in engines), []), "--db", str(tmp_path / "r.db"), "--out",
        str(tmp_path / out), "--json", *extra])


def _os_route(seen):
    """_search and _msearch as documented; anything else a 404 as the engines answer it."""
    if seen.path == "/products/_search" and seen.method == "POST":
        body = json.loads(seen.body)
        query = body["query"]["multi_match"]["query"]
        return 200, search_response("products", CATALOGUE.get(query.casefold(), [])[
            :body["size"]])
    if seen.path == "/_msearch" and seen.method == "POST":
        lines = seen.body.decode().split("\n")
        assert seen.body.endswith(b"\n") and lines[-1] == ""  # each line ends in a newline
        lines = lines[:-1]
        responses = []
        for header, body in zip(lines[::2], lines[1::2], strict=True):
            assert json.loads(header) == {"index": "products"}
            body = json.loads(body)
            query = body["query"]["multi_match"]["query"]
            responses.append({**search_response("products", CATALOGUE.get(
                query.casefold(), [])[:body["size"]]), "status": 200})
        return 200, {"took": 4, "responses": responses}
    return engine_error(404, "index_not_found_exception", f"no such index [{seen.path}]")


def _os_config(tmp_path, url, **extra) -> str:
    lines = [f"kind: {extra.pop('kind', 'opensearch')}", "name: prod", f"url: {url}",
             "index: products", "k: 5"] + [f"{k}: {v}" for k, v in extra.items()]
    return _write(tmp_path / "prod.yaml", "\n".join(lines) + "\n")


@pytest.mark.parametrize("kind", ["opensearch", "elasticsearch"])
@pytest.mark.parametrize("msearch", [0, 20])
def test_opensearch_and_elasticsearch_search_and_msearch(tmp_path, kind, msearch):
    with Server(_os_route) as engine:
        result = _retrieve(tmp_path, _os_config(tmp_path, engine.url, kind=kind,
                                                msearch=msearch))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # "Black  Jeans" is the same query as "black jeans": asked once
    assert report["queries"] == 2 and report["pairs"] == 3
    if msearch:
        assert [s.path for s in engine.seen] == ["/_msearch"]
        assert engine.seen[0].headers["content-type"] == "application/x-ndjson"
    else:
        assert sorted(s.path for s in engine.seen) == ["/products/_search"] * 2
        assert all(s.headers["content-type"] == "application/json" for s in engine.seen)
        assert all(json.loads(s.body)["size"] == 5 for s in engine.seen)
    pairs = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    assert [(p["query"], p["engine"], p["rank"], p["product_id"], p["title"]) for p in pairs
            ] == [("black jeans", "prod", 1, "p1", "Levi's 501 black jeans"),
                  ("black jeans", "prod", 2, "p2", "Wrangler black jeans"),
                  ("red dress", "prod", 1, "p3", "Red summer dress")]
    assert pairs[0]["brand"] == "Levi's"
    judged = CliRunner().invoke(main, ["judge", str(tmp_path / "pairs.jsonl"), "--db",
                                       str(tmp_path / "x.db"), "--validate"])
    assert judged.exit_code == 0, judged.output  # what raer judge reads


def test_a_query_stays_a_json_string_whatever_it_contains(tmp_path):
    """The template is filled on the parsed body: a query cannot change the request."""
    hostile = 'x"}}, "script": {"source": "boom'
    queries = _write(tmp_path / "q.txt", hostile + "\nblack jeans\n")
    with Server(_os_route) as engine:
        result = CliRunner().invoke(main, [
            "retrieve", queries, "--engine", _os_config(tmp_path, engine.url, msearch=0),
            "--db", str(tmp_path / "r.db"), "--out", str(tmp_path / "p.jsonl")])
    assert result.exit_code == 0, result.output
    bodies = [json.loads(s.body) for s in engine.seen]
    assert {b["query"]["multi_match"]["query"] for b in bodies} == {hostile, "black jeans"}
    assert all(set(b) == {"query", "size"} for b in bodies)


def test_basic_auth_from_the_environment_is_sent_and_never_stored(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOP_USER", "raer")
    monkeypatch.setenv("SHOP_SECRET", "s3cr3t-value-xyz")
    expected = "Basic " + base64.b64encode(b"raer:s3cr3t-value-xyz").decode()

    def route(seen):
        if seen.headers.get("authorization") != expected:
            return engine_error(401, "security_exception", "missing authentication")
        return _os_route(seen)

    config = _write(tmp_path / "prod.yaml", "kind: opensearch\nname: prod\nurl: URL\n"
                    "index: products\nauth:\n  type: basic\n  username_env: SHOP_USER\n"
                    "  password_env: SHOP_SECRET\n")
    with Server(route) as engine:
        Path(config).write_text(Path(config).read_text().replace("URL", engine.url))
        result = _retrieve(tmp_path, config)
        assert result.exit_code == 0, result.output
        monkeypatch.delenv("SHOP_SECRET")
        missing = _retrieve(tmp_path, config, out="again.jsonl")
    assert missing.exit_code == 2 and "SHOP_SECRET, which is not set" in missing.stderr
    dump = "\n".join(sqlite3.connect(tmp_path / "r.db").iterdump())
    assert "s3cr3t" not in dump + (tmp_path / "pairs.jsonl").read_text()
    assert "SHOP_SECRET" in dump  # the variable's name is the config; its value never is
    assert "s3cr3t" not in result.output + missing.output


def test_solr_select_with_params_and_multivalued_fields(tmp_path):
    def route(seen):
        assert seen.path == "/solr/products/select" and seen.method == "GET"
        params = {k: v[0] for k, v in seen.params.items()}
        assert params["wt"] == "json" and params["defType"] == "edismax"
        assert params["qf"] == "title^2 brand" and params["rows"] == "5"
        docs = [{"id": d["id"], "title": [d["title"]], "brand": [d["brand"]], "_version_": 1}
                for d in CATALOGUE.get(params["q"], [])]
        return 200, solr_response(docs, params)

    with Server(route) as solr:
        config = _write(tmp_path / "solr.toml", f'kind = "solr"\nname = "solr"\n'
                        f'url = "{solr.url}/solr"\ncollection = "products"\nk = 5\n'
                        f'[params]\nq = "{{{{query}}}}"\ndefType = "edismax"\n'
                        f'qf = "title^2 brand"\n')
        result = _retrieve(tmp_path, config)
    assert result.exit_code == 0, result.output
    pairs = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    assert [(p["product_id"], p["title"], p["brand"]) for p in pairs][0] == (
        "p1", "Levi's 501 black jeans", "Levi's")


def test_a_generic_json_endpoint_like_algolia(tmp_path, monkeypatch):
    monkeypatch.setenv("ALGOLIA_KEY", "algolia-secret")

    def route(seen):
        assert seen.path == "/1/indexes/products/query" and seen.method == "POST"
        assert seen.headers["x-algolia-api-key"] == "algolia-secret"
        assert seen.headers["x-algolia-application-id"] == "APP1"
        body = json.loads(seen.body)
        hits = [{"objectID": d["id"], "name": d["title"], "meta": {"brand": d["brand"]}}
                for d in CATALOGUE.get(body["query"], [])][:body["hitsPerPage"]]
        return 200, {"hits": hits, "nbHits": len(hits), "page": 0}

    with Server(route) as api:
        config = _write(tmp_path / "algolia.yaml", f"""kind: http
name: algolia
url: {api.url}/1/indexes/products/query
method: POST
body: {{query: "{{{{query}}}}", hitsPerPage: "{{{{k}}}}"}}
headers: {{X-Algolia-Application-Id: APP1}}
auth: {{type: header, header: X-Algolia-API-Key, token_env: ALGOLIA_KEY}}
hits: hits
fields: {{product_id: objectID, title: name, brand: meta.brand}}
k: 1
""")
        result = _retrieve(tmp_path, config)
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(s.body)["query"] for s in api.seen) == ["black jeans", "red dress"]
    assert all(json.loads(s.body)["hitsPerPage"] == 1 for s in api.seen)  # a number, not "1"
    pairs = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    assert [(p["product_id"], p["brand"]) for p in pairs] == [("p1", "Levi's"), ("p3", "Lena")]


def _nothing_written(tmp_path) -> bool:
    db = tmp_path / "r.db"
    none = not db.exists() or sqlite3.connect(db).execute(
        "select count(*) from snapshots").fetchone()[0] == 0
    return none and not (tmp_path / "pairs.jsonl").exists()


def test_engine_errors_retries_and_timeouts(tmp_path):
    calls = {"n": 0}

    def flaky(seen):
        calls["n"] += 1
        if calls["n"] <= 2:
            return engine_error(503, "unavailable", "node restarting")
        return _os_route(seen)

    with Server(flaky) as engine:
        config = _os_config(tmp_path, engine.url, msearch=0, limits="{retries: 2}")
        result = _retrieve(tmp_path, _write(tmp_path / "q.yaml", Path(config).read_text()))
    assert result.exit_code == 0, result.output  # two 503s retried

    with Server(lambda s: engine_error(400, "parsing_exception", "unknown query [mach]")
                ) as engine:
        result = _retrieve(tmp_path, _os_config(tmp_path, engine.url, msearch=0),
                           out="bad.jsonl")
    assert result.exit_code == 4 and "HTTP 400: unknown query [mach]" in result.stderr
    assert len(engine.seen) == 2  # a 400 is not retried: one request per query

    slow = Server(_os_route, delay_s=1.5)
    with slow as engine:
        config = _os_config(tmp_path, engine.url, msearch=0,
                            limits="{timeout_s: 0.3, retries: 1}")
        result = _retrieve(tmp_path, config, out="slow.jsonl")
    assert result.exit_code == 4 and "timed out after 0.3 s (2 tries)" in result.stderr
    assert "nothing written" in result.stderr


def test_msearch_item_failure_redirect_empty_and_missing_fields(tmp_path):
    def one_fails(seen):
        return 200, {"took": 1, "responses": [
            {**search_response("products", CATALOGUE["black jeans"]), "status": 200},
            {"error": {"root_cause": [{"type": "query_shard_exception",
                                       "reason": "failed to create query"}],
                       "type": "search_phase_execution_exception",
                       "reason": "all shards failed"}, "status": 400}]}

    cases = [
        (one_fails, "query 'red dress': the search failed in _msearch (status 400): all "
                    "shards failed"),
        (lambda s: (301, b""), "redirect to http://203.0.113.9/elsewhere: not followed"),
        (lambda s: (200, search_response("products", [])), "returned no result for any"),
        (lambda s: (200, search_response("products", [{"id": "p9", "name": "x"}])),
         "hit 1 has no title at '_source.title'"),
        (lambda s: (200, b"<html>proxy</html>"), "the answer is not JSON"),
    ]
    for number, (route, message) in enumerate(cases):
        with Server(route) as engine:
            result = _retrieve(tmp_path, _os_config(tmp_path, engine.url,
                                                    msearch=20 if number == 0 else 0))
        assert result.exit_code == 4, (message, result.output)
        assert message in result.stderr, result.stderr
        assert _nothing_written(tmp_path)


@pytest.mark.parametrize("text, message", [
    ("kind: opensearch\nname: prod\nindex: products\n", "prod.yaml: url: Field required"),
    ("kind: opensearch\nname: prod\nurl: http://u:pw@127.0.0.1:9\nindex: p\n",
     "url: the URL carries a user or password"),
    ("kind: opensearch\nname: prod\nurl: http://127.0.0.1:9\nindex: p\nquery: {q: '{{qry}}'}\n",
     "query: unknown placeholder {{qry}}"),
    ("kind: opensearch\nname: prod\nurl: http://127.0.0.1:9\nindex: p\n"
     "headers: {Authorization: Basic abc}\n", "headers: Authorization: credentials go in auth"),
    ("kind: vespa\nname: prod\n", "kind: kind must be one of"),
    ("kind: opensearch\nname: prod\nurl: http://127.0.0.1:9\nindex: p\nkk: 3\n",
     "kk: Extra inputs are not permitted"),
    ("kind: [oops\n", "prod.yaml: not valid yaml"),
    ("kind: solr\nname: s\nurl: https://127.0.0.1:9/solr\ncollection: c\n"
     "limits: {ca_file: nowhere.pem}\n", "limits.ca_file: no such file"),
])
def test_bad_configs_are_named_by_file_and_field(tmp_path, text, message):
    result = _retrieve(tmp_path, _write(tmp_path / "prod.yaml", text))
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert "pw" not in result.stderr.replace("password", "")
    assert _nothing_written(tmp_path)


def _catalogue(tmp_path, titles: dict[str, str]) -> str:
    rows = [{"product_id": pid, "title": title, "description": f"about {title}"}
            for pid, title in titles.items()]
    return _write(tmp_path / "catalogue.jsonl", "".join(json.dumps(r) + "\n" for r in rows))


def test_the_local_bm25_engine_ranks_a_catalogue_as_bm25s_does(tmp_path):
    import bm25s

    titles = {"a": "black jeans slim", "b": "blue jeans", "c": "red dress", "d": "black dress",
              "e": "black black jeans"}
    _catalogue(tmp_path, titles)
    config = _write(tmp_path / "bm25.yaml", "kind: bm25\nname: lexical\ncatalogue: "
                    "catalogue.jsonl\nfields: [title]\nk: 3\n")
    result = _retrieve(tmp_path, config)
    assert result.exit_code == 0, result.output
    pairs = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(list(titles.values()), stopwords="en", show_progress=False),
                    show_progress=False)
    for query in ("black jeans", "red dress"):
        scores = retriever.get_scores(bm25s.tokenize([query], stopwords="en", return_ids=False,
                                                     show_progress=False)[0])
        ranked = sorted(zip(titles, scores, strict=True), key=lambda t: (-t[1], t[0]))
        expected = [pid for pid, score in ranked if score > 0][:3]
        assert [p["product_id"] for p in pairs if p["query"] == query] == expected


def test_snapshots_are_kept_and_changed_products_refused_unless_asked(tmp_path):
    _catalogue(tmp_path, {"a": "black jeans", "b": "blue jeans"})
    config = _write(tmp_path / "bm25.yaml", "kind: bm25\nname: lexical\ncatalogue: "
                    "catalogue.jsonl\nfields: [title]\n")
    assert _retrieve(tmp_path, config).exit_code == 0
    assert _retrieve(tmp_path, config, out="2.jsonl").exit_code == 0
    db = sqlite3.connect(tmp_path / "r.db")
    hashes = [r[0] for r in db.execute("select config_hash from snapshots")]
    assert len(hashes) == 2 and len(set(hashes)) == 1  # one config, two snapshots
    _catalogue(tmp_path, {"a": "black jeans NEW", "b": "blue jeans"})
    refused = _retrieve(tmp_path, config, out="3.jsonl")
    assert refused.exit_code == 2 and "'a' is stored with other title" in refused.stderr
    assert not (tmp_path / "3.jsonl").exists()
    assert db.execute("select count(*) from snapshots").fetchone()[0] == 2
    updated = _retrieve(tmp_path, config, extra=["--update-products"], out="3.jsonl")
    assert updated.exit_code == 0, updated.output
    assert db.execute("select title from products where id = 'a'").fetchone()[0] == (
        "black jeans NEW")
    # another catalogue file is another config: its hash changed
    assert len({r[0] for r in db.execute("select config_hash from snapshots")}) == 2


def test_the_configs_the_readme_and_docs_show_load(tmp_path):
    """Every engine and experiment config shown in README.md and docs/retrieve.md is
    accepted as written (a config copied from the docs must work)."""
    import re

    import yaml

    from raer.retrieve.config import load_engine
    from raer.retrieve.experiment import Experiment
    from tests.conftest import REPO

    (tmp_path / "sub").mkdir()
    _catalogue(tmp_path, {"a": "black jeans"})
    loaded = 0
    for doc in ("README.md", "docs/retrieve.md"):
        text = (REPO / doc).read_text()
        for lang, block in re.findall(r"```(yaml|toml)\n(.*?)```", text, re.S):
            if "kind" in block:
                path = tmp_path / "sub" / f"engine{loaded}.{lang}"
                path.write_text(block)
                assert load_engine(path).engine.name
                loaded += 1
            elif block.startswith("name:") and "engines:" in block:
                Experiment.model_validate(yaml.safe_load(block))
                loaded += 1
    assert loaded >= 7  # the README's http example now lives in docs/retrieve.md only


def test_a_search_log_sample_covers_every_query_type_and_is_reproducible(tmp_path):
    """Stratified by query type, in proportion with at least one per type (the paper samples
    so that query types are covered); a uniform draw of 5 from this log is mostly head."""
    from raer.retrieve.query_set import read_queries, sample

    rows = ([{"query": f"head {i}", "query_type": "head"} for i in range(14)]
            + [{"query": f"torso {i}", "query_type": "torso"} for i in range(4)]
            + [{"query": f"tail {i}", "query_type": "tail"} for i in range(2)]
            + [{"query": "HEAD  0", "query_type": "head", "weight": 3}])  # the same query
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    queries = read_queries(path)
    assert len(queries) == 20 and queries[0].weight == 4
    drawn = sample(queries, 5, seed=7)
    types = [q.query_type for q in drawn]
    assert (types.count("head"), types.count("torso"), types.count("tail")) == (3, 1, 1)
    assert sample(queries, 5, seed=7) == drawn and sample(queries, 5, seed=8) != drawn
    bad = tmp_path / "bad.csv"
    bad.write_text("query,weight\nred dress,2\n,1\nblue jeans,-1\n")
    with pytest.raises(Exception) as error:
        read_queries(bad)
    assert "bad.csv:3: query" in str(error.value) and "bad.csv:4: weight" in str(error.value)


def test_tls_is_verified_by_default_and_a_private_ca_can_be_given(tmp_path):
    import ssl

    import trustme

    ca = trustme.CA()
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(server_tls)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    with Server(_os_route, tls=server_tls) as engine:
        refused = _retrieve(tmp_path, _os_config(tmp_path, engine.url))
        trusted = _retrieve(tmp_path, _os_config(tmp_path, engine.url,
                                                 limits=f"{{ca_file: {tmp_path / 'ca.pem'}}}"))
    assert refused.exit_code == 4 and "TLS certificate is not trusted" in refused.stderr
    assert trusted.exit_code == 0, trusted.output


def test_templates_copied_from_srw_and_quepid_work(tmp_path):
    """SRW's search configurations write %SearchText%, Quepid's #$query##: both are read as
    {{query}}, so a team's existing template works unchanged."""
    with Server(_os_route) as engine:
        srw = _os_config(tmp_path, engine.url, msearch=0,
                         query='{query: {multi_match: {query: "%SearchText%"}}}')
        assert _retrieve(tmp_path, srw).exit_code == 0
        quepid = _os_config(tmp_path, engine.url, msearch=0,
                            query='{query: {multi_match: {query: "#$query##"}}}')
        assert _retrieve(tmp_path, quepid, out="q.jsonl").exit_code == 0
    asked = {json.loads(s.body)["query"]["multi_match"]["query"] for s in engine.seen}
    assert asked == {"black jeans", "red dress"}
