"""The review page: a person labels three pairs with the keyboard in headless Chromium (Debian's
package, driven by Playwright without any browser download), undoes one, and the store
holds exactly those decisions. Then the page's refusals: files, tokens, cross-site writes."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from raer.cli import main
from raer.nodes.context import Context
from raer.nodes.inputs import Pair
from raer.run.local import judge_pairs
from raer.store import open_store
from raer.web.review.app import ReviewConfig, review_app
from tests.conftest import description, draw_packshot, guidelines, judgment, requirements
from tests.test_server import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PLANTED = '<img src=x onerror="document.title=\'pwned\'">Levi\'s 501'
CONFIDENCE = {"p1": 0.2, "p2": 0.4, "p3": 0.9, "p4": 0.3, "p5": 0.1}


@pytest.fixture
async def queue_store(fake_model, tmp_path):
    """Five pairs, four escalated; p1 has a local packshot, p4 a path outside the folder."""
    images = tmp_path / "images"
    images.mkdir()
    draw_packshot(images / "p1.png", colour=(20, 20, 20))
    (tmp_path / "secret.png").write_bytes(b"not for reviewers")
    settings = Context(db_path=str(tmp_path / "review.db"), base_url="http://fake.invalid/v1",
                       model="gpt-4o-mini", vision_model="pillow", images_root=str(images))
    fake_model.respond("Requirements", lambda m: requirements(
        ("product type", "jeans", "must", False)))
    fake_model.respond("Guidelines", lambda m: guidelines())
    fake_model.respond("PackshotDescription", lambda m: description())

    def judge(messages):
        pid = messages[-1].content.split("title: ")[1].split()[0]
        return judgment(label="irrelevant", confidence=CONFIDENCE.get(pid, 0.3))

    fake_model.respond("Judgment", judge)
    rows = [("black jeans", "p1", "p1 black jeans", "p1.png"),
            ("black jeans", "p2", "p2 " + PLANTED, ""),
            ("black jeans", "p3", "p3 jeans", ""),
            ("red dress", "p4", "p4 dress", "../secret.png"),
            ("red dress", "p5", "p5 dress", "")]
    await judge_pairs([Pair(query=q, language="en", engine="A", rank=i, product_id=pid,
                            title=title, image=image)
                       for i, (q, pid, title, image) in enumerate(rows, start=1)], settings)
    store = open_store(settings.db_path)
    ids = {r["product_id"]: r["id"] for r in store.rows("select id, product_id from judgments")}
    return store, settings.run_id, ids


@pytest.fixture
def served(queue_store, tmp_path):
    """`raer review serve` as the README starts it, on a free loopback port."""
    store, run_id, ids = queue_store
    port = free_port()
    raer = Path(sys.executable).parent / "raer"
    log = (tmp_path / "review.log").open("w")
    env = {k: v for k, v in os.environ.items() if k != "RAER_REVIEW_TOKEN"}
    proc = subprocess.Popen([str(raer), "review", "serve", "--db", store.path, "--port",
                             str(port)], stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "review.log").read_text()
            try:
                httpx.get(f"{base}/api/runs", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield base, store, run_id, ids
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is installed by .ci/run")
def test_label_three_pairs_with_the_keyboard_and_undo_one(served):
    from playwright.sync_api import expect, sync_playwright

    base, store, run_id, ids = served
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(f"{base}/?reviewer=ana&run={run_id}")
        progress, where = page.locator("#progress"), page.locator("#where")
        expect(progress).to_have_text("4 of 4 left")
        # the stated priority: lowest confidence first (p5 0.1, p1 0.2, p4 0.3, p2 0.4)
        expect(where).to_contain_text(ids["p5"])
        page.keyboard.press("3")
        expect(progress).to_have_text("3 of 4 left")
        expect(where).to_contain_text(ids["p1"])
        # p1's packshot is on screen, decoded from the run's images folder
        expect(page.locator("#packshot")).to_be_visible()
        page.wait_for_function("document.getElementById('packshot').naturalWidth > 0")
        expect(page.locator("#query")).to_have_text("black jeans")
        expect(page.locator("#reasons")).to_contain_text("low confidence 0.2 < 0.5")
        page.keyboard.press("n")
        page.keyboard.type("dark grey, close")
        page.keyboard.press("Escape")
        page.keyboard.press("2")
        expect(progress).to_have_text("2 of 4 left")
        expect(where).to_contain_text(ids["p4"])
        # p4's packshot points outside the images folder: nothing is shown
        expect(page.locator("#packshot")).to_be_hidden()
        expect(page.locator("#no-packshot")).to_contain_text("outside the images folder")
        page.keyboard.press("1")
        expect(progress).to_have_text("1 of 4 left")
        expect(where).to_contain_text(ids["p2"])
        # seller text is text: the planted markup is shown, not run
        expect(page.locator("#title")).to_contain_text("<img src=x")
        assert page.title() == "raer review"
        page.keyboard.press("u")
        expect(progress).to_have_text("2 of 4 left")
        expect(where).to_contain_text(ids["p4"])  # the undone pair is back on screen
        expect(page.locator("#message")).to_contain_text("undone: highly relevant")
        browser.close()
    decisions = store.rows("select judgment_id, reviewer, label, note, undone_at is not null "
                           "as undone from review_decisions order by id")
    assert [(d["judgment_id"], d["label"], d["undone"]) for d in decisions] == [
        (ids["p5"], "irrelevant", 0), (ids["p1"], "acceptable substitute", 0),
        (ids["p4"], "highly relevant", 1)]
    assert decisions[1]["note"] == "dark grey, close"
    reviews = {r["judgment_id"]: (r["status"], r["human_label"])
               for r in store.reviews(run_id, None)}
    assert reviews == {ids["p5"]: ("resolved", "irrelevant"),
                       ids["p1"]: ("resolved", "acceptable substitute"),
                       ids["p4"]: ("open", None), ids["p2"]: ("open", None)}


def page_client(app, **kwargs) -> TestClient:
    """A client that reaches the page as a browser on this machine does (Host 127.0.0.1)."""
    return TestClient(app, base_url="http://127.0.0.1:8765", **kwargs)


def test_packshots_come_only_from_the_runs_folder_and_as_images(queue_store):
    store, run_id, ids = queue_store
    client = page_client(review_app(ReviewConfig(db_path=store.path)))
    shot = client.get(f"/api/packshot/{ids['p1']}")
    assert shot.status_code == 200 and shot.headers["content-type"] == "image/jpeg"
    assert shot.content[:2] == b"\xff\xd8"  # re-encoded, not the file's own bytes
    outside = client.get(f"/api/packshot/{ids['p4']}")
    assert outside.status_code == 404 and b"not for reviewers" not in outside.content
    assert "outside the images folder" in outside.json()["detail"]
    for path in ("/api/packshot/..%2F..%2Fsecret.png", "/api/packshot/nope",
                 "/assets/..%2Fapp.py", "/assets/app.py"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert b"not for reviewers" not in response.content
    item = client.get(f"/api/pair/{ids['p1']}").json()
    assert item["packshot"] == f"api/packshot/{ids['p1']}"
    assert item["guidelines"]["highly_relevant"] == "all musts met"
    assert client.get("/").headers["content-security-policy"].startswith("default-src 'none'")


def test_tokens_off_loopback_and_cross_site_writes(queue_store):
    store, run_id, ids = queue_store
    decide = {"judgment_id": ids["p1"], "label": "irrelevant", "reviewer": "mallory"}
    remote = page_client(review_app(ReviewConfig(db_path=store.path)),
                        client=("203.0.113.9", 5555))
    assert remote.get("/api/runs").status_code == 403
    assert remote.post("/api/decide", json=decide).status_code == 403
    guarded = review_app(ReviewConfig(db_path=store.path, token="t0ken-123"))
    remote = page_client(guarded, client=("203.0.113.9", 5555), follow_redirects=False)
    assert remote.get("/api/runs").status_code == 401
    assert remote.get("/api/runs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert remote.get("/api/runs", headers={
        "Authorization": "Bearer t0ken-123"}).status_code == 200
    entered = remote.get("/?token=t0ken-123&run=x")
    assert entered.status_code == 303 and entered.headers["location"] == "/?run=x"
    assert "httponly" in entered.headers["set-cookie"].lower()
    assert remote.get("/api/runs").status_code == 200  # the cookie now carries the token
    local = page_client(review_app(ReviewConfig(db_path=store.path)))
    assert local.post("/api/decide", content=json.dumps(decide),
                      headers={"content-type": "text/plain"}).status_code == 415
    assert local.post("/api/decide", json=decide,
                      headers={"origin": "http://evil.example"}).status_code == 403
    assert local.post("/api/decide", json={**decide, "label": "meh"}).status_code == 422
    assert local.post("/api/decide", json={**decide, "judgment_id": "j-x"}).status_code == 404
    assert store.db["review_decisions"].count == 0  # nothing refused was written
    assert local.post("/api/decide", json=decide).json()["status"] == "resolved"


def test_serve_refuses_to_bind_off_loopback_without_a_token(queue_store, monkeypatch):
    store, _, _ = queue_store
    monkeypatch.delenv("RAER_REVIEW_TOKEN", raising=False)
    out = CliRunner().invoke(main, ["review", "serve", "--db", store.path, "--host", "0.0.0.0"])
    assert out.exit_code == 2 and "RAER_REVIEW_TOKEN" in out.output


def test_a_reviewers_token_binds_their_name_and_only_adjudicators_adjudicate(queue_store):
    """Issue 22: with one shared token (or none) anyone could decide or undo under another
    reviewer's name and act as adjudicator. Tokens of one's own bind the name."""
    store, run_id, ids = queue_store
    config = ReviewConfig(db_path=store.path, identities=(("ana", "ana-token-1"),
                                                          ("ben", "ben-token-2")),
                          adjudicators=("ana",))
    app = review_app(config)
    ben = page_client(app, headers={"Authorization": "Bearer ben-token-2"})
    ana = page_client(app, headers={"Authorization": "Bearer ana-token-1"})
    assert ben.get("/api/whoami").json() == {"reviewer": "ben", "bound": True,
                                             "adjudicator": False}
    decide = {"judgment_id": ids["p1"], "label": "irrelevant"}
    assert ana.post("/api/decide", json={**decide, "reviewer": "ana"}).status_code == 200
    # ben cannot write as ana, undo ana's decision, or adjudicate
    assert ben.post("/api/decide", json={**decide, "reviewer": "ana"}).status_code == 403
    assert ben.post("/api/undo", json={"reviewer": "ana", "run": run_id}).status_code == 403
    assert ben.post("/api/undo", json={"reviewer": "", "run": run_id}).json() == {
        "undone": None}  # ben has nothing to undo: ana's decision stays
    assert ben.post("/api/decide", json={**decide, "label": "highly relevant",
                                         "role": "adjudicator"}).status_code == 403
    assert ben.post("/api/decide", json={**decide, "label": "highly relevant"}
                    ).status_code == 200  # as himself, with no name typed: ben
    assert ana.post("/api/decide", json={**decide, "label": "highly relevant",
                                         "role": "adjudicator"}).status_code == 200
    rows = store.rows("select reviewer, role, undone_at is null as active from "
                      "review_decisions order by id")
    assert rows == [{"reviewer": "ana", "role": "reviewer", "active": 1},
                    {"reviewer": "ben", "role": "reviewer", "active": 1},
                    {"reviewer": "ana", "role": "adjudicator", "active": 1}]
    # without tokens (loopback, one person) nobody is an adjudicator unless named
    local = page_client(review_app(ReviewConfig(db_path=store.path)))
    assert local.post("/api/decide", json={**decide, "reviewer": "eve",
                                           "role": "adjudicator"}).status_code == 403


def test_rebound_host_names_and_oversized_bodies_are_refused(queue_store):
    store, _, ids = queue_store
    app = review_app(ReviewConfig(db_path=store.path))
    rebound = TestClient(app, base_url="http://evil.example:8765")
    assert rebound.get("/api/runs").status_code == 421
    assert rebound.get("/").status_code == 421
    named = TestClient(review_app(ReviewConfig(db_path=store.path,
                                               allowed_hosts=("review.shop.example",))),
                       base_url="http://review.shop.example")
    assert named.get("/api/runs").status_code == 200
    local = page_client(app)
    huge = {"judgment_id": ids["p1"], "label": "irrelevant", "reviewer": "ana",
            "note": "x" * 100_000}
    assert local.post("/api/decide", json=huge).status_code == 413
    assert store.db["review_decisions"].count == 0


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is installed by .ci/run")
@pytest.mark.parametrize("size", [(390, 844), (360, 740), (1280, 800)],
                         ids=["phone-390", "phone-360", "desktop"])
def test_the_page_works_at_phone_and_desktop_widths(served, size):
    """Issue 24: at 390 px the layout was 566 px wide, text and buttons cut off, a tap on
    "irrelevant" blocked; the "recorded" confirmation sat off-screen; undo went one step."""
    from playwright.sync_api import expect, sync_playwright

    base, store, run_id, ids = served
    width, height = size
    phone = width < 600
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": width, "height": height},
                                has_touch=phone, is_mobile=phone)
        page.goto(f"{base}/?reviewer=ana&run={run_id}")
        progress = page.locator("#progress")
        expect(progress).to_have_text("4 of 4 left")
        page.wait_for_function("document.getElementById('packshot').complete")
        layout = page.evaluate("document.documentElement.scrollWidth")
        assert layout <= width, f"layout {layout} px wide in a {width} px viewport"
        if phone:  # the packshot comes first, above the query
            shot = page.locator(".picture").bounding_box()
            query = page.locator("#query").bounding_box()
            assert shot["y"] < query["y"]
        for label, left in (("irrelevant", "3 of 4 left"),
                            ("acceptable substitute", "2 of 4 left"),
                            ("highly relevant", "1 of 4 left")):
            button = page.locator(f"button[data-label='{label}']")
            box = button.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width  # not cut off
            if phone:
                assert box["height"] >= 44  # a finger's tap target
                button.tap()
            else:
                button.click()
            expect(progress).to_have_text(left)
            message = page.locator("#message")
            expect(message).to_contain_text(f"{label} recorded")
            seen = message.bounding_box()
            assert 0 <= seen["y"] and seen["y"] + seen["height"] <= height  # on screen
        for left in ("2 of 4 left", "3 of 4 left", "4 of 4 left"):  # three steps back
            page.locator("#undo").click()
            expect(progress).to_have_text(left)
            expect(page.locator("#message")).to_contain_text("undone")
        browser.close()
    active = store.rows("select count(*) as n from review_decisions where undone_at is null")
    assert active[0]["n"] == 0
    assert store.db["review_decisions"].count == 3
