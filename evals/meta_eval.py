"""Can these labels rank engines? The TREC test for automatic judges, on any labelled set.

Five engines rank each query's labelled candidates with real retrieval methods: BM25
(bm25s, over title, brand, description and attributes), a dense ranker (WordLlama, whose
16 MB model ships inside its PyPI wheel: nothing is downloaded), a hybrid of the two
(reciprocal rank fusion, k=60), random order, and a deliberately degraded engine (BM25
reversed). Each label source — people's labels, and any run in the store (baselines, a
judge) — scores every engine with nDCG@k (ir-measures over pytrec_eval), on the queries that
source labelled. Against people's ordering of the engines: Kendall's τ (scipy) and τ_AP
(Yilmaz, Aslam & Robertson 2008, which weighs swaps near the top more; no maintained library
computes it, so it is the ten lines below); the correlation of per-query values; and the
share of engine pairs on which a paired t-test at 5% decides the same way.
"""

from __future__ import annotations

import random
import warnings
from collections import defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

import ir_measures
import numpy as np
from ir_measures import Qrel, ScoredDoc, nDCG
from scipy import stats

from raer.evals.engines import Gains, effective_labels, human_qrels, qrels_of
from raer.evals.resampling import each_draw, percentile_interval
from raer.store import Store
from raer.store.store import product_of

ENGINES = ("bm25", "dense", "hybrid", "random", "bm25-reversed")


def candidates(store: Store, source: str, split: str = "") -> dict[str, dict[str, Any]]:
    """Per query: its text and the labelled products (id and text), from imported labels."""
    out: dict[str, dict[str, Any]] = {}
    for r in store.human_label_rows(source, split):
        query = out.setdefault(r["query_id"], {"text": r["query"], "products": {},
                                               "labels": defaultdict(dict)})
        attributes = " ".join(str(v) for v in product_of(r)["attributes"].values())
        query["products"][r["product_id"]] = " ".join(filter(None, (
            r["title"], r["brand"], r["description"], attributes)))
        query["labels"][r["product_id"]][r["annotator"]] = r["label"]
    if not out:
        raise LookupError(f"no human labels from source {source!r}"
                          + (f" in split {split!r}" if split else ""))
    return out


def _bm25(cands: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    import bm25s

    docs = sorted({(pid, text) for c in cands.values() for pid, text in c["products"].items()})
    ids = [pid for pid, _ in docs]
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize([text for _, text in docs], stopwords="en",
                                   show_progress=False), show_progress=False)
    position = {pid: i for i, pid in enumerate(ids)}
    scores = {}
    for qid, c in cands.items():
        tokens = bm25s.tokenize([c["text"]], stopwords="en", return_ids=False,
                                show_progress=False)[0]
        if not tokens:  # no word BM25 can use ("To" is all stopword): every product 0
            scores[qid] = dict.fromkeys(c["products"], 0.0)
            continue
        all_scores = retriever.get_scores(tokens)
        scores[qid] = {pid: float(all_scores[position[pid]]) for pid in c["products"]}
    return scores


def _dense(cands: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    import wordllama
    from wordllama import WordLlama

    # the wheel ships the model; its loader looks for the tokenizer in a folder named
    # "tokenizer" but the wheel calls it "tokenizers": point the cache at the package
    model = WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
    scores = {}
    for qid, c in cands.items():
        pids = list(c["products"])
        vectors = model.embed([c["text"], *(c["products"][p] for p in pids)], norm=True)
        sims = vectors[1:] @ vectors[0]
        scores[qid] = {pid: float(s) for pid, s in zip(pids, sims, strict=True)}
    return scores


def _ranking(scores: dict[str, float]) -> list[str]:
    return sorted(scores, key=lambda pid: (-scores[pid], pid))


def build_engines(cands: dict[str, dict[str, Any]], seed: int = 0) -> dict[str, dict[str, list]]:
    bm25, dense = _bm25(cands), _dense(cands)
    rng = random.Random(seed)
    engines: dict[str, dict[str, list]] = {e: {} for e in ENGINES}
    for qid, c in cands.items():
        by_bm25, by_dense = _ranking(bm25[qid]), _ranking(dense[qid])
        rrf = defaultdict(float)
        for ranking in (by_bm25, by_dense):
            for pos, pid in enumerate(ranking, start=1):
                rrf[pid] += 1 / (60 + pos)
        shuffled = sorted(c["products"])
        rng.shuffle(shuffled)
        engines["bm25"][qid] = by_bm25
        engines["dense"][qid] = by_dense
        engines["hybrid"][qid] = _ranking(rrf)
        engines["random"][qid] = shuffled
        engines["bm25-reversed"][qid] = by_bm25[::-1]
    return engines


def per_query_ndcg(qrels: dict[tuple[str, str], int], engine: dict[str, list], k: int,
                   queries: list[str]) -> dict[str, float]:
    """nDCG@k of one engine's ranking per query under `qrels` (ir-measures), over the
    judged products only; a query with none scores 0. Shared by the meta-evaluation, PPI
    and the cost curve's τ."""
    run = [ScoredDoc(q, pid, float(-pos)) for q in queries
           for pos, pid in enumerate(p for p in engine[q] if (q, p) in qrels)]
    values = {m.query_id: m.value for m in ir_measures.iter_calc(
        [nDCG @ k], [Qrel(q, d, g) for (q, d), g in qrels.items()], run)}
    return {q: values.get(q, 0.0) for q in queries}


def tau_ap(truth: list[float], other: list[float]) -> float:
    """τ_AP (Yilmaz et al. 2008) of `other`'s ordering against `truth`'s (higher is better;
    ties broken by position)."""
    order = sorted(range(len(other)), key=lambda i: -other[i])  # other's ranking
    n = len(order)
    total = 0.0
    for i in range(1, n):
        above = order[:i]
        correct = sum(1 for j in above if truth[j] > truth[order[i]])
        total += correct / i
    return 2 / (n - 1) * total - 1 if n > 1 else 1.0


def _decisions(per_query: dict[str, dict[str, float]], queries: list[str]) -> dict:
    out = {}
    for a, b in combinations(sorted(per_query), 2):
        x = np.array([per_query[a][q] for q in queries])
        y = np.array([per_query[b][q] for q in queries])
        with warnings.catch_warnings():  # nearly equal scores: a p-value, not a warning
            warnings.simplefilter("ignore", RuntimeWarning)
            p = 1.0 if np.allclose(x, y) else stats.ttest_rel(x, y).pvalue
        out[(a, b)] = 0 if p >= 0.05 else (1 if x.mean() > y.mean() else -1)
    return out


def rankings_of(items: list) -> dict[str, dict[str, list[str]]]:
    """engine → query → product ids in rank order, from results (evals/label_sources.py)."""
    out: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for item in sorted(items, key=lambda i: (i.engine, i.query_id, i.rank)):
        out[item.engine][item.query_id].append(item.product_id)
    return {e: dict(qs) for e, qs in out.items()}


def tau_interval(truth: dict[str, dict[str, float]], mine: dict[str, dict[str, float]],
                 queries: list[str], resamples: int = 1000, seed: int = 0
                 ) -> tuple[float, float] | None:
    """A 95% bootstrap interval over queries for Kendall's τ between the engines' mean
    scores under people's labels and under the label source (None when it is undefined:
    fewer than three engines, or a draw where one side scores every engine the same)."""
    names = sorted(truth)
    if len(names) < 3:
        return None
    t = np.array([[truth[e][q] for q in queries] for e in names])
    m = np.array([[mine[e][q] for q in queries] for e in names])
    taus = []
    for draw in each_draw(len(queries), resamples, seed):
        a, b = t[:, draw].mean(axis=1), m[:, draw].mean(axis=1)
        if np.ptp(a) == 0 or np.ptp(b) == 0:
            continue
        taus.append(stats.kendalltau(a, b).statistic)
    if len(taus) < resamples // 2:
        return None
    return percentile_interval(taus)


def meta_evaluate(store: Store, source: str, runs: list[str], split: str = "", k: int = 10,
                  gains: Gains | None = None,
                  engines: dict[str, dict[str, list[str]]] | None = None,
                  resamples: int = 1000) -> dict[str, Any]:
    """Each label source's ordering of the engines against people's. `engines`: the
    user's own rankings (engine → query → product ids); default the five built-in rankers
    over the labelled candidates."""
    gains = gains or Gains()
    cands = candidates(store, source, split)
    engines = engines or build_engines(cands)
    names = list(engines)
    for name in names:  # a query an engine did not answer: an empty ranking
        for qid in cands:
            engines[name].setdefault(qid, [])
    people = human_qrels(store, source, gains, split)
    sources = {"people": people}
    for run_id in runs:
        sources[run_id] = {key: g for key, g in qrels_of(effective_labels(store, run_id),
                                                         gains).items() if key[0] in cands}
    report: dict[str, Any] = {"source": source, "split": split, "k": k,
                              "engines": names, "engine_pairs": len(names) * (len(names) - 1)
                              // 2, "label_sources": {}}
    for name, qrels in sources.items():
        queries = sorted({q for q, _ in qrels})
        if not queries:
            raise LookupError(f"{name} labels none of the candidate pairs")
        truth = {e: per_query_ndcg(people, engines[e], k, queries) for e in names}
        mine = {e: per_query_ndcg(qrels, engines[e], k, queries) for e in names}
        t_means = [float(np.mean(list(truth[e].values()))) for e in names]
        m_means = [float(np.mean(list(mine[e].values()))) for e in names]
        pooled_t = [truth[e][q] for e in names for q in queries]
        pooled_m = [mine[e][q] for e in names for q in queries]
        same = _decisions(truth, queries)
        theirs = _decisions(mine, queries)
        constant = len(set(m_means)) == 1  # every engine scores the same: no ordering
        report["label_sources"][name] = {
            "queries": len(queries), "pairs": len(qrels),
            f"nDCG@{k}": dict(zip(names, [round(v, 4) for v in m_means], strict=True)),
            f"people nDCG@{k} on these queries": dict(
                zip(names, [round(v, 4) for v in t_means], strict=True)),
            "kendall_tau": None if constant else round(
                float(stats.kendalltau(t_means, m_means).statistic), 3),
            "kendall_tau_ci": None if constant else _rounded(
                tau_interval(truth, mine, queries, resamples)),
            "tau_ap": None if constant else round(tau_ap(t_means, m_means), 3),
            "per_query_pearson": round(float(np.corrcoef(pooled_t, pooled_m)[0, 1]), 3)
            if np.std(pooled_m) > 0 else None,
            "significance_agreement": round(sum(same[p] == theirs[p] for p in same)
                                            / len(same), 3) if same else None,
            "significant_decisions": {"agree": sum(same[p] == theirs[p] for p in same),
                                      "of": len(same)}}
    return report


def _rounded(interval: tuple[float, float] | None) -> list[float] | None:
    return None if interval is None else [round(interval[0], 3), round(interval[1], 3)]
