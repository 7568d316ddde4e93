"""A human ceiling for label sets that publish only an aggregate and a spread per pair.

Some crowd sets give, per pair, the mean (or median) of several raters and their standard
deviation, not the individual ratings. Scoring one rater against the majority of the
others (`evals.agreement.human_leave_one_out`) then needs the ratings, so they are
estimated under a stated assumption:

    ASSUMPTION: the pair's n raters rated independently, each rating drawn from a normal
    distribution with the published aggregate as mean and the published spread as standard
    deviation, rounded to the nearest point of the scale and clipped to it.

For each pair, `draws` sets of n ratings are simulated (numpy, fixed seed), mapped to raer's
labels with the import's own mapping, and the leave-one-out agreement of each simulated
set is averaged. The estimate is stored per label row (`human_labels.loo_estimate`) and
reported as "estimated" wherever it is shown; a spread of 0 gives 1.0 (all raters agreed).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from raer.evals.agreement import ORDER, ORDERED, _leave_one_out

ASSUMPTION = ("estimated from each pair's aggregate and spread: n independent raters, "
              "ratings ~ Normal(aggregate, spread) rounded to the scale")


def estimate_leave_one_out(aggregate: float, spread: float, raters: int,
                           scale: tuple[int, int], to_label: Callable[[str], str | None],
                           draws: int = 200, seed: int = 0, ties: str = "median") -> float:
    """Expected share of raters agreeing with the majority of the other raters."""
    if raters < 2:
        raise ValueError("--raters must be 2 or more for a ceiling")
    low, high = scale
    codes = {}
    for point in range(low, high + 1):
        label = to_label(str(point))
        if label is None:
            raise ValueError(f"the mapping gives no label for scale point {point}")
        codes[point] = ORDER[label]
    if spread <= 0:
        return 1.0
    rng = np.random.default_rng(seed)
    ratings = np.clip(np.rint(rng.normal(aggregate, spread, size=(draws, raters))), low, high)
    lookup = np.array([codes[p] for p in range(low, high + 1)])
    labels = np.sort(lookup[ratings.astype(int) - low], axis=1)
    combos, counts = np.unique(labels, axis=0, return_counts=True)
    hits = sum(n * _leave_one_out(tuple(ORDERED[c] for c in combo), ties)[0]
               for combo, n in zip(combos, counts, strict=True))
    return float(hits / (draws * raters))
