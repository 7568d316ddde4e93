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
from functools import cache
from importlib import resources

# Placeholders each prompt must use, no more and no fewer.
EXPECTED_PLACEHOLDERS: dict[str, frozenset[str]] = {
    "extract_requirements": frozenset({"query", "language"}),
    "draft_guidelines": frozenset({"query", "language", "requirements"}),
    "describe_product": frozenset({"product_hint"}),
    "judge_pair": frozenset({"query", "language", "requirements", "guidelines", "product"}),
    "judge_pair_graded": frozenset({"query", "language", "requirements", "guidelines",
                                    "product"}),
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


@cache
def load_prompt(name: str, prompt_set: str = "default") -> Prompt:
    """Load `prompts/<name>.md` (prompt_set "default") or `<prompt_set>/<name>.md` from a folder."""
    if prompt_set == "default":
        text = (resources.files("raer.prompts") / f"{name}.md").read_text(encoding="utf-8")
    else:
        from pathlib import Path

        text = (Path(prompt_set) / f"{name}.md").read_text(encoding="utf-8")
    return parse_prompt(name, text)


def prompt_hashes(prompt_set: str = "default", graded: bool = False) -> dict[str, str]:
    """Hashes of the prompts a judging run uses (part of the run's identity)."""
    names = ("extract_requirements", "draft_guidelines", "describe_product",
             "judge_pair_graded" if graded else "judge_pair")
    return {name: load_prompt(name, prompt_set).hash for name in names}
