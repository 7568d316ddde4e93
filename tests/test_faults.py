"""The benchmark's fault scenario, small: injected faults lose and duplicate nothing."""

import subprocess
import sys

import pytest

from raer.nodes.context import Context
from raer.nodes.inputs import Pair
from raer.run.local import judge_pairs
from raer.store import open_store
from tests.conftest import REPO, draw_packshot


@pytest.fixture
def faulty_mock():
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.mock_openai", "--latency",
                             "0.05", "--fault-rate", "0.2", "--seed", "3"], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    assert line.startswith("listening on "), line
    yield line.removeprefix("listening on ")
    proc.kill()
    proc.wait()


async def test_twenty_percent_faults_lose_and_duplicate_nothing(faulty_mock, tmp_path):
    images = [str(draw_packshot(tmp_path / f"{i}.png", colour=(i * 20, 90, 90)))
              for i in range(6)]
    pairs = [Pair(query=f"blue shirt {q}", language="en", engine="e", rank=i,
                  product_id=f"p{q}-{i}", title=f"Shirt {i}", image=images[(q + i) % 6])
             for q in range(5) for i in range(8)]
    settings = Context(db_path=str(tmp_path / "f.db"), base_url=faulty_mock,
                       model="gpt-4o-mini", vision_model="gpt-4o-mini", request_timeout=1.0,
                       max_retries=4, max_concurrency=16, query_concurrency=5)
    rows = await judge_pairs(pairs, settings)
    store = open_store(settings.db_path)
    statuses = store.pair_statuses(settings.run_id)
    assert len(rows) == 40 and sum(statuses.values()) == 40
    assert statuses.get("pending", 0) == 0  # nothing lost
    failed = [r for r in rows if r["status"] == "failed"]
    assert all(r["error"] for r in failed)  # a failure always says why
    assert store.rows("select count(*) - count(distinct query_id || engine || product_id) "
                      "as d from judgments")[0]["d"] == 0
    repeated = store.rows("select cache_key from llm_calls where parsed is not null "
                          "group by cache_key having count(*) > 1")
    assert repeated == []
    errors = store.rows("select count(*) as n from llm_calls where error is not null")[0]["n"]
    assert errors > 0  # faults really happened and were handled (re-asked or recorded)
