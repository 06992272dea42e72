"""Figures: arrays in, matplotlib Figure out, and a Figure → inline SVG string.

Nothing here computes statistics; CI bands are passed in.
"""

from __future__ import annotations

import io
import re

import matplotlib

matplotlib.use("Agg")  # No display: figures are only ever written as SVG text.
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

plt.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False,
                     "axes.spines.right": False})
# Stable per-run SVG ids and no timestamp, so the same results give the same report bytes.
plt.rcParams["svg.hashsalt"] = "bench"

PALETTE = plt.get_cmap("tab20").colors


def color_for(index: int):
    return PALETTE[(2 * index) % len(PALETTE)] if index < 10 else PALETTE[(2 * index + 1) % 20]


def figure_to_svg(fig) -> str:
    """Render `fig` as an inline <svg> element (no XML header, no external references) and close it."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):] if "<svg" in text else text


def curves_with_bands(series: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
                      *, xlabel: str, ylabel: str, title: str = "", logx: bool = False):
    """Plot one line per label with a shaded band.

    Args:
        series: label → (x, center, low, high), each of shape (num_points,).

    Returns:
        The matplotlib Figure.
    """
    fig, ax = plt.subplots(figsize=(8.4, 4.0))
    for index, (label, (x, center, low, high)) in enumerate(series.items()):
        color = color_for(index)
        ax.plot(x, center, label=label, color=color, linewidth=1.4)
        ax.fill_between(x, low, high, color=color, alpha=0.18, linewidth=0)
    if logx:
        ax.set_xscale("symlog", linthresh=1)
    return _finish(fig, ax, xlabel, ylabel, title, len(series))


def _finish(fig, ax, xlabel: str, ylabel: str, title: str, num_entries: int):
    """Label the axes, add the title and the legend, and return the tightened figure."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    _legend_outside(ax, num_entries)
    fig.tight_layout()
    return fig


def _legend_outside(ax, num_entries: int) -> None:
    """Put the legend right of the axes, so that it never hides a curve."""
    ax.legend(fontsize=8, ncol=1 if num_entries <= 14 else 2, frameon=False, loc="upper left",
              bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def strip_plot(groups: dict[str, np.ndarray], *, ylabel: str, title: str = ""):
    """Plot every seed's value as a dot per group, with the group median as a bar."""
    fig, ax = plt.subplots(figsize=(max(4.0, 0.55 * len(groups) + 1.5), 3.4))
    offsets = np.random.default_rng(0).uniform(-0.18, 0.18, size=4096)
    for index, (label, values) in enumerate(groups.items()):
        values = np.asarray(values, dtype=float)
        values = values[np.isfinite(values)]
        ax.scatter(index + offsets[:len(values)], values, s=9, color=color_for(index), alpha=0.8)
        if len(values):
            ax.hlines(np.median(values), index - 0.3, index + 0.3, color="black", linewidth=1.2)
    ax.set_xticks(range(len(groups)), list(groups), rotation=35, ha="right")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def step_curves(series: dict[str, tuple], *, xlabel: str, ylabel: str, title: str = ""):
    """Plot step functions, e.g. Kaplan–Meier curves: label → (times, values[, low, high]).

    With low and high, a shaded step band is drawn (NaN bounds leave gaps).
    """
    fig, ax = plt.subplots(figsize=(8.4, 4.0))
    for index, (label, curve) in enumerate(series.items()):
        x, y = curve[0], curve[1]
        color = color_for(index)
        ax.step(x, y, where="post", label=label, color=color, linewidth=1.4)
        if len(curve) == 4:
            ax.fill_between(x, curve[2], curve[3], step="post", color=color, alpha=0.12,
                            linewidth=0)
    return _finish(fig, ax, xlabel, ylabel, title, len(series))


def critical_difference(average_ranks: dict[str, float], cd: float, cliques: list[list[str]],
                        *, title: str = ""):
    """Draw a critical-difference diagram (Demšar 2006): ranks on an axis, CD bar, cliques."""
    names = sorted(average_ranks, key=average_ranks.get)
    k = len(names)
    fig, ax = plt.subplots(figsize=(6.4, 0.9 + 0.28 * k))
    ax.set_xlim(1 - 0.2, k + 0.2)
    ax.set_ylim(-(k + 2), 2)
    ax.axhline(0, color="black", linewidth=1)
    for r in range(1, k + 1):
        ax.text(r, 0.5, str(r), ha="center", fontsize=8)
    for i, name in enumerate(names):
        rank = average_ranks[name]
        y = -(i + 1)
        ax.plot([rank, rank], [0, y], color="grey", linewidth=0.8)
        ax.text(rank + 0.05, y, f"{name} ({rank:.2f})", va="center", fontsize=8)
    ax.plot([1, 1 + cd], [1.4, 1.4], color="black", linewidth=2)
    ax.text(1 + cd / 2, 1.6, f"CD = {cd:.2f}", ha="center", fontsize=8)
    for j, clique in enumerate(cliques):
        ranks = [average_ranks[n] for n in clique]
        ax.plot([min(ranks), max(ranks)], [-0.3 - 0.25 * j] * 2, color="black", linewidth=3)
    ax.axis("off")
    if title:
        ax.set_title(title)
    return fig
