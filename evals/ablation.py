"""Ablations: the same pairs judged under two settings, compared pair by pair.

Variants: query-specific vs generic guidelines (the paper reports ~+5 points for specific),
with vs without the packshot description, judge model A vs B, and the 0–4 graded scale vs
the three labels. Each variant is an ordinary run in the same store (caches shared), and the
comparison is paired: McNemar's exact test on the pairs one variant got right and the other
wrong, and a bootstrap over queries of the difference in agreement.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from typing import Any

import numpy as np
from scipy.stats import binomtest

from raer.evals.agreement import Item
from raer.evals.resampling import each_draw, percentile_interval
from raer.nodes.context import Context

VARIANTS: dict[str, tuple[tuple[str, dict[str, Any]], tuple[str, dict[str, Any]]]] = {
    "guidelines": (("query-specific guidelines", {"guideline_mode": "specific"}),
                   ("generic guidelines", {"guideline_mode": "generic"})),
    "description": (("with packshot description", {"describe_images": True}),
                    ("without packshot description", {"describe_images": False})),
    "scale": (("three labels", {"scale": "three"}), ("graded 0–4 scale", {"scale": "graded"})),
    "feedback": (("without reviewed examples", {"learn_from_reviews": False}),
                 ("with reviewed examples", {"learn_from_reviews": True})),
}


def variant_settings(base: Context, vary: str, judge_model_b: str = "") -> list[
        tuple[str, Context]]:
    if vary == "judge-model":
        if not judge_model_b:
            raise ValueError("--vary judge-model needs --judge-model-b")
        a_model = base.endpoints["judge"].model
        return [(f"judge {a_model}", base),
                (f"judge {judge_model_b}", dataclasses.replace(base, judge_model=judge_model_b))]
    (name_a, a), (name_b, b) = VARIANTS[vary]
    return [(name_a, dataclasses.replace(base, **a)), (name_b, dataclasses.replace(base, **b))]


def paired_comparison(a: list[Item], b: list[Item], resamples: int = 1000,
                      seed: int = 0) -> dict[str, Any]:
    """B against A on the pairs both judged."""
    b_by_pair = {(i.query_id, i.product_id, i.engine): i for i in b}
    paired = [(x, b_by_pair[(x.query_id, x.product_id, x.engine)]) for x in a
              if (x.query_id, x.product_id, x.engine) in b_by_pair]
    paired = [(x, y) for x, y in paired if x.judged and y.judged]
    if not paired:
        return {"pairs": 0, "agreement_a": math.nan, "agreement_b": math.nan,
                "difference": math.nan, "difference_ci": (math.nan, math.nan),
                "only_a_right": 0, "only_b_right": 0, "mcnemar_p": math.nan}
    right_a = np.array([x.judge == x.majority for x, _ in paired], dtype=float)
    right_b = np.array([y.judge == y.majority for _, y in paired], dtype=float)
    only_a = int(((right_a == 1) & (right_b == 0)).sum())
    only_b = int(((right_a == 0) & (right_b == 1)).sum())
    p_value = binomtest(only_b, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    by_query: dict[str, list[int]] = defaultdict(list)
    for index, (x, _) in enumerate(paired):
        by_query[x.query_id].append(index)
    groups = list(by_query.values())
    differences = []
    for draw in each_draw(len(groups), resamples, seed):
        drawn = [i for g in draw for i in groups[g]]
        differences.append(right_b[drawn].mean() - right_a[drawn].mean())
    low, high = percentile_interval(differences)
    return {"pairs": len(paired), "queries": len(groups),
            "agreement_a": float(right_a.mean()), "agreement_b": float(right_b.mean()),
            "difference": float(right_b.mean() - right_a.mean()),
            "difference_ci": (float(low), float(high)), "only_a_right": only_a,
            "only_b_right": only_b, "mcnemar_p": float(p_value)}
