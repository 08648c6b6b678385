"""Figures of the Sharpe section: training curves, equity curves, drawdowns, a network's weight path."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def validation_curves(runs: list, *, title: str, score: str = "sharpe", ylabel: str = "validation Sharpe (ann.)") -> plt.Figure:
    """Validation ``score`` per epoch of every run (one line per strategy and seed; epoch 0 = untrained).

    A run has ``strategy``, ``seed``, ``history`` (column ``valid_<score>``) and ``valid_<score>_untrained``.
    """
    fig, ax = plt.subplots(figsize=(9, 3.5))
    colors = dict(zip(dict.fromkeys(r.strategy for r in runs), plt.rcParams["axes.prop_cycle"].by_key()["color"] * 3))
    for r in runs:
        y = np.r_[getattr(r, f"valid_{score}_untrained"), r.history[f"valid_{score}"].to_numpy()]
        ax.plot(np.arange(len(y)), y, color=colors[r.strategy], lw=1, alpha=0.8,
                label=r.strategy if r.seed == min(q.seed for q in runs if q.strategy == r.strategy) else None)
    ax.set(title=title, xlabel="epoch", ylabel=ylabel)
    ax.legend(fontsize=7, ncol=3)
    return fig


def equity_curves(paths: pd.DataFrame, *, title: str, capital: float) -> plt.Figure:
    """Capital paths (columns = strategies) on a log axis."""
    fig, ax = plt.subplots(figsize=(9, 4))
    paths.plot(ax=ax, lw=1)
    ax.axhline(capital, color="grey", lw=0.5)
    ax.set(title=title, ylabel="capital", yscale="log")
    ax.legend(fontsize=7, ncol=3)
    return fig


def drawdowns(paths: pd.DataFrame, *, title: str) -> plt.Figure:
    """Drawdown from the running peak of each capital path."""
    fig, ax = plt.subplots(figsize=(9, 3))
    (paths / paths.cummax() - 1.0).plot(ax=ax, lw=1)
    ax.set(title=title, ylabel="drawdown")
    ax.legend(fontsize=7, ncol=3)
    return fig


def weight_path(weights: pd.DataFrame, *, title: str, top: int = 10) -> plt.Figure:
    """Stacked weights held each day (the paper's Figure 6): the ``top`` largest on average, the rest summed."""
    order = weights.mean().sort_values(ascending=False).index
    shown = weights[order[:top]].copy()
    shown["others"] = weights[order[top:]].sum(axis=1)
    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.stackplot(shown.index, shown.T.to_numpy(), labels=[str(c) for c in shown.columns], lw=0)
    ax.set(title=title, ylabel="weight", ylim=(0, max(1.0, float(shown.sum(axis=1).max()))))
    ax.legend(fontsize=6, ncol=6, loc="upper left")
    return fig
