"""Report charts as inline SVG (matplotlib, Agg backend): no external assets, opens offline."""

from __future__ import annotations

import io
import math
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from raer.store.scale import CHART_NAMES, ORDERED  # noqa: E402

SHORT = [CHART_NAMES[label] for label in ORDERED]


def _svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def confusion_heatmap(matrix: list[list[int]], title: str) -> str:
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(3), SHORT)
    ax.set_yticks(range(3), SHORT)
    ax.set_xlabel("judge")
    ax.set_ylabel("human majority")
    ax.set_title(title, fontsize=10)
    peak = max(max(row) for row in matrix) or 1
    for r, row in enumerate(matrix):
        for c, value in enumerate(row):
            ax.text(c, r, str(value), ha="center", va="center",
                    color="white" if value > peak / 2 else "black")
    fig.colorbar(image, ax=ax, shrink=0.8)
    return _svg(fig)


def agreement_bars(groups: dict[str, dict[str, Any]], title: str) -> str:
    names = [n for n in groups if not math.isnan(groups[n]["agreement"])]
    values = [100 * groups[n]["agreement"] for n in names]
    low = [100 * groups[n]["agreement_ci"][0] for n in names]
    high = [100 * groups[n]["agreement_ci"][1] for n in names]
    errors = [[max(0, v - lo) for v, lo in zip(values, low, strict=True)],
              [max(0, hi - v) for v, hi in zip(values, high, strict=True)]]
    fig, ax = plt.subplots(figsize=(6.4, 0.45 * len(names) + 1))
    ax.barh(range(len(names)), values, xerr=errors, color="#4a7ebb", capsize=3)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("agreement with human majority, % (95% CI over queries)")
    ax.set_title(title, fontsize=10)
    for y, v in enumerate(values):
        ax.text(min(v + 1, 92), y, f"{v:.1f}", va="center", fontsize=8)
    return _svg(fig)


def label_distribution(judge: dict[str, int], human: dict[str, int], title: str) -> str:
    labels = ORDERED + ["cannot judge", "failed"]
    fig, ax = plt.subplots(figsize=(6.4, 2.8))
    xs = range(len(labels))
    ax.bar([x - 0.2 for x in xs], [human.get(label, 0) for label in labels], width=0.4,
           label="human majority", color="#999999")
    ax.bar([x + 0.2 for x in xs], [judge.get(label, 0) for label in labels], width=0.4,
           label="judge", color="#4a7ebb")
    ax.set_xticks(list(xs), SHORT + ["cannot judge", "failed"], fontsize=8)
    ax.set_ylabel("pairs")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return _svg(fig)


def usage_by_node(rows: list[dict[str, Any]], title: str) -> str:
    names = [f"{r['node']}\n{r['model']}" for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(8, 0.5 * len(rows) + 1.2))
    axes[0].barh(range(len(rows)), [r["tokens"] for r in rows], color="#4a7ebb")
    axes[0].set_title("tokens", fontsize=9)
    axes[1].barh(range(len(rows)), [r["model_seconds"] for r in rows], color="#d08c3a")
    axes[1].set_title("model time, s", fontsize=9)
    for ax in axes:
        ax.set_yticks(range(len(rows)), names if ax is axes[0] else [""] * len(rows),
                      fontsize=7)
        ax.invert_yaxis()
    fig.suptitle(title, fontsize=10)
    return _svg(fig)


def trend_lines(series: dict[str, list[dict[str, Any]]], measure: str) -> str:
    """Each engine's measure over its stored evaluations, with the 95% intervals."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for engine, points in series.items():
        xs = list(range(1, len(points) + 1))
        ax.plot(xs, [p["mean"] for p in points], marker="o", label=engine or "(none)")
        ax.fill_between(xs, [p["low"] for p in points], [p["high"] for p in points], alpha=0.2)
    ax.set_xlabel("evaluation (oldest first)")
    ax.set_ylabel(measure)
    ax.set_title(f"{measure} over time")
    ax.legend(fontsize=8)
    return _svg(fig)


def calibration_panels(reliability: dict[str, Any], points: list[dict[str, Any]],
                       chosen: dict[str, Any] | None, title: str) -> str:
    """Left: the reliability diagram (accuracy per confidence bin, the diagonal is perfect
    calibration, dot size = pairs). Right: the risk–coverage curve (agreement of the kept
    pairs against the share sent to people), with the chosen threshold marked."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8))
    left.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1)
    bins = reliability["bins"]
    left.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], color="#4a7ebb")
    left.scatter([b["confidence"] for b in bins], [b["accuracy"] for b in bins],
                 s=[20 + 200 * b["pairs"] / reliability["pairs"] for b in bins], color="#4a7ebb")
    left.set_xlim(0, 1)
    left.set_ylim(0, 1)
    left.set_xlabel("judge confidence")
    left.set_ylabel("share agreeing with people")
    left.set_title(f"reliability (ECE {reliability['ece']:.3f})", fontsize=10)
    kept = [p for p in points if p["kept_agreement"] is not None]
    right.plot([p["review_share"] for p in kept], [p["kept_agreement"] for p in kept],
               marker=".", color="#d08c3a")
    if chosen is not None and chosen.get("kept_agreement") is not None:
        right.scatter([chosen["review_share"]], [chosen["kept_agreement"]], color="black",
                      zorder=3, label=f"review_below {chosen['review_below']:.2f}")
        right.legend(fontsize=8)
    right.set_xlim(0, 1)
    right.set_xlabel("share of pairs sent to people")
    right.set_ylabel("agreement of the pairs kept")
    right.set_title("risk–coverage", fontsize=10)
    fig.suptitle(title, fontsize=10)
    return _svg(fig)
