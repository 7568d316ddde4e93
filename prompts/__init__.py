"""Authored prompt files and their loader.

One file per prompt, named after its node. A file has a `[system]` and a `[user]` section;
placeholders are `{name}` (literal braces are doubled). The loader checks that a file uses
exactly the placeholders its node fills, and returns the text with a short content hash that
goes into every cache key and stored row, so a changed prompt never reuses stale output.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

# Placeholders each prompt must use, no more and no fewer.
EXPECTED_PLACEHOLDERS: dict[str, frozenset[str]] = {
    "extract_requirements": frozenset({"query", "language"}),
    "draft_guidelines": frozenset({"query", "language", "requirements"}),
    "describe_product": frozenset({"product_hint"}),
    "judge_pair": frozenset({"query", "language", "requirements", "guidelines", "product"}),
    "judge_pair_graded": frozenset({"query", "language", "requirements", "guidelines",
                                    "product"}),
    "judge_list": frozenset({"query", "language", "requirements", "guidelines", "products"}),
    "judge_list_graded": frozenset({"query", "language", "requirements", "guidelines",
                                    "products"}),
    "classify_disagreement": frozenset({"query", "guidelines", "product", "human_label",
                                        "judge_label", "reasoning"}),
}


class PromptError(ValueError):
    """A prompt file is missing a section or a placeholder, or has an unexpected one."""


@dataclass(frozen=True)
class Prompt:
    name: str
    system: str
    user: str
    hash: str

    def render(self, **values: str) -> tuple[str, str]:
        """(system, user) with the placeholders filled."""
        return self.system.format(**values), self.user.format(**values)


def _placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def parse_prompt(name: str, text: str) -> Prompt:
    if "[system]" not in text or "[user]" not in text:
        raise PromptError(f"prompt {name!r} needs a [system] and a [user] section")
    head, _, rest = text.partition("[system]")
    system, _, user = rest.partition("[user]")
    found = _placeholders(system) | _placeholders(user)
    expected = EXPECTED_PLACEHOLDERS.get(name)
    if expected is not None and found != expected:
        missing, extra = sorted(expected - found), sorted(found - expected)
        raise PromptError(f"prompt {name!r}: missing placeholders {missing}, unexpected {extra}")
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return Prompt(name=name, system=system.strip(), user=user.strip(), hash=digest)


class PromptSetError(PromptError):
    """A prompt set folder that does not exist."""


def _shipped(name: str) -> Path:
    return Path(str(resources.files("raer.prompts") / f"{name}.md"))


def prompt_path(name: str, prompt_set: str = "default") -> Path:
    """Where a prompt is read from: `<prompt_set>/<name>.md` when the set has it, else the
    shipped file (a set may hold only the prompts it changes)."""
    if prompt_set == "default":
        return _shipped(name)
    folder = Path(prompt_set)
    if not folder.is_dir():
        raise PromptSetError(f"prompt set {prompt_set!r} is not a folder")
    own = folder / f"{name}.md"
    return own if own.exists() else _shipped(name)


@lru_cache(maxsize=256)
def _parse_file(name: str, path: str, mtime_ns: int, size: int) -> Prompt:
    return parse_prompt(name, Path(path).read_text(encoding="utf-8"))


def load_prompt(name: str, prompt_set: str = "default") -> Prompt:
    """The prompt as its file reads now: a file edited in a notebook or under the server is
    seen at the next run (parsed again when its modification time or size changes)."""
    path = prompt_path(name, prompt_set)
    stat = path.stat()
    return _parse_file(name, str(path), stat.st_mtime_ns, stat.st_size)


def judge_prompt_name(graded: bool = False, listwise: bool = False) -> str:
    """The judge's prompt file: pairwise or listwise, three labels or graded."""
    return f"judge_{'list' if listwise else 'pair'}{'_graded' if graded else ''}"


def prompt_hashes(prompt_set: str = "default", graded: bool = False,
                  listwise: bool = False) -> dict[str, str]:
    """Hashes of the prompts a judging run uses (part of the run's identity)."""
    names = ("extract_requirements", "draft_guidelines", "describe_product",
             judge_prompt_name(graded, listwise))
    return {name: load_prompt(name, prompt_set).hash for name in names}
