"""store/reviews.py: one review per distinct judge input. Failed before: the demo opened 52
reviews for 26 distinct judge inputs, so a person labelled each twice."""

from click.testing import CliRunner

from raer.cli import main
from raer.nodes.inputs import Pair
from raer.run import judge_pairs
from raer.store import open_store
from raer.store.reviews import decide, queue
from tests.conftest import judgment


async def test_pairs_sharing_a_judge_input_share_one_review(standard_answers, settings):
    standard_answers.respond("Judgment", lambda m: judgment(confidence=0.2))  # escalated
    pairs = [Pair(query="black jeans", product_id=f"p{i}", title=f"Jeans {i}", engine=engine,
                  rank=rank)
             for engine, rank in (("A", 1), ("B", 3)) for i in range(2)]
    await judge_pairs(pairs, settings)
    store = open_store(settings.db_path)
    assert len(store.rows("select * from reviews")) == 4  # each pair keeps its row
    todo = queue(store, settings.run_id, "ana")
    assert [(r["pairs"], r["engines"]) for r in todo] == [(2, ["A", "B"])] * 2
    listed = CliRunner().invoke(main, ["review", "list", "--db", settings.db_path])
    assert "2 reviews for 4 pairs" in listed.output
    # a decision on one pair of a group resolves every pair that gave the judge its input
    outcome = decide(store, todo[0]["judgment_id"], "ana", "irrelevant")
    assert outcome["pairs"] == 2
    resolved = store.rows("select j.engine, r.status, r.human_label from reviews r join "
                          "judgments j on j.id = r.judgment_id where j.product_id = ? "
                          "order by j.engine", [store.rows(
                              "select product_id from judgments where id = ?",
                              [todo[0]["judgment_id"]])[0]["product_id"]])
    assert resolved == [{"engine": "A", "status": "resolved", "human_label": "irrelevant"},
                        {"engine": "B", "status": "resolved", "human_label": "irrelevant"}]
    assert [r["judgment_id"] for r in queue(store, settings.run_id, "ben")] == [
        todo[1]["judgment_id"]]
