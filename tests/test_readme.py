"""Every Python block in the README runs as a script; every JSON block parses.

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

BLOCKS = re.findall(r"```(python|json)\n(.*?)```", (REPO / "README.md").read_text(), re.S)
PYTHON = [code for lang, code in BLOCKS if lang == "python"]
OFFLINE = [code for code in PYTHON if "langgraph_sdk" not in code]
CLIENT = [code for code in PYTHON if "langgraph_sdk" in code]


def run_script(code: str, cwd) -> subprocess.CompletedProcess:
    script = cwd / "block.py"
    script.write_text(code)
    return subprocess.run([sys.executable, str(script)], cwd=cwd, capture_output=True,
                          text=True, timeout=1200)


def test_the_readme_has_the_blocks_this_file_runs():
    assert len(OFFLINE) >= 2 and len(CLIENT) == 1


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
