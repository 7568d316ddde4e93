"""Safe at every door (issue 8): image URLs, local paths, decompression bombs, secrets.

SSRF refusals are tested by resolving names to loopback, private and metadata addresses
(socket.getaddrinfo is replaced), never by sending traffic anywhere but loopback; a
loopback server counts the requests that reached it, which must be none."""

import base64
import functools
import http.server
import io
import json
import socket
import threading
import time
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from PIL import Image

from raer.cli import main
from raer.nodes.describe_product import describe_product
from raer.nodes.image_fetch import FetchRefused, fetch
from raer.nodes.images import ImagePolicy, ImageUnavailable, load_packshot
from raer.store import open_store
from raer.store.redact import redact, strip_credentials
from tests.conftest import draw_packshot, product, write_jsonl


class Counting(http.server.SimpleHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        Counting.hits.append(self.path)
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
            return
        if self.path.startswith("/slow"):
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            for _ in range(40):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.1)
            return
        if self.path.startswith("/huge"):
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            block = b"\0" * 65536
            try:
                for _ in range(64):  # 4 MiB, no Content-Length
                    self.wfile.write(block)
            except OSError:
                pass
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def loopback(tmp_path):
    draw_packshot(tmp_path / "served.png")
    Counting.hits = []
    handler = functools.partial(Counting, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def resolving_to(monkeypatch, address):
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):
        if host.endswith(".example"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.5", "192.168.1.20", "172.16.3.4",
                                     "169.254.169.254", "100.64.0.1", "0.0.0.0"])
def test_names_resolving_to_internal_addresses_are_refused_before_any_request(
        monkeypatch, loopback, address):
    resolving_to(monkeypatch, address)
    with pytest.raises(FetchRefused, match="non-public address"):
        fetch(f"http://cdn.example:{loopback}/served.png")
    assert Counting.hits == []


def test_loopback_and_localhost_urls_are_refused_and_nothing_is_sent(loopback):
    for url in (f"http://127.0.0.1:{loopback}/served.png", f"http://localhost:{loopback}/x",
                f"http://[::1]:{loopback}/x", "file:///etc/passwd", "ftp://example.org/a.png"):
        with pytest.raises(FetchRefused):
            fetch(url)
    assert Counting.hits == []


def test_an_allowed_host_is_fetched_and_a_redirect_to_metadata_is_refused(loopback):
    assert fetch(f"http://127.0.0.1:{loopback}/served.png", allow="127.0.0.1")[:4] == b"\x89PNG"
    with pytest.raises(FetchRefused, match="169.254.169.254"):
        fetch(f"http://127.0.0.1:{loopback}/redirect", allow="127.0.0.0/8")
    assert Counting.hits == ["/served.png", "/redirect"]  # the metadata address never asked


def test_downloads_are_capped_in_size_and_time_while_streaming(loopback):
    with pytest.raises(FetchRefused, match="larger than 1 MB"):
        fetch(f"http://127.0.0.1:{loopback}/huge", allow="127.0.0.1", max_bytes=2**20)
    started = time.monotonic()
    with pytest.raises(FetchRefused, match="took over 1 s"):
        fetch(f"http://127.0.0.1:{loopback}/slow", allow="127.0.0.1", deadline=1.0)
    assert time.monotonic() - started < 3


def test_data_urls_are_capped_and_decompression_bombs_refused(tmp_path):
    with pytest.raises(ImageUnavailable, match="data URL longer than"):
        load_packshot("data:image/png;base64," + "A" * (9 * 2**20))
    bomb = io.BytesIO()
    Image.new("1", (12000, 12000)).save(bomb, format="PNG")  # ~20 KB, 144 M pixels
    assert len(bomb.getvalue()) < 500_000
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb.getvalue())
    with pytest.raises(ImageUnavailable, match="12000×12000 pixels is over the 25 megapixel"):
        load_packshot(str(path))
    url = "data:image/png;base64," + base64.b64encode(bomb.getvalue()).decode()
    with pytest.raises(ImageUnavailable, match="megapixel"):
        load_packshot(url)


def test_local_paths_are_confined_without_an_existence_oracle(tmp_path):
    root = tmp_path / "shop"
    root.mkdir()
    inside = draw_packshot(root / "ok.png")
    policy = ImagePolicy(root=str(root))
    assert load_packshot(str(inside), policy).sha256
    reasons = set()
    for source in ("../../../../etc/passwd", "/etc/shadow", "/etc/no-such-file",
                   str(tmp_path / "private.png")):
        with pytest.raises(ImageUnavailable) as err:
            load_packshot(source, policy)
        reasons.add(str(err.value))
    assert reasons == {"image path is outside the images folder (the pairs file's folder, "
                       "or --images-root)"}
    with pytest.raises(ImageUnavailable, match="not read here"):
        load_packshot(str(inside), ImagePolicy(root=str(root), local=False))


def test_the_cli_confines_packshots_to_the_pairs_folder(tmp_path, settings, fake_model):
    folder = tmp_path / "input"
    folder.mkdir()
    secret = draw_packshot(tmp_path / "private.png")
    pairs = write_jsonl(folder / "pairs.jsonl", [
        {"query": "jeans", **product("p1", image=str(secret))},
        {"query": "jeans", **product("p2", image="../private.png")}])
    from tests.conftest import description, guidelines, judgment, requirements
    fake_model.respond("Requirements", lambda m: requirements(("product type", "jeans",
                                                               "must", False)))
    fake_model.respond("Guidelines", lambda m: guidelines())
    fake_model.respond("PackshotDescription", lambda m: description())
    fake_model.respond("Judgment", lambda m: judgment())
    db = tmp_path / "c.db"
    result = CliRunner().invoke(main, ["judge", str(pairs), "--db", str(db), "--base-url",
                                       "http://fake.invalid/v1", "--model", "gpt-4o-mini",
                                       "--json"])
    assert result.exit_code == 0, result.output
    notes = {r["image_note"] for r in open_store(db).rows("select image_note from judgments")}
    assert notes == {"image path is outside the images folder (the pairs file's folder, "
                     "or --images-root)"}
    assert fake_model.calls("PackshotDescription") == []


async def test_describe_product_records_a_refused_url_as_the_reason(settings, store,
                                                                    monkeypatch, loopback):
    resolving_to(monkeypatch, "169.254.169.254")
    out = await describe_product({"run_id": "r", "product": product(
        "p", image=f"http://metadata.example:{loopback}/latest")},
        SimpleNamespace(context=settings))
    assert out["description"] is None and "non-public address" in out["image_note"]
    assert Counting.hits == []


def test_credentials_and_keys_are_stripped_and_redacted(monkeypatch):
    monkeypatch.setenv("SHOP_API_KEY", "s3cr3t-value-123456")
    assert strip_credentials("https://ana:pa55@llm.internal/v1?key=abc") == \
        "https://llm.internal/v1?key=***"
    text = ("401: Incorrect API key provided: sk-proj-AbCdEf123456789. Authorization: Bearer "
            "s3cr3t-value-123456; see http://ana:pa55@llm.internal/v1 api_key=\"zzzzzzzzz\"")
    clean = redact(text)
    for secret in ("sk-proj-AbCdEf123456789", "s3cr3t-value-123456", "pa55", "zzzzzzzzz"):
        assert secret not in clean
    assert clean.startswith("401: Incorrect API key provided: ***.")


def test_no_secret_reaches_the_store_show_or_report(tmp_path, monkeypatch):
    """A password in the base URL and a provider that echoes the key: nothing is kept."""
    from tests.fake_openai import FakeOpenAI

    monkeypatch.setenv("LEAKY_KEY", "sk-leak-0123456789abcdef")
    server = FakeOpenAI(fail_first=1000, fail_status=401,
                        fail_message="Incorrect API key provided: sk-leak-0123456789abcdef")
    try:
        base = server.base_url.replace("http://", "http://ana:hunter2pass@")
        pairs = write_jsonl(tmp_path / "p.jsonl", [{"query": "jeans", **product("p1")}])
        db = tmp_path / "s.db"
        runner = CliRunner()
        judged = runner.invoke(main, ["judge", str(pairs), "--db", str(db), "--base-url", base,
                                      "--model", "gpt-4o-mini", "--api-key-env", "LEAKY_KEY",
                                      "--max-retries", "0", "--json"])
        assert judged.exit_code == 4, judged.output  # every pair failed
        shown = runner.invoke(main, ["show", "--db", str(db), "--query", "jeans",
                                     "--product", "p1"])
        labels = write_jsonl(tmp_path / "l.jsonl", [{"query": "jeans", **product("p1"),
                                                     "label": "highly relevant"}])
        assert runner.invoke(main, ["labels", "import", "table", str(labels), "--db",
                                    str(db)]).exit_code == 0
        run_id = json.loads(judged.stdout)["run_id"]
        reported = runner.invoke(main, ["report", run_id, "--db", str(db), "--resamples",
                                        "10", "--out", str(tmp_path / "report")])
        assert reported.exit_code == 0, reported.output
    finally:
        server.close()
    report = "".join(p.read_text() for p in (tmp_path / "report").iterdir())
    dump = ("\n".join(open_store(db).db.iterdump()) + shown.output + judged.output
            + reported.output + report)
    assert "Incorrect API key provided" in dump  # the error itself is kept
    for secret in ("sk-leak-0123456789abcdef", "hunter2pass"):
        assert secret not in dump
    assert json.loads(open_store(db).rows("select settings from runs")[0]["settings"])[
        "base_url"].startswith("http://127.0.0.1")


def test_bad_files_and_stores_end_with_a_message_and_exit_2(tmp_path):
    runner = CliRunner()
    bom = tmp_path / "excel.csv"
    bom.write_bytes("\ufeffquery,product_id,title\njeans,p1,Jeans\n".encode())
    from raer.nodes.inputs import read_pairs
    assert read_pairs(bom)[0].query == "jeans"
    latin = tmp_path / "latin.csv"
    latin.write_bytes("query,product_id,title\nJeans für Herren,p1,Jeans\n".encode("latin-1"))
    parquet = tmp_path / "corrupt.parquet"
    parquet.write_bytes(b"PAR1 this is not parquet")
    for path, message in ((latin, "not UTF-8 text"), (parquet, "cannot read parquet file")):
        result = runner.invoke(main, ["judge", str(path), "--db", str(tmp_path / "x.db")])
        assert result.exit_code == 2 and message in result.output
        assert "Traceback" not in result.output
    foreign = tmp_path / "notes.db"
    foreign.write_text("these are my notes, not a database " * 50)
    result = runner.invoke(main, ["status", "run-x", "--db", str(foreign)])
    assert result.exit_code == 2 and "not a usable SQLite store" in result.output
    assert foreign.read_text().startswith("these are my notes")
    result = runner.invoke(main, ["labels", "import", "wands", str(tmp_path), "--db",
                                  str(tmp_path / "w.db")])
    assert result.exit_code == 2 and "not a WANDS dataset folder" in result.output


def test_the_operators_config_file_sets_profiles_store_and_images_root(tmp_path, monkeypatch):
    from raer.nodes import server_settings
    from raer.nodes.server_settings import (
        ForbiddenSetting,
        ServerSettings,
        check_client_settings,
        load_operator_config,
        server_context,
    )

    config = tmp_path / "etc" / "raer.json"
    config.parent.mkdir()
    config.write_text(json.dumps({
        "db_path": "runs.db", "images_root": "packshots", "default_profile": "offline",
        "profiles": {"offline": {}, "gpt-4o": {"base_url": "https://api.openai.com/v1",
                                               "model": "gpt-4o",
                                               "api_key_env": "OPENAI_API_KEY"}},
        "settings": {"max_concurrency": 16}}))
    loaded = load_operator_config({"RAER_SERVER_CONFIG": str(config)})
    assert loaded.db_path == str(config.parent / "runs.db")  # relative to the file
    monkeypatch.setattr(server_settings, "operator_config", lambda: loaded)
    server_context.cache_clear()
    chosen = server_context(ServerSettings(profile="gpt-4o", review_below=0.7))
    assert (chosen.base_url, chosen.model, chosen.db_path, chosen.max_concurrency) == (
        "https://api.openai.com/v1", "gpt-4o", str(config.parent / "runs.db"), 16)
    assert chosen.images_root == str(config.parent / "packshots") and chosen.local_images
    assert chosen.review_below == 0.7
    assert server_context(ServerSettings()).endpoints["judge"].offline  # offline default
    server_context.cache_clear()
    check_client_settings({"profile": "gpt-4o", "scale": "graded"})
    with pytest.raises(ForbiddenSetting, match="unknown profile 'gpt-5'"):
        check_client_settings({"profile": "gpt-5"})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"profiles": {"x": {"base_ur": "typo"}}}))
    with pytest.raises(ValueError, match="x: unknown run settings \\['base_ur'\\]"):
        load_operator_config({"RAER_SERVER_CONFIG": str(bad)})
    no_root = load_operator_config({"RAER_DB": "s.db"})
    assert no_root.images_root == "" and no_root.profiles == {"default": {}}


def test_a_product_id_with_other_content_is_rejected_never_overwritten(tmp_path, fake_model):
    from tests.conftest import description, guidelines, judgment, requirements

    fake_model.respond("Requirements", lambda m: requirements(("product type", "jeans",
                                                               "must", False)))
    fake_model.respond("Guidelines", lambda m: guidelines())
    fake_model.respond("PackshotDescription", lambda m: description())
    fake_model.respond("Judgment", lambda m: judgment())
    runner, db = CliRunner(), str(tmp_path / "p.db")
    args = ["--db", db, "--base-url", "http://fake.invalid/v1", "--model", "gpt-4o-mini"]
    same_file = write_jsonl(tmp_path / "same.jsonl", [
        {"query": "jeans", **product("p1", title="Levi's 501")},
        {"query": "belt", **product("p1", title="Leather belt")}])
    result = runner.invoke(main, ["judge", str(same_file), *args])
    assert result.exit_code == 2
    assert "same.jsonl:2: product_id: 'p1' has other content than on line 1" in result.output
    first = write_jsonl(tmp_path / "a.jsonl", [{"query": "jeans", **product("p1")}])
    assert runner.invoke(main, ["judge", str(first), *args]).exit_code == 0
    changed = write_jsonl(tmp_path / "b.jsonl", [{"query": "jeans", **product(
        "p1", title="A different product")}])
    result = runner.invoke(main, ["judge", str(changed), *args, "--guidelines", "generic"])
    assert result.exit_code == 2 and "'p1' is stored with other title" in result.output
    store = open_store(db)
    assert store.rows("select title from products")[0]["title"] == "Levi's 501 black jeans"
    assert len(store.rows("select id from runs")) == 1  # the refused run wrote nothing


def test_retry_failed_keeps_the_runs_images_root(tmp_path, fake_model):
    from raer.run.stored import run_settings

    folder = tmp_path / "input"
    folder.mkdir()
    pairs = write_jsonl(folder / "p.jsonl", [{"query": "jeans", **product("p1")}])
    fake_model.respond("Requirements", lambda m: (_ for _ in ()).throw(RuntimeError("down")))
    db = str(tmp_path / "r.db")
    result = CliRunner().invoke(main, ["judge", str(pairs), "--db", db, "--base-url",
                                       "http://fake.invalid/v1", "--model", "gpt-4o-mini",
                                       "--json"])
    run_id = json.loads(result.stdout)["run_id"]
    assert run_settings(open_store(db), run_id).images_root == str(folder.resolve())


def test_a_hung_endpoint_is_bounded_by_the_cli_timeout_and_retries(tmp_path):
    from tests.fake_openai import FakeOpenAI

    server = FakeOpenAI(latency=30)
    pairs = write_jsonl(tmp_path / "p.jsonl", [{"query": "jeans", **product("p1")},
                                               {"query": "jeans", **product("p2")}])
    started = time.monotonic()
    try:
        result = CliRunner().invoke(main, [
            "judge", str(pairs), "--db", str(tmp_path / "h.db"), "--base-url",
            server.base_url, "--model", "gpt-4o-mini", "--request-timeout", "0.5",
            "--max-retries", "0", "--json"], env={"OPENAI_API_KEY": "test"})
    finally:
        server.close()
    assert time.monotonic() - started < 20  # was 490 s for 2 pairs with no way to bound it
    assert result.exit_code == 4  # every pair failed: nothing judged
    errors = open_store(tmp_path / "h.db").rows("select status, error from judgments")
    assert {e["status"] for e in errors} == {"failed"}
    assert all("Timeout" in e["error"] for e in errors)
