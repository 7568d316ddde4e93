"""The cost–agreement curve's measures (run/curve.py judges its points): the same labelled
pairs judged pairwise, listwise (N products per call) and through the cascade, each
configuration in its own fresh store so none rides on another's cache, and for each: calls,
tokens, dollars per 1,000 pairs at a provider's list price, wall time, agreement and Cohen's
κ with people, and Kendall's τ between the engine ranking its labels give and the one the
pairwise labels give.

The engines are meta_eval's five real rankers over each query's labelled candidates (BM25,
dense, hybrid, random, BM25 reversed), scored by nDCG@10 under each configuration's labels.
Dollars re-price the tokens each store recorded (`--price-as`, from the price table), so
they are exact for those tokens whatever model produced them; with the embedded offline
model, agreement is at chance and says nothing about a real model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats
from sklearn.metrics import cohen_kappa_score

from raer.evals.meta_eval import per_query_ndcg
from raer.nodes.inputs import Pair
from raer.nodes.models.prices import estimate_cost
from raer.store.ids import normalise_query, query_id, query_language

JUDGE_NODES = ("judge_pair", "judge_list")


def configurations(sizes: list[int], first_stage: str) -> list[tuple[str, dict[str, Any]]]:
    """(name, settings) per point of the curve; pairwise (N = 1) always comes first: it is
    the reference the τ column compares with."""
    points = [(f"N={n}" if n > 1 else "pairwise", {"products_per_call": n})
              for n in sorted(set(sizes) | {1})]
    if first_stage:
        points.append(("cascade + pairwise", {"first_stage": first_stage}))
    return points


def _pair_key(pair: Pair) -> tuple[str, str]:
    language = query_language(pair.query, pair.language)
    return query_id(normalise_query(pair.query), language), pair.product_id


def summarise(name: str, pairs: list[Pair], point: dict[str, Any], humans: dict, price_as: str,
              engines: dict[str, dict[str, list[str]]], reference: dict | None
              ) -> dict[str, Any]:
    calls = point["calls"]
    tokens_in = sum(c["input_tokens"] or 0 for c in calls)
    tokens_out = sum(c["output_tokens"] or 0 for c in calls)
    dollars = sum(estimate_cost(price_as, c["input_tokens"] or 0, c["output_tokens"] or 0,
                                c["cached_tokens"] or 0, "") or 0.0 for c in calls)
    judged = [(humans[_pair_key(p)], r["label"]) for p, r in zip(pairs, point["rows"],
                                                                 strict=True)
              if _pair_key(p) in humans and r["label"] and r["label"] != "cannot judge"]
    human, machine = [h for h, _ in judged], [m for _, m in judged]
    means = _engine_means(point["qrels"], engines)
    return {
        "configuration": name, "pairs": len(pairs),
        "statuses": {s: sum(r["status"] == s for r in point["rows"])
                     for s in ("done", "escalated", "failed", "pending")},
        "calls": len(calls), "judge_calls": sum(c["node"] in JUDGE_NODES for c in calls),
        "input_tokens": tokens_in, "output_tokens": tokens_out,
        "tokens_per_pair": round((tokens_in + tokens_out) / len(pairs), 1) if pairs else None,
        "usd_per_1000_pairs": round(1000 * dollars / len(pairs), 6) if pairs else None,
        "price_as": price_as, "wall_s": point["wall_s"],
        "labelled": len(judged),
        "agreement": round(float(np.mean([h == m for h, m in judged])), 4) if judged else None,
        "kappa": round(float(cohen_kappa_score(human, machine)), 4)
        if len(set(human) | set(machine)) > 1 else None,
        "engine_ndcg10": {e: round(v, 4) for e, v in means.items()},
        "tau_vs_pairwise": _tau(reference, means) if reference is not None else 1.0,
    }


def _engine_means(qrels: dict[tuple[str, str], int],
                  engines: dict[str, dict[str, list[str]]]) -> dict[str, float]:
    queries = sorted({q for q, _ in qrels})
    if not queries:
        return {}
    return {e: float(np.mean(list(per_query_ndcg(qrels, ranking, 10, queries).values())))
            for e, ranking in engines.items()}


def _tau(reference: dict[str, float], means: dict[str, float]) -> float | None:
    names = sorted(set(reference) & set(means))
    a, b = [reference[n] for n in names], [means[n] for n in names]
    if len(names) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None  # an ordering with every engine tied has no τ
    return round(float(stats.kendalltau(a, b).statistic), 3)
