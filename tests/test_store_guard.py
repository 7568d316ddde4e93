"""The store owns all data: no SQL, no SQLite handle and no raw row access outside store/.

Before: 54 SQL call sites in graph/, nodes/, evals/ and the CLI, evals writing through
`store.db`. The scan below counts them; ruff's banned-api rule (pyproject.toml) keeps
`sqlite3` and `sqlite_utils` imports out of the other folders too."""

import re

from tests.conftest import REPO

SQL = re.compile(r"""["']\s*(select\s.*\bfrom\b|select\s+(count|coalesce|distinct|\*)|"""
                 r"""insert\s+(or\s+\w+\s+)?into\s|update\s+\w+\s+set\s|delete\s+from\s|"""
                 r"""pragma\s)""", re.I)
RAW = re.compile(r"\.(rows|tuples|execute|executemany)\(|\.db\[|\bstore\.db\.|\bimport sqlite3\b|"
                 r"\bsqlite_utils\b")
FOLDERS = ("graph", "run", "cli", "web", "nodes", "evals", "prompts")


def test_no_sql_outside_the_store():
    found = []
    for folder in FOLDERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                code = line.split("#", 1)[0]
                if SQL.search(code) or RAW.search(code.replace("plan.rows()", "")):
                    found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert found == []


def test_the_scan_finds_sql_when_there_is_some():
    assert SQL.search('store.x("select id from judgments")')
    assert RAW.search("store.rows(sql)") and RAW.search('store.db["products"]')
