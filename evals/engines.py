"""Evaluate search engines with a run's labels: measures per engine, intervals, coverage.

The labels are the run's effective labels: a resolved review's label first, then the
judge's label (for done pairs and for escalated ones nobody has reviewed yet, counted
apart). "cannot judge", failed and pending pairs are unjudged; `unjudged="exclude"` drops
them from the rankings (condensed lists), `unjudged="irrelevant"` keeps them with gain 0,
as trec_eval does with documents missing from the qrels.

The IR measures come from ir-measures over pytrec_eval (trec_eval's own code): nDCG@k with
the gains as relevance grades, P@k counting highly relevant (and, as "P+sub@k",
substitutes too), RR over highly relevant, Judged@k. ERR@k is computed here (Chapelle et
al. 2009, graded by the gains): ir-measures has it only through gdeval, a Perl script that
cannot read the runs it writes on this machine. The share of irrelevant results in the top k
is a count of labels, not a measure. Intervals are percentile bootstraps over queries, on
per-query values with numpy.
"""

from __future__ import annotations

import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import ir_measures
import numpy as np
from ir_measures import RR, Judged, P, Qrel, ScoredDoc, nDCG

from raer.evals.resampling import all_draws, percentile_interval
from raer.evals.rows import JudgedPair
from raer.store import Store
from raer.store.reviews import effective_label
from raer.store.scale import DEFAULT_GAINS, LABELS

DEFAULT_K = (5, 10, 20)
RESAMPLES = 1000


@dataclass(frozen=True)
class Gains:
    highly_relevant: int = DEFAULT_GAINS["highly relevant"]
    substitute: int = DEFAULT_GAINS["acceptable substitute"]
    irrelevant: int = DEFAULT_GAINS["irrelevant"]
    gain: str = "linear"
    """nDCG's gain of a grade g: g (linear, trec_eval) or 2^g − 1 (exponential: Elasticsearch's
    and OpenSearch's `_rank_eval` dcg, the Search Relevance Workbench, Burges et al.)."""
    relevant_at: int | None = None
    """The grade from which P@k and MRR count a result as relevant (None: highly relevant's
    grade; SRW counts any grade above 0, i.e. 1)."""

    @property
    def relevant(self) -> int:
        return self.highly_relevant if self.relevant_at is None else self.relevant_at

    def ndcg_gains(self) -> dict[int, int] | None:
        """ir-measures' gain map for exponential gain; None: grades as gains."""
        if self.gain == "linear":
            return None
        return {g: 2 ** g - 1 for g in sorted({self.highly_relevant, self.substitute,
                                                   self.irrelevant})}

    @classmethod
    def parse(cls, text: str) -> Gains:
        """"2,1,0": highly relevant, acceptable substitute, irrelevant (integers, as
        trec_eval's grades are)."""
        try:
            hr, sub, ir = (int(v) for v in text.split(","))
        except ValueError as exc:
            raise ValueError(f"gains must be three integers 'HR,SUB,IRR', not {text!r}") from exc
        if not hr >= sub >= ir >= 0 or hr == 0:
            raise ValueError(f"gains must satisfy HR >= SUB >= IRR >= 0 and HR > 0: {text!r}")
        return cls(hr, sub, ir)

    def of(self, label: str) -> int:
        return dict(zip(LABELS, (self.highly_relevant, self.substitute, self.irrelevant),
                        strict=True))[label]


@dataclass
class Labelled(JudgedPair):
    """One engine result with its effective label and where the label came from."""

    rank: int
    product_id: str
    title: str
    label: str | None
    source: str  # reviewer | judge | judge (escalated, unreviewed) | unjudged: <why>
    reasoning: str


def effective_labels(store: Store, run_id: str) -> list[Labelled]:
    out = []
    for r in store.engine_rows(run_id):
        effective = effective_label(r)
        label = effective.label
        # coverage counts kinds (reviewer, judge, …), and each reason a pair went unjudged
        source = effective.provenance.partition(":")[0] if label else effective.provenance
        out.append(Labelled(r["id"], r["query_id"], r["query"], r["language"],
                            r["query_type"] or "", r["engine"] or "", r["rank"] or 0,
                            r["product_id"], r["title"], label, source, r["reasoning"] or ""))
    return out


def human_qrels(store: Store, source: str, gains: Gains, split: str = "",
                ties: str = "median") -> dict[tuple[str, str], int]:
    """The one reader of people's labels as graded qrels: per (query, product), the majority
    of its annotators' labels (ties broken by `ties`), as a grade. `raer export qrels
    --human`, meta-eval and PPI all read people's grades here (they had three readers)."""
    from raer.evals.agreement import majority_vote

    grades = {pair: gains.of(majority_vote(labels, ties))
              for pair, labels in store.human_labels_by_pair(source, split).items()
              if labels and all(label in LABELS for label in labels.values())}
    if not grades:
        raise LookupError(f"no human labels from source {source!r}"
                          + (f" in split {split!r}" if split else ""))
    return grades


def qrels_of(items: list[Labelled], gains: Gains) -> dict[tuple[str, str], int]:
    """One grade per (query, product): a reviewer's label wins, else the most common of the
    engines' labels for it (the same judge input gives the same label, so they agree)."""
    votes: dict[tuple[str, str], Counter] = defaultdict(Counter)
    reviewed: dict[tuple[str, str], str] = {}
    for item in items:
        if item.label is None:
            continue
        votes[(item.query_id, item.product_id)][item.label] += 1
        if item.source == "reviewer":
            reviewed[(item.query_id, item.product_id)] = item.label
    return {key: gains.of(reviewed.get(key) or counter.most_common(1)[0][0])
            for key, counter in votes.items()}


def err_at(grades: list[int], k: int, max_grade: int) -> float:
    """Expected reciprocal rank at k (Chapelle et al. 2009): a user stops at rank r with
    probability (2^g - 1) / 2^max_grade."""
    err, keep_going = 0.0, 1.0
    for r, g in enumerate(grades[:k], start=1):
        stop = (2 ** g - 1) / 2 ** max_grade
        err += keep_going * stop / r
        keep_going *= 1 - stop
    return err


@dataclass
class EngineResult:
    engine: str
    queries: list[str]
    per_query: dict[str, dict[str, float]]  # measure -> query id -> value
    coverage: dict[str, int]
    groups: dict[str, dict[str, list[str]]] = field(default_factory=dict)


def measure_names(ks: tuple[int, ...]) -> list[str]:
    names = []
    for k in ks:
        names += [f"nDCG@{k}", f"P@{k}", f"P+sub@{k}", f"ERR@{k}", f"irrelevant@{k}",
                  f"judged@{k}"]
    return names + ["MRR"]


def evaluate_engines(store: Store, run_id: str, *, engines: list[str] | None = None,
                     ks: tuple[int, ...] = DEFAULT_K, gains: Gains = Gains(),
                     unjudged: str = "exclude",
                     items: list[Labelled] | None = None,
                     qrels: dict[tuple[str, str], int] | None = None
                     ) -> dict[str, EngineResult]:
    """`items`: the results with their labels (default: the run's effective labels).
    `qrels`: the grades the ideal ranking is built from (default: the labels of every
    result in `items`, the judged pool; evals/label_sources.py gives the label source's
    own for `--ideal labels`)."""
    if unjudged not in ("exclude", "irrelevant"):
        raise ValueError("unjudged must be 'exclude' or 'irrelevant'")
    items = effective_labels(store, run_id) if items is None else items
    qrels = qrels_of(items, gains) if qrels is None else qrels
    by_engine: dict[str, list[Labelled]] = defaultdict(list)
    for item in items:
        by_engine[item.engine].append(item)
    wanted = engines or sorted(by_engine)
    missing = [e for e in wanted if e not in by_engine]
    if missing:
        raise LookupError(f"{f'run {run_id}' if run_id else 'the results'} have no results "
                          f"for engine(s) {missing}; they have {sorted(by_engine)}")
    qrel_list = [Qrel(q, d, g) for (q, d), g in qrels.items()]
    results = {}
    for engine in wanted:
        results[engine] = _one_engine(engine, by_engine[engine], qrels, qrel_list, ks, gains,
                                      unjudged)
    return results


def _one_engine(engine: str, items: list[Labelled], qrels: dict[tuple[str, str], int],
                qrel_list: list[Qrel], ks: tuple[int, ...], gains: Gains,
                unjudged: str) -> EngineResult:
    ranked: dict[str, list[Labelled]] = defaultdict(list)
    for item in sorted(items, key=lambda i: (i.query_id, i.rank)):
        if item.label is None and unjudged == "exclude":
            continue
        ranked[item.query_id].append(item)
    queries = sorted({i.query_id for i in items})
    run = [ScoredDoc(q, i.product_id, float(-pos)) for q, lst in ranked.items()
           for pos, i in enumerate(lst)]
    ndcg = nDCG(gains=gains.ndcg_gains()) if gains.ndcg_gains() else nDCG
    relevant = max(gains.relevant, 1)
    measures: list[Any] = [RR(rel=relevant)]
    for k in ks:
        measures += [ndcg @ k, P(rel=relevant) @ k, P(rel=max(gains.substitute, 1)) @ k,
                     Judged @ k]
    per_query: dict[str, dict[str, float]] = defaultdict(dict)
    names = {RR(rel=relevant): "MRR"}
    for k in ks:
        # P(rel=…) of two equal thresholds is one measure: P+sub@k is then P@k's twin
        names.update({ndcg @ k: f"nDCG@{k}", P(rel=max(gains.substitute, 1)) @ k:
                      f"P+sub@{k}", P(rel=relevant) @ k: f"P@{k}", Judged @ k: f"judged@{k}"})
    for metric in ir_measures.iter_calc(measures, qrel_list, run):
        per_query[names[metric.measure]][metric.query_id] = metric.value
    for k in ks:  # one threshold for both: the same values under both names
        for a, b in ((f"P@{k}", f"P+sub@{k}"), (f"P+sub@{k}", f"P@{k}")):
            if a not in per_query and b in per_query:
                per_query[a] = dict(per_query[b])
    for k in ks:
        for q in queries:
            lst = ranked.get(q, [])[:k]
            grades = [qrels.get((q, i.product_id), 0) for i in lst]
            per_query[f"ERR@{k}"][q] = err_at(grades, k, gains.highly_relevant)
            bad = sum(1 for i in lst if i.label == "irrelevant"
                      or (i.label is None and unjudged == "irrelevant"))
            per_query[f"irrelevant@{k}"][q] = bad / len(lst) if lst else 0.0
    # queries with nothing left to rank score 0 (trec_eval leaves them out; we do not)
    for values in per_query.values():
        for q in queries:
            values.setdefault(q, 0.0)
    coverage = Counter(i.source for i in items)
    groups: dict[str, dict[str, list[str]]] = {"language": defaultdict(list),
                                               "query type": defaultdict(list)}
    firsts = {}
    for item in items:
        firsts.setdefault(item.query_id, item)
    for q in queries:
        first = firsts[q]
        groups["language"][first.language].append(q)
        if first.query_type:
            groups["query type"][first.query_type].append(q)
    return EngineResult(engine, queries, dict(per_query),
                        {"pairs": len(items), **dict(coverage)},
                        {k: dict(v) for k, v in groups.items() if len(v) > 1})


def bootstrap_mean(values: np.ndarray, resamples: int = RESAMPLES,
                   seed: int = 0) -> tuple[float, float, float]:
    """(mean, 2.5th, 97.5th percentile of resampled means) over queries."""
    if len(values) == 0:
        return 0.0, 0.0, 0.0
    means = values[all_draws(len(values), resamples, seed)].mean(axis=1)
    low, high = percentile_interval(means)
    return float(values.mean()), low, high


def summary(result: EngineResult, queries: list[str] | None = None,
            resamples: int = RESAMPLES) -> dict[str, dict[str, float]]:
    chosen = queries or result.queries
    out = {}
    for name, values in result.per_query.items():
        mean, low, high = bootstrap_mean(np.array([values[q] for q in chosen]), resamples)
        out[name] = {"mean": round(mean, 4), "low": round(low, 4), "high": round(high, 4)}
    return out


def offending(result_items: list[Labelled], query_id: str, k: int) -> list[dict[str, Any]]:
    """Why a query scores low: irrelevant products in the top k, relevant ones below it."""
    ranked = sorted((i for i in result_items if i.query_id == query_id), key=lambda i: i.rank)
    out = []
    for pos, item in enumerate(ranked, start=1):
        top = pos <= k
        if (top and item.label == "irrelevant") or (not top and item.label == "highly relevant"):
            out.append({"rank": item.rank, "product_id": item.product_id, "title": item.title,
                        "label": item.label, "why": "irrelevant in the top k" if top
                        else "highly relevant but ranked below k",
                        "reasoning": item.reasoning.split(". ")[0][:200],
                        "judgment_id": item.judgment_id})
    return out


LOWER_IS_BETTER = ("irrelevant@",)
"""Measures where a lower value is better: a candidate wins a query by lowering them."""


def paired_difference(base: dict[str, float], cand: dict[str, float], queries: list[str],
                      seed: int = 0, lower_is_better: bool = False) -> dict:
    """A candidate's per-query values against the baseline's on the same queries: the
    mean delta with its bootstrap interval over queries, a paired permutation test and a
    paired t-test, wins/losses/ties and the minimal detectable effect (80% power)."""
    a = np.array([base[q] for q in queries])
    b = np.array([cand[q] for q in queries])
    delta = b - a
    from scipy import stats

    mean, low, high = bootstrap_mean(delta, seed=seed)
    if np.allclose(delta, 0):
        p_perm = p_t = 1.0
    else:
        p_perm = float(stats.permutation_test(
            (b, a), lambda x, y, axis: np.mean(x - y, axis=axis), vectorized=True,
            permutation_type="samples", n_resamples=9999, random_state=seed).pvalue)
        with warnings.catch_warnings():  # nearly equal values: a p-value, not a warning
            warnings.simplefilter("ignore", RuntimeWarning)
            p_t = float(stats.ttest_rel(b, a).pvalue)
    sd = float(delta.std(ddof=1)) if len(delta) > 1 else 0.0
    mde = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * sd / np.sqrt(max(len(delta), 1))
    return {"baseline": round(float(a.mean()), 4), "candidate": round(float(b.mean()), 4),
            "delta": round(mean, 4), "low": round(low, 4), "high": round(high, 4),
            "p_permutation": p_perm, "p_t": p_t,
            "wins": int(((-delta if lower_is_better else delta) > 1e-12).sum()),
            "losses": int(((-delta if lower_is_better else delta) < -1e-12).sum()),
            "lower_is_better": lower_is_better,
            "ties": int((np.abs(delta) <= 1e-12).sum()),
            "min_detectable_effect": round(float(mde), 4)}


def test_family(deltas: dict[str, list[float]]) -> list[str]:
    """The measures that are tests at all: one whose per-query differences are all zero
    tests nothing, and one whose differences equal another's (judged@k when everything is
    judged, P+sub@k equal to P@k) is that test again. Counted in the Benjamini–Hochberg
    family, they inflated it (30 → 42 tests, p 0.363 → 0.411)."""
    family: list[str] = []
    seen: list[np.ndarray] = []
    for name, values in deltas.items():
        vector = np.asarray(values, dtype=float)
        if np.allclose(vector, 0):
            continue
        if any(np.allclose(vector, other) for other in seen):
            continue
        seen.append(vector)
        family.append(name)
    return family


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """p-values adjusted for one family of tests (Benjamini–Hochberg, scipy's)."""
    from scipy import stats

    if not p_values:
        return []
    return [float(p) for p in stats.false_discovery_control(p_values)]
