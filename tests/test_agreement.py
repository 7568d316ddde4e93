"""Agreement statistics checked against scikit-learn and krippendorff on fixed inputs, and
the query bootstrap against a case computed by hand."""

import math

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from raer.evals.agreement import (
    Item,
    agreement,
    bootstrap_ci,
    bootstrap_distribution,
    breakdown,
    hard_disagreements,
    majority_vote,
    point_metrics,
)

HR, AS, IR = "highly relevant", "acceptable substitute", "irrelevant"
HUMAN = [HR, HR, AS, IR, IR, HR, AS, AS, IR, HR]
JUDGE = [HR, AS, AS, IR, HR, HR, IR, AS, IR, HR]


def item(i, judge, humans, query="q1", status="done", raw=None, language="en"):
    return Item(judgment_id=f"j{i}", query_id=query, query=query, language=language,
                query_type="", engine="", product_id=f"p{i}", title="t", status=status,
                judge=judge, humans=humans, raw=raw or {})


def fixed_items():
    return [item(i, j, {"A1": h}, query=f"q{i % 3}") for i, (h, j) in
            enumerate(zip(HUMAN, JUDGE, strict=True))]


def test_kappas_match_scikit_learn():
    m = point_metrics(fixed_items())
    codes = {IR: 0, AS: 1, HR: 2}
    h, j = [codes[x] for x in HUMAN], [codes[x] for x in JUDGE]
    assert m["agreement"] == pytest.approx(0.7)
    assert m["kappa"] == pytest.approx(cohen_kappa_score(h, j))
    assert m["kappa_linear"] == pytest.approx(cohen_kappa_score(h, j, weights="linear"))
    assert m["kappa_quadratic"] == pytest.approx(cohen_kappa_score(h, j, weights="quadratic"))


def test_ordinal_alpha_matches_krippendorff():
    m = point_metrics(fixed_items())
    codes = {IR: 0, AS: 1, HR: 2}
    data = np.array([[codes[x] for x in HUMAN], [codes[x] for x in JUDGE]], dtype=float)
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal")
    assert m["alpha_ordinal"] == pytest.approx(expected)


def test_confusion_precision_recall_and_hard_disagreements():
    m = point_metrics(fixed_items())
    # rows human IR, AS, HR; columns judge IR, AS, HR
    assert m["confusion"] == [[2, 0, 1], [1, 2, 0], [0, 1, 3]]
    assert m["per_label"][HR]["precision"] == pytest.approx(3 / 4)
    assert m["per_label"][HR]["recall"] == pytest.approx(3 / 4)
    assert m["per_label"][IR]["recall"] == pytest.approx(2 / 3)
    assert [i.judgment_id for i in hard_disagreements(fixed_items())] == ["j4"]
    assert m["hard_disagreements"] == 1


def test_several_annotators_majority_matches_any_and_the_human_ceiling():
    items = [item(0, HR, {"A1": HR, "A2": AS, "tiebreaker": AS}),
             item(1, AS, {"A1": HR, "A2": AS}),
             item(2, IR, {"A1": IR, "A2": IR})]
    assert majority_vote(items[0].humans) == AS
    assert majority_vote(items[1].humans) == AS  # tie, no tiebreaker: the lower label
    m = point_metrics(items)
    assert m["agreement"] == pytest.approx(2 / 3)
    assert m["matches_any"] == pytest.approx(1.0)
    assert m["human_pairwise"] == pytest.approx(1 / 3)


def test_failed_escalated_and_cannot_judge_are_counted_not_scored():
    items = [item(0, HR, {"A1": HR}), item(1, None, {"A1": HR}, status="failed"),
             item(2, "cannot judge", {"A1": IR}, status="escalated"),
             item(3, IR, {"A1": HR}, status="escalated")]
    m = point_metrics(items)
    assert (m["pairs"], m["judged"], m["failed"], m["cannot_judge"], m["escalated"]) == (
        4, 2, 1, 1, 2)
    assert m["agreement"] == pytest.approx(0.5)
    assert m["agreement_kept"] == pytest.approx(1.0) and m["kept"] == 1


def test_bootstrap_resamples_queries_as_computed_by_hand():
    # q-good: one pair, right; q-bad: three pairs, all wrong. Drawing two queries with
    # replacement gives {good, good} 1/4 → 1.0, {good, bad} 1/2 → 1/4, {bad, bad} 1/4 → 0.
    items = [item(0, HR, {"A1": HR}, query="good")] + [
        item(i, IR, {"A1": HR}, query="bad") for i in range(1, 4)]
    values = bootstrap_distribution(items, agreement, resamples=4000, seed=1)
    share = {v: float(np.mean(values == v)) for v in (1.0, 0.25, 0.0)}
    assert share[1.0] == pytest.approx(0.25, abs=0.03)
    assert share[0.25] == pytest.approx(0.5, abs=0.03)
    assert share[0.0] == pytest.approx(0.25, abs=0.03)
    assert bootstrap_ci(items, agreement, resamples=4000, seed=1) == (0.0, 1.0)


def test_breakdown_groups_by_language_and_query_type():
    items = fixed_items() + [item(99, HR, {"A1": HR}, query="qde", language="de")]
    groups = breakdown(items, resamples=50)
    assert {"overall", "language: en", "language: de"} <= set(groups)
    assert groups["language: de"]["agreement"] == 1.0
    assert math.isnan(groups["language: de"]["kappa"])  # one class: kappa is undefined
