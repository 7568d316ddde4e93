"""Listwise judging (nodes/judge_list.py) against the fake OpenAI server on loopback: the
real ChatOpenAI client, real requests, a real SQLite store."""

from __future__ import annotations

import json
import math

import pytest

from raer.nodes.context import Context, SettingsError
from raer.nodes.inputs import Pair
from raer.run import judge_pairs
from raer.store import open_store
from tests.fake_openai import FakeOpenAI, listed_ids


@pytest.fixture
def server():
    servers: list[FakeOpenAI] = []

    def start(**kwargs) -> FakeOpenAI:
        servers.append(FakeOpenAI(**kwargs))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def pairs(sizes: dict[str, int], engine: str = "", offset: int = 0) -> list[Pair]:
    return [Pair(query=query, language="en", product_id=f"{query[:3]}-{i}",
                 title=f"{query} item {i}", engine=engine, rank=i + 1)
            for query, n in sizes.items() for i in range(offset, offset + n)]


def settings_for(server: FakeOpenAI, tmp_path, n: int, **extra) -> Context:
    return Context(db_path=str(tmp_path / "lw.db"), base_url=server.base_url,
                   model="gpt-4o-mini", vision_model="pillow", products_per_call=n,
                   max_retries=0, **extra)


def judge_requests(server: FakeOpenAI) -> list[dict]:
    return [r for r in server.requests if listed_ids(r)]


async def test_listwise_makes_one_judge_call_per_chunk_of_a_query(server, tmp_path):
    fake = server()
    sizes = {"black jeans": 7, "red dress": 3, "wool socks": 1}
    rows = await judge_pairs(pairs(sizes), settings_for(fake, tmp_path, 3))
    assert {r["status"] for r in rows} == {"done"} and len(rows) == 11
    calls = judge_requests(fake)
    expected = sum(math.ceil(n / 3) for n in sizes.values())  # 3 + 1 + 1
    print(f"listwise N=3: {len(calls)} judge calls for 11 pairs (pairwise: 11)")
    assert len(calls) == expected == 5
    assert sorted(len(listed_ids(c)) for c in calls) == [1, 1, 3, 3, 3]
    store = open_store(tmp_path / "lw.db")
    # the shared call is recorded once; each judgment points to it
    llm = store.rows("select id, node from llm_calls where node = 'judge_list'")
    assert len(llm) == 5
    per_call = store.rows("select call_id, count(*) as n from judgments group by call_id")
    assert sorted(r["n"] for r in per_call if r["call_id"] in {c["id"] for c in llm}) == [
        1, 1, 3, 3, 3]
    listed = store.rows("select * from listed_judgments order by call_id, position")
    assert len(listed) == 11 and {r["seed"] for r in listed} == {0}
    assert [r["position"] for r in listed if r["size"] == 3][:3] == [1, 2, 3]
    # products are listed in a seeded shuffle, not in the engine's rank order
    first = json.loads(store.rows("select messages from llm_calls where node = 'judge_list' "
                                  "order by id")[0]["messages"])
    assert "<product_data id=\"p1\">" in first[-1]["content"]


async def test_a_partial_answer_re_asks_only_the_missing_product(server, tmp_path):
    fake = server(leave_out_first=1)
    rows = await judge_pairs(pairs({"black jeans": 5}), settings_for(fake, tmp_path, 5))
    assert [r["status"] for r in rows] == ["done"] * 5
    calls = judge_requests(fake)
    assert [len(listed_ids(c)) for c in calls] == [5, 1]  # the re-ask lists the missing one
    assert "is asked again" in calls[1]["messages"][-1]["content"]


async def test_a_product_never_answered_fails_with_the_reason(server, tmp_path):
    fake = server(leave_out_first=100)
    rows = await judge_pairs(pairs({"black jeans": 2}),
                             settings_for(fake, tmp_path, 2, max_reasks=1))
    assert sorted(r["status"] for r in rows) == ["done", "failed"]
    failed = next(r for r in rows if r["status"] == "failed")
    assert "left this product out after 2 asks" in failed["error"]
    assert [len(listed_ids(c)) for c in judge_requests(fake)] == [2, 1]


async def test_a_rerun_and_another_engine_reuse_products_one_by_one(server, tmp_path):
    fake = server()
    settings = settings_for(fake, tmp_path, 4)
    await judge_pairs(pairs({"black jeans": 6}, engine="a"), settings)
    first = len(fake.requests)
    await judge_pairs(pairs({"black jeans": 6}, engine="a"), settings)
    assert len(fake.requests) == first  # a rerun: 0 calls
    # engine b returns four of a's products and two new ones, in another run
    other = pairs({"black jeans": 4}, engine="b", offset=2) + pairs({"black jeans": 2},
                                                                    engine="b", offset=6)
    rows = await judge_pairs(other, settings_for(fake, tmp_path, 4, run_name="night-2"))
    assert {r["status"] for r in rows} == {"done"}
    new = judge_requests(fake)[len(judge_requests(fake)) - 1:]
    assert len(fake.requests) == first + 1 and [len(listed_ids(c)) for c in new] == [2]


async def test_two_engines_returning_one_product_list_it_once(server, tmp_path):
    fake = server()
    both = pairs({"black jeans": 3}, engine="a") + pairs({"black jeans": 3}, engine="b")
    rows = await judge_pairs(both, settings_for(fake, tmp_path, 10))
    assert len(rows) == 6 and {r["status"] for r in rows} == {"done"}
    assert [len(listed_ids(c)) for c in judge_requests(fake)] == [3]


async def test_chunks_are_cut_to_fit_the_judge_models_context(server, tmp_path):
    """N = 5 on a 4,000-token context with long product texts: each prompt and the answer
    it may write fit the context (as the door guesses tokens), so no request is refused."""
    from raer.nodes.models.door import estimate_prompt_tokens

    fake = server()
    long = [Pair(query="black jeans", language="en", product_id=f"bj-{i}", rank=i + 1,
                 title=f"black jeans item {i}", description="slim fit denim. " * 90)
            for i in range(5)]
    settings = settings_for(fake, tmp_path, 5, context_tokens=4000)
    rows = await judge_pairs(long, settings)
    assert {r["status"] for r in rows} == {"done"}
    calls = judge_requests(fake)
    sizes = [len(listed_ids(c)) for c in calls]
    print(f"N=5 in a 4,000-token context: chunks of {sizes}")
    assert len(calls) > 1 and sum(sizes) == 5 and max(sizes) < 5
    for call in calls:
        asked = estimate_prompt_tokens(call["messages"]) + call["max_completion_tokens"]
        assert asked <= 4000, asked
    # the dry run cuts too; it guesses the query's guidelines at a typical size (450 tokens,
    # longer than the fake's), so it may count more chunks, never fewer
    from raer.run.estimate import estimate

    planned = estimate(long, settings_for(fake, tmp_path / "dry", 5, context_tokens=4000))
    judge = next(r for r in planned["by_node"] if r["node"] == "judge_list")
    assert len(calls) <= judge["calls"] < 5
    # a model the table knows: gpt-4o-mini's 128,000 tokens hold all five in one chunk
    wide = await judge_pairs(long, settings_for(fake, tmp_path / "wide", 5))
    assert {r["status"] for r in wide} == {"done"}
    assert [len(listed_ids(c)) for c in judge_requests(fake)[len(calls):]] == [5]


def test_listwise_settings_are_part_of_the_run_and_checked():
    pairwise = Context(base_url="http://x.invalid/v1", model="m")
    assert "products_per_call" not in pairwise.identity()  # pairwise run ids as before
    listwise = Context(base_url="http://x.invalid/v1", model="m", products_per_call=5)
    assert listwise.run_id != pairwise.run_id
    assert listwise.identity()["prompts"].get("judge_list")
    with pytest.raises(SettingsError, match="products_per_call"):
        Context(base_url="http://x.invalid/v1", model="m", products_per_call=0)
    assert "context_tokens" not in listwise.identity()  # the model's own: ids as before
    cut = Context(base_url="http://x.invalid/v1", model="m", products_per_call=5,
                  context_tokens=4000)
    assert cut.run_id != listwise.run_id


async def test_show_gives_the_shared_prompt_and_the_products_own_part(server, tmp_path):
    from click.testing import CliRunner

    from raer.cli import main

    fake = server()
    await judge_pairs(pairs({"black jeans": 3}), settings_for(fake, tmp_path, 3))
    db = str(tmp_path / "lw.db")
    trace = json.loads(CliRunner().invoke(main, [
        "show", "--db", db, "--query", "black jeans", "--product", "bla-1", "--json"]).stdout)
    step = trace["steps"][-1]
    assert step["node"] == "judge_list" and step["listed"]["size"] == 3
    assert "black jeans item 1" in step["listed"]["product_part"]
    listed_as = step["listed"]["list_id"]
    prompt = step["calls"][0]["messages"][-1]["content"]
    assert f'<product_data id="{listed_as}">\n{step["listed"]["product_part"]}' in prompt
    text = CliRunner().invoke(main, ["show", "--db", db, "--query", "black jeans",
                                     "--product", "bla-1"], env={"COLUMNS": "200"}).output
    assert f"listed as {listed_as}, position" in text and "black jeans item 2" in text


def test_the_dry_run_counts_one_judge_call_per_chunk(tmp_path):
    from raer.run.estimate import estimate

    settings = Context(db_path=str(tmp_path / "none.db"), base_url="http://x.invalid/v1",
                       model="gpt-4o-mini", vision_model="pillow", products_per_call=4)
    result = estimate(pairs({"black jeans": 9, "red dress": 2}), settings)
    judge = next(r for r in result["by_node"] if r["node"] == "judge_list")
    assert judge["calls"] == 3 + 1 and not (tmp_path / "none.db").exists()


@pytest.mark.slow  # kills a real `raer judge --products-per-call 4` half-way
def test_a_run_killed_mid_chunk_loses_and_repeats_nothing(server, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    fake = server(latency=0.4)
    pairs_file = tmp_path / "pairs.jsonl"
    pairs_file.write_text("".join(json.dumps(
        {"query": f"query {q}", "language": "en", "product_id": f"p{i}", "title": f"Jeans {i}"}
    ) + "\n" for q in range(4) for i in range(8)))
    db = tmp_path / "kill.db"
    raer = str(Path(sys.executable).parent / "raer")
    args = [raer, "judge", str(pairs_file), "--db", str(db), "--base-url", fake.base_url,
            "--model", "gpt-4o-mini", "--json", "--products-per-call", "4",
            "--query-concurrency", "2", "--workers", "1"]
    env = {**os.environ, "OPENAI_API_KEY": "test"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, done = time.monotonic() + 60, 0
    while time.monotonic() < deadline and done < 4:
        time.sleep(0.05)
        if db.exists():
            try:
                done = open_store(db).rows("select count(*) as n from judgments "
                                           "where status = 'done'")[0]["n"]
            except Exception:  # the file may be mid-creation
                continue
    in_flight = len(judge_requests(fake))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert 4 <= done < 32, "the run should be killed part-way"
    finished = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout)["statuses"]["done"] == 32
    store = open_store(db)
    assert store.rows("select count(*) as n from judgments")[0]["n"] == 32
    assert store.rows("select count(*) as n from listed_judgments")[0]["n"] == 32
    repeated = store.rows("select cache_key, count(*) as n from llm_calls where parsed is not "
                          "null group by cache_key having n > 1")
    assert repeated == []  # no chunk whose answer was stored was asked again
    # 8 chunks in all: those asked before the kill whose answer was lost, asked again
    assert 8 <= len(judge_requests(fake)) <= 8 + (in_flight - done // 4)
    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert json.loads(again.stdout)["model_calls_this_invocation"] == 0


def test_the_schema_asks_for_each_listed_id_once_in_order():
    """A grammar-constrained model (llama.cpp) writes exactly the schema: each position's
    id is a constant, so it cannot leave a product out or judge one twice. Validation still
    takes a partial or reordered answer and sets aside what it cannot use."""
    from raer.nodes.listing import MAX_LIST_OUTPUT, output_limit
    from raer.nodes.schemas import judgment_list

    schema = judgment_list(3).model_json_schema()
    array = schema["properties"]["judgments"]
    assert "items" not in array and array["minItems"] == array["maxItems"] == 3
    assert [p["properties"]["product"]["const"] for p in array["prefixItems"]] == [
        "p1", "p2", "p3"]
    assert all(p["required"][0] == "product" for p in array["prefixItems"])
    entry = {"reasoning": "r", "verdicts": [], "label": "irrelevant", "confidence": 0.5,
             "brand_check": "no brand asked"}
    parsed = judgment_list(3).model_validate({"judgments": [
        {"product": "p3", **entry}, {"product": "p3", **entry}, {"product": "p9", **entry}]})
    assert [j.product for j in parsed.judgments] == ["p3"] and len(parsed.rejected) == 2
    # the output limit holds each product's worst case, up to what one call may ask for
    assert output_limit(5) >= 5 * 800 and output_limit(30) == MAX_LIST_OUTPUT


def test_the_summary_counts_listed_answers_as_answers_not_reuse(server, tmp_path):
    """A listwise run on a fresh store reused nothing; it once said all its labels were
    reused (only pairwise answers were counted as answers)."""
    from click.testing import CliRunner

    from raer.cli import main

    fake = server()
    db = str(tmp_path / "lw.db")
    a = tmp_path / "a.jsonl"
    a.write_text("".join(p.model_dump_json() + "\n" for p in pairs({"black jeans": 4}, "A")))
    both = tmp_path / "ab.jsonl"
    both.write_text("".join(p.model_dump_json() + "\n" for p in
                            pairs({"black jeans": 4}, "A") + pairs({"black jeans": 6}, "B")))
    model = ["--base-url", fake.base_url, "--model", "gpt-4o-mini", "--vision-model", "pillow",
             "--products-per-call", "5", "--db", db, "--json", "--max-retries", "0"]
    first = json.loads(CliRunner().invoke(main, ["judge", str(a), *model]).stdout)
    assert first["labels_reused"] == 0 and first["statuses"]["done"] == 4
    second = json.loads(CliRunner().invoke(main, ["judge", str(both), *model]).stdout)
    # engine B's first 4 products are engine A's: 4 reused, 2 new in one judge call (the
    # query's requirements and guidelines are cached)
    assert second["labels_reused"] == 4 and second["model_calls_this_invocation"] == 1
