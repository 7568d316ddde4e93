"""Proves the Label Studio round trip against a real Label Studio, once, and writes the
export the tests import (tests/fixtures/label_studio_export.json). Not run by pytest: it
needs `pip install label-studio` (in its own venv: it pins Django and friends).

    python -m tests.label_studio_round_trip --label-studio /path/to/venv/bin/label-studio

Steps: judge five pairs with the fake model (run "ls-round-trip", four escalated);
`raer review export --format label-studio`; start Label Studio on loopback; create a project
with raer's labelling config; import the tasks; annotate three through its API (one with a
note) and cancel one; export the project as JSON; `raer review import` it back.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from click.testing import CliRunner

from raer.cli import main
from raer.nodes.context import Context
from raer.nodes.models import door
from tests.fakes import FakeChatModel
from tests.review_data import judge_review_pairs

FIXTURE = Path(__file__).parent / "fixtures" / "label_studio_export.json"
RUN = "ls-round-trip"
ANSWERS = {"p5": ("highly relevant", ""), "p1": ("acceptable substitute", "dark grey"),
           "p4": ("irrelevant", "")}


def build_store(db: Path) -> Context:
    fake = FakeChatModel()
    door.make_chat_model = lambda role, settings: (fake, settings.endpoints[role].model)
    settings = Context(db_path=str(db), run_name=RUN, base_url="http://fake.invalid/v1",
                       model="gpt-4o-mini", vision_model="pillow")
    asyncio.run(judge_review_pairs(settings, fake))
    return settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main_(label_studio: str) -> None:
    work = Path(tempfile.mkdtemp(prefix="raer-ls-"))
    settings = build_store(work / "raer.db")
    runner = CliRunner()
    out = runner.invoke(main, ["review", "export", RUN, "--db", settings.db_path,
                               "--format", "label-studio", "--out", str(work / "ls")])
    assert out.exit_code == 0, out.output
    print("raer export:", out.stdout.strip())
    port, token = free_port(), "raer-round-trip-token-0123456789"
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(work / "ls-data"),
           "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
           "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true"}
    log = (work / "label-studio.log").open("w")
    server = subprocess.Popen([label_studio, "start", "--no-browser", "--internal-host",
                               "127.0.0.1", "--port", str(port), "--username",
                               "reviewer@example.com", "--password", "raer-pass-123",
                               "--user-token", token, "--data-dir", str(work / "ls-data")],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Token {token}"}
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert server.poll() is None, (work / "label-studio.log").read_text()[-3000:]
            try:
                if httpx.get(f"{base}/health", timeout=3).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        else:
            raise RuntimeError("Label Studio did not start within 300 s")
        client = httpx.Client(base_url=base, headers=headers, timeout=60)
        project = client.post("/api/projects", json={
            "title": "raer review", "label_config": (work / "ls" / "label_config.xml")
            .read_text()}).raise_for_status().json()
        tasks = json.loads((work / "ls" / "tasks.json").read_text())
        client.post(f"/api/projects/{project['id']}/import",
                    json=tasks).raise_for_status()
        stored = client.get("/api/tasks", params={"project": project["id"],
                                                  "page_size": 100}).raise_for_status().json()
        stored = stored["tasks"] if isinstance(stored, dict) else stored
        print(f"Label Studio project {project['id']}: {len(stored)} tasks")
        for task in stored:
            pid = task["data"]["product_id"]
            if pid == "p2":  # a reviewer skips it: a cancelled annotation
                client.post(f"/api/tasks/{task['id']}/annotations",
                            json={"result": [], "was_cancelled": True}).raise_for_status()
                continue
            label, note = ANSWERS[pid]
            result = [{"from_name": "relevance", "to_name": "product", "type": "choices",
                       "value": {"choices": [label]}}]
            if note:
                result.append({"from_name": "note", "to_name": "product", "type": "textarea",
                               "value": {"text": [note]}})
            client.post(f"/api/tasks/{task['id']}/annotations",
                        json={"result": result}).raise_for_status()
        exported = client.get(f"/api/projects/{project['id']}/export",
                              params={"exportType": "JSON"}).raise_for_status().json()
        FIXTURE.write_text(json.dumps(exported, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {FIXTURE} ({len(exported)} tasks)")
    finally:
        server.terminate()
        server.wait(timeout=30)
    out = runner.invoke(main, ["review", "import", str(FIXTURE), "--db", settings.db_path])
    print("raer import:", out.stdout.strip(), out.stderr.strip() if out.stderr else "")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label-studio", required=True, help="the label-studio executable")
    main_(parser.parse_args().label_studio)
