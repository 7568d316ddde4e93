"""What a packshot source is, decided in one place: every reader, the estimate, the review
page and the Label Studio export ask here (they had seven checks of their own, which
disagreed on URLs of other schemes: one read "ftp://…" as a relative file path)."""

from __future__ import annotations

from typing import Literal

Kind = Literal["none", "data", "web", "url", "file"]


def image_kind(source: str) -> Kind:
    """"none" (no image), "data" (a data: URL), "web" (http or https: a browser may load
    it), "url" (any other scheme: fetching refuses it with the reason), or "file"."""
    if not source:
        return "none"
    head = source[:12].lower()
    if head.startswith("data:"):
        return "data"
    if head.startswith(("http://", "https://")):
        return "web"
    if "://" in head:
        return "url"
    return "file"
