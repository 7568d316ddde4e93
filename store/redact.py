"""Secrets never reach the store, the logs or what raer shows.

Two leak paths: credentials written into an endpoint URL (`http://user:pass@host/v1`), and
provider error messages that echo the key they were sent. `strip_credentials` removes the
first from URLs before they are recorded; `redact` removes from any text the values of the
environment variables that hold keys and anything shaped like a key or a bearer token.
The Store applies `redact` to every error it writes.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit, urlunsplit

_KEY_SHAPED: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 ***"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), "***"),  # OpenAI-style keys, sk-proj- too
    (re.compile(r"(?i)\b(AKIA|ghp_|gho_|xox[abp]-|glpat-)[A-Za-z0-9_-]{8,}"), "***"),
    (re.compile(r"(?i)\b((?:api[_-]?key|access[_-]?token|secret|password|token)"
                r"(?:\s*[=:]\s*\"?|\"\s*:\s*\"))[^\s\"',;&]{4,}"), r"\1***"),
    (re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+@"), "***@"),  # user:password@ in a URL
    (re.compile(r"(?i)([?&](?:key|api[-_]?key|token|sig|signature)=)[^&\s]+"), r"\1***"),
]
_SECRET_ENV = re.compile(r"(?i)(KEY|TOKEN|SECRET|PASSWORD)")
MIN_SECRET = 8


def strip_credentials(url: str) -> str:
    """The URL without user:password (and without a key in its query string)."""
    if not url or "://" not in url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = re.sub(r"(?i)((?:^|&)(?:key|api[-_]?key|token)=)[^&]*", r"\1***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _secret_values() -> list[str]:
    return sorted({v for k, v in os.environ.items()
                   if _SECRET_ENV.search(k) and len(v) >= MIN_SECRET}, key=len, reverse=True)


def redact(text: str | None) -> str | None:
    """`text` with secret values and key-shaped strings replaced by "***"."""
    if not text:
        return text
    for value in _secret_values():
        text = text.replace(value, "***")
    for pattern, replacement in _KEY_SHAPED:
        text = pattern.sub(replacement, text)
    return text
