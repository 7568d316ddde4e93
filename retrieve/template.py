"""Query templates filled in on the parsed structure, never as text.

A template is the request body (or params, or URL) with placeholders: `{{query}}`, `{{k}}`,
`{{language}}`, `{{query_type}}`; the placeholders of the tools users come from are read
too (OpenSearch SRW's `%SearchText%`, Quepid's `#$query##`). Filling walks the parsed JSON
and replaces inside strings, so a query is always a JSON string value: a query such as
`"} , "script": {…` cannot change the request's shape, as it can when a template is
filled as text (mustache renderers such as chevron HTML-escape, they do not JSON-escape).
A string that is exactly `{{k}}` becomes the number. In a URL template every value is
URL-encoded.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

ALIASES = {"%SearchText%": "{{query}}", "#$query##": "{{query}}"}
PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
NAMES = ("query", "k", "language", "query_type")


def _normal(text: str) -> str:
    for alias, name in ALIASES.items():
        text = text.replace(alias, name)
    return text


def check_template(template: Any) -> Any:
    """The template with aliases read; an unknown placeholder is refused by name."""
    if isinstance(template, dict):
        return {key: check_template(value) for key, value in template.items()}
    if isinstance(template, list):
        return [check_template(value) for value in template]
    if isinstance(template, str):
        text = _normal(template)
        unknown = sorted({m for m in PLACEHOLDER.findall(text) if m not in NAMES})
        if unknown:
            raise ValueError(f"unknown placeholder {', '.join('{{' + u + '}}' for u in unknown)}"
                             f" (known: {', '.join('{{' + n + '}}' for n in NAMES)})")
        return text
    return template


def fill(template: Any, values: dict[str, Any]) -> Any:
    """A copy of the template with the values in place (see the module docstring)."""
    if isinstance(template, dict):
        return {key: fill(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [fill(value, values) for value in template]
    if isinstance(template, str):
        whole = PLACEHOLDER.fullmatch(template)
        if whole and not isinstance(values[whole.group(1)], str):
            return values[whole.group(1)]
        return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)
    return template


def fill_url(template: str, values: dict[str, Any]) -> str:
    return PLACEHOLDER.sub(lambda m: quote(str(values[m.group(1)]), safe=""), template)


def uses(template: Any, name: str) -> bool:
    """Whether the template has the placeholder anywhere."""
    if isinstance(template, dict):
        return any(uses(v, name) for v in template.values())
    if isinstance(template, list):
        return any(uses(v, name) for v in template)
    return isinstance(template, str) and name in PLACEHOLDER.findall(template)
