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
from collections import defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

import ir_measures
import numpy as np
from ir_measures import Qrel, ScoredDoc, nDCG
from scipy import stats

from raer.evals.engines import Gains, effective_labels, human_qrels, qrels_of
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


def _per_query_ndcg(qrels: dict[tuple[str, str], int], engine: dict[str, list], k: int,
                    queries: list[str]) -> dict[str, float]:
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
        p = 1.0 if np.allclose(x, y) else stats.ttest_rel(x, y).pvalue
        out[(a, b)] = 0 if p >= 0.05 else (1 if x.mean() > y.mean() else -1)
    return out


def meta_evaluate(store: Store, source: str, runs: list[str], split: str = "", k: int = 10,
                  gains: Gains | None = None) -> dict[str, Any]:
    gains = gains or Gains()
    cands = candidates(store, source, split)
    engines = build_engines(cands)
    people = human_qrels(store, source, gains, split)
    sources = {"people": people}
    for run_id in runs:
        sources[run_id] = {key: g for key, g in qrels_of(effective_labels(store, run_id),
                                                         gains).items() if key[0] in cands}
    report: dict[str, Any] = {"source": source, "split": split, "k": k,
                              "engines": list(ENGINES), "label_sources": {}}
    for name, qrels in sources.items():
        queries = sorted({q for q, _ in qrels})
        if not queries:
            raise LookupError(f"{name} labels none of the candidate pairs")
        truth = {e: _per_query_ndcg(people, engines[e], k, queries) for e in ENGINES}
        mine = {e: _per_query_ndcg(qrels, engines[e], k, queries) for e in ENGINES}
        t_means = [float(np.mean(list(truth[e].values()))) for e in ENGINES]
        m_means = [float(np.mean(list(mine[e].values()))) for e in ENGINES]
        pooled_t = [truth[e][q] for e in ENGINES for q in queries]
        pooled_m = [mine[e][q] for e in ENGINES for q in queries]
        same = _decisions(truth, queries)
        theirs = _decisions(mine, queries)
        constant = len(set(m_means)) == 1  # every engine scores the same: no ordering
        report["label_sources"][name] = {
            "queries": len(queries), "pairs": len(qrels),
            f"nDCG@{k}": dict(zip(ENGINES, [round(v, 4) for v in m_means], strict=True)),
            f"people nDCG@{k} on these queries": dict(
                zip(ENGINES, [round(v, 4) for v in t_means], strict=True)),
            "kendall_tau": None if constant else round(
                float(stats.kendalltau(t_means, m_means).statistic), 3),
            "tau_ap": None if constant else round(tau_ap(t_means, m_means), 3),
            "per_query_pearson": round(float(np.corrcoef(pooled_t, pooled_m)[0, 1]), 3)
            if np.std(pooled_m) > 0 else None,
            "significance_agreement": round(sum(same[p] == theirs[p] for p in same)
                                            / len(same), 3)}
    return report
