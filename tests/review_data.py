"""The escalated pairs people-in-the-loop tests share (and the Label Studio fixture script):
five pairs judged "irrelevant" by the fake model with set confidences; four go to people."""

from __future__ import annotations

from raer.nodes.context import Context
from raer.nodes.inputs import Pair
from raer.run.local import judge_pairs
from tests.conftest import description, guidelines, judgment, requirements
from tests.fakes import FakeChatModel

QUERY_PRODUCTS = [("black jeans", "p1", 0.2), ("black jeans", "p2", 0.4),
                  ("black jeans", "p3", 0.9), ("red dress", "p4", 0.3), ("red dress", "p5", 0.1)]


def review_pairs(images: dict[str, str] | None = None) -> list[Pair]:
    return [Pair(query=q, language="en", engine="A", rank=i, product_id=pid,
                 title=f"Item {pid}", image=(images or {}).get(pid, ""))
            for i, (q, pid, _) in enumerate(QUERY_PRODUCTS, start=1)]


async def judge_review_pairs(settings: Context, fake: FakeChatModel) -> None:
    confidence = {pid: c for _, pid, c in QUERY_PRODUCTS}
    fake.respond("Requirements", lambda m: requirements(("product type", "jeans", "must", False)))
    fake.respond("Guidelines", lambda m: guidelines())
    fake.respond("PackshotDescription", lambda m: description())

    def judge(messages):
        pid = messages[-1].content.split("title: Item ")[1].split()[0]
        return judgment(label="irrelevant", confidence=confidence[pid])

    fake.respond("Judgment", judge)
    await judge_pairs(review_pairs(), settings)
