"""The label scale: its labels, their order and names, and the default gains. Every module
that orders, names or grades labels reads them here (they had eight owners).

Three labels, best first, as the paper's judge gives them; the graded variant (0–4) maps
onto them (`GRADE_TO_LABEL`). "cannot judge" is a judge's answer, not a label on the scale.
"""

from __future__ import annotations

LABELS = ("highly relevant", "acceptable substitute", "irrelevant")
"""Best first."""
ORDERED = list(reversed(LABELS))
"""Worst first: the ordinal codes 0, 1, 2."""
ORDER = {label: code for code, label in enumerate(ORDERED)}
SHORT = {"highly relevant": "HR", "acceptable substitute": "AS", "irrelevant": "IR"}
CHART_NAMES = {"highly relevant": "highly rel.", "acceptable substitute": "substitute",
               "irrelevant": "irrelevant"}
CANNOT_JUDGE = "cannot judge"
GRADE_TO_LABEL = {4: "highly relevant", 3: "highly relevant", 2: "acceptable substitute",
                  1: "irrelevant", 0: "irrelevant"}
DEFAULT_GAINS = {"highly relevant": 2, "acceptable substitute": 1, "irrelevant": 0}
"""trec_eval-style integer grades (`raer evaluate --gains 2,1,0`)."""
