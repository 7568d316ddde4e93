"""What every evaluated pair carries: which judgment, which query, which engine."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class JudgedPair:
    judgment_id: str
    query_id: str
    query: str
    language: str
    query_type: str
    engine: str
