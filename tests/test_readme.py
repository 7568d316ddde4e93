"""Every Python block in the README and the docs runs as a script; every JSON block parses;
the README stays a README (at most 200 lines) and the docs site builds with no broken link.

The offline blocks run on the embedded model from a scratch folder beside the demo files;
the langgraph_sdk block runs against a real `langgraph dev` on loopback.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.test_server import server  # noqa: F401 (the fixture)

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCKS = [block for page in PAGES
          for block in re.findall(r"```(python|json)\n(.*?)```", page.read_text(), re.S)]
PYTHON = list(dict.fromkeys(code for lang, code in BLOCKS if lang == "python"))  # each once
OFFLINE = [code for code in PYTHON if "langgraph_sdk" not in code]
CLIENT = [code for code in PYTHON if "langgraph_sdk" in code]


def run_script(code: str, cwd) -> subprocess.CompletedProcess:
    script = cwd / "block.py"
    script.write_text(code)
    return subprocess.run([sys.executable, str(script)], cwd=cwd, capture_output=True,
                          text=True, timeout=1200)


def test_the_readme_has_the_blocks_this_file_runs():
    assert len(OFFLINE) >= 2 and len(CLIENT) == 1


def test_the_readme_is_short_and_links_every_docs_page():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    pages = {p.name for p in (REPO / "docs").glob("*.md")} - {"index.md"}
    assert {p for p in pages if f"docs/{p}" not in readme} == set()


def test_the_docs_site_builds_without_a_broken_link(tmp_path):
    """mkdocs in strict mode fails on a link to a missing page or anchor (mkdocs.yml sets
    the validation to warn, strict turns warnings into errors)."""
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(tmp_path / "site")], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize("code", [c for lang, c in BLOCKS if lang == "json"])
def test_json_blocks_parse(code):
    json.loads(code)


@pytest.mark.offline_model
@pytest.mark.parametrize("index", range(len(OFFLINE)))
def test_python_blocks_run_as_scripts(index, tmp_path):
    (tmp_path / "demo").symlink_to(REPO / "demo")
    done = run_script(OFFLINE[index], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip(), "a README example should show its result"


@pytest.mark.server
def test_the_sdk_example_runs_against_the_server(server, tmp_path):  # noqa: F811
    code = CLIENT[0].replace("http://127.0.0.1:2031", server)
    done = run_script(code, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = done.stdout.split()
    assert "adidas-samba" in printed and "nike-af1" in printed
