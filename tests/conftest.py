"""Shared fixtures: a fake model behind the door, settings on a temp store, Pillow images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from raer.nodes.context import Context
from raer.nodes.models import door as models
from raer.nodes.schemas import Guidelines, Judgment, PackshotDescription, Requirement, Requirements
from raer.store import open_store
from tests.fakes import FakeChatModel

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def esci_us() -> Path:
    """The ESCI-US sample in ../shared, read in place; its tests skip when it is absent."""
    path = SHARED_DATA / "esci-us" / "pairs.jsonl"
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared human-labelled data is not beside the repo")
    return path


def lines_of(path: Path) -> list[dict]:
    """The JSON objects of a JSONL file (the tests count the file, never pin its size)."""
    # split on "\n" only: seller text holds U+2028, which str.splitlines() splits on
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n")
            if line.strip()]


SLOW_MODULES = {"test_ray", "test_workers", "test_store_two_processes", "test_review_page",
                "test_server", "test_server_state", "test_offline_model"}
SLOW_MARKS = {"server", "offline_model"}


def pytest_collection_modifyitems(config, items):
    """Tests that start processes, servers, a Ray cluster, a browser or the embedded model
    are `slow`: left out of the default (fast) selection, run by `make test`."""
    for item in items:
        if (item.module.__name__.rpartition(".")[2] in SLOW_MODULES
                or SLOW_MARKS & {m.name for m in item.iter_markers()}):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def fake_model(monkeypatch) -> FakeChatModel:
    """Swap the model door for the fake; nodes stay untouched."""
    fake = FakeChatModel()

    def door(role: str, settings: Context):
        return fake, settings.endpoints[role].model

    monkeypatch.setattr(models, "make_chat_model", door)
    return fake


@pytest.fixture
def settings(tmp_path) -> Context:
    return Context(db_path=str(tmp_path / "raer.db"), base_url="http://fake.invalid/v1",
                   model="gpt-4o-mini", vision_model="pillow")


@pytest.fixture
def store(settings):
    store = open_store(settings.db_path)
    yield store
    store.close()


def requirements(*items: tuple[str, str, str, bool]) -> Requirements:
    return Requirements(reasoning="test", requirements=[
        Requirement(kind=k, value=v, importance=i, brand_or_literal=b) for k, v, i, b in items])


def guidelines() -> Guidelines:
    return Guidelines(highly_relevant="all musts met", acceptable_substitute="close",
                      irrelevant="a must missed")


def judgment(label: str = "highly relevant", confidence: float = 0.9,
             brand_check: str = "matches") -> Judgment:
    return Judgment(reasoning="checked each requirement", verdicts=[], label=label,
                    confidence=confidence, brand_check=brand_check)


def description(colour: str = "black") -> PackshotDescription:
    return PackshotDescription(product_type="jeans", colours=[colour], pattern="plain",
                               visible_text="", details="straight leg")


@pytest.fixture
def standard_answers(fake_model) -> FakeChatModel:
    """Plain, confident answers for every schema (no ambiguity, no escalation)."""
    fake_model.respond("Requirements", lambda m: requirements(
        ("product type", "jeans", "must", False), ("colour", "black", "should", False)))
    fake_model.respond("Guidelines", lambda m: guidelines())
    fake_model.respond("PackshotDescription", lambda m: description())
    fake_model.respond("Judgment", lambda m: judgment())
    return fake_model


def draw_packshot(path: Path, colour=(200, 30, 40), stripes=None, size=200) -> Path:
    img = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    draw.rectangle([40, 30, size - 40, size - 30], fill=colour)
    if stripes:
        for y in range(30, size - 30, 16):
            draw.rectangle([40, y, size - 40, y + 7], fill=stripes)
    img.save(path)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def product(pid: str, title: str = "Levi's 501 black jeans", **extra) -> dict:
    return {"product_id": pid, "title": title, "brand": "Levi's", "colour": "black", **extra}
