"""Two `raer judge` processes on one store (issue 8): no lock failures, no crash, no answer
paid twice, no duplicate rows. Both judge the same file against a fake provider on
loopback that answers slowly, so their calls overlap."""

import subprocess
import sys
from pathlib import Path

from raer.store import open_store
from tests.conftest import write_jsonl
from tests.fake_openai import FakeOpenAI

QUERIES, PRODUCTS = 6, 5


def test_two_processes_on_one_store_pay_each_answer_once(tmp_path):
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [
        {"query": f"black jeans {q}", "language": "en", "product_id": f"p{q}-{i}",
         "title": f"Jeans {i}"} for q in range(QUERIES) for i in range(PRODUCTS)])
    db = tmp_path / "shared.db"
    server = FakeOpenAI(latency=0.3)
    raer = Path(sys.executable).with_name("raer")
    command = [str(raer), "judge", str(pairs), "--db", str(db), "--base-url", server.base_url,
               "--model", "gpt-4o-mini", "--vision-model", "pillow", "--json"]
    try:
        procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env={"OPENAI_API_KEY": "test", "PATH": ""})
                 for _ in range(2)]
        outputs = [p.communicate(timeout=240) for p in procs]
    finally:
        server.close()
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
        assert "Traceback" not in err and "locked" not in err
    store = open_store(db)
    statuses = store.rows("select status, count(*) n from judgments group by status")
    assert {r["status"]: r["n"] for r in statuses} == {"done": QUERIES * PRODUCTS}
    minimum = QUERIES * 2 + QUERIES * PRODUCTS  # requirements + guidelines per query, judges
    assert len(server.requests) == minimum
    assert store.rows("select count(*) n from llm_calls where error is not null")[0]["n"] == 0
