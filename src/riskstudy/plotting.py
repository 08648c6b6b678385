"""Figures of the study. Each function returns a matplotlib Figure; :func:`save` writes a small PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from scipy.stats import norm

from riskstudy.data.panel import Panel

sns.set_theme(style="whitegrid", context="notebook")
# Inline figures of the executed notebooks (committed to git): small PNGs, each notebook well under 2 MB.
plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80})


def save(fig: plt.Figure, path: str | Path, *, dpi: int = 80) -> Path:
    """Save ``fig`` as a small PNG (parents created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def universe_over_time(summary: pd.DataFrame, *, title: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(9, 3))
    summary[["members", "priced"]].plot(ax=ax, lw=1)
    ax.set(title=title, ylabel="instruments", xlabel="")
    return fig


def coverage_heatmap(panel: Panel, *, freq: str = "QE", max_instruments: int = 120) -> plt.Figure:
    """Fraction of days in universe per instrument and period (instruments sorted by coverage)."""
    cov = panel.frame("member").astype(float).resample(freq).mean().T
    cov = cov.loc[cov.mean(1).sort_values(ascending=False).index]
    if len(cov) > max_instruments:
        cov = cov.iloc[np.linspace(0, len(cov) - 1, max_instruments).astype(int)]
    fig, ax = plt.subplots(figsize=(9, 4))
    sns.heatmap(cov.values, ax=ax, cmap="viridis", vmin=0, vmax=1, cbar_kws={"label": "membership share"})
    step = max(1, cov.shape[1] // 10)
    ax.set_xticks(np.arange(0, cov.shape[1], step) + 0.5, [d.strftime("%Y") for d in cov.columns[::step]], rotation=0)
    ax.set_yticks([])
    ax.set(title=f"Universe coverage ({len(cov)} of {panel.shape[1]} instruments shown)", ylabel="instrument", xlabel="")
    return fig


def return_distribution(panel: Panel) -> plt.Figure:
    r = panel["ret"][panel.member]
    r = r[np.isfinite(r)]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    axes[0].hist(np.clip(r, -0.2, 0.2), bins=200, color="C0")
    axes[0].set(title="daily member returns (clipped at ±20%)", yscale="log")
    q = np.linspace(0.001, 0.999, 200)
    sd = r.std()
    axes[1].plot(norm.ppf(q) * sd, np.quantile(r, q), ".", ms=3)
    axes[1].plot(norm.ppf(q) * sd, norm.ppf(q) * sd, "k--", lw=0.8)
    axes[1].set(title="QQ vs normal", xlabel="normal quantile", ylabel="return quantile")
    fig.tight_layout()
    return fig


def sector_mix(panel: Panel) -> plt.Figure | None:
    if panel.sector is None:
        return None
    counts = panel.frame("member").T.groupby(panel.sector.fillna("Unknown")).sum().T.resample("YE").mean()
    fig, ax = plt.subplots(figsize=(9, 3.5))
    counts.plot.area(ax=ax, lw=0, cmap="tab20")
    ax.legend(loc="center left", bbox_to_anchor=(1, 0.5), fontsize=8)
    ax.set(title="Average members per sector", ylabel="instruments", xlabel="")
    return fig


def split_timeline(dates: pd.DatetimeIndex, windows: dict[str, tuple[pd.Timestamp, pd.Timestamp]]) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(9, 1.6))
    ax.axvspan(dates[0], dates[-1], color="0.9", label="panel")
    for i, (name, (lo, hi)) in enumerate(windows.items()):
        ax.axvspan(lo, hi, ymin=0.2, ymax=0.8, color=f"C{i}", alpha=0.8, label=f"{name}: {lo.date()} .. {hi.date()}")
    ax.set_yticks([])
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=4, fontsize=8)
    ax.set(title="Train / valid / test windows")
    return fig


def lines(df: pd.DataFrame, *, title: str, ylabel: str = "", figsize=(9, 3.5), logy: bool = False) -> plt.Figure:
    """Generic line chart of the columns of ``df``."""
    fig, ax = plt.subplots(figsize=figsize)
    df.plot(ax=ax, lw=1.2, logy=logy)
    ax.set(title=title, ylabel=ylabel, xlabel="")
    ax.legend(fontsize=8, loc="best")
    return fig


def learning_curves(history: pd.DataFrame, summary: pd.DataFrame, *, title: str, metric: str = "valid_r2") -> plt.Figure:
    """Validation score against optimizer steps, one panel per K, one colour per seed.

    ``history`` has one row per (run, epoch) with columns ``k, seed, variant, steps, <metric>``;
    ``summary`` one row per run with ``k, seed, variant, valid_r2_init`` (the untrained control's
    score, drawn at step 0 and as a dashed line). Variants other than ``"network"`` (e.g. the
    linear probe) are dotted.
    """
    ks = sorted(summary.k.unique())
    fig, axes = plt.subplots(1, len(ks), figsize=(4.6 * len(ks), 3.4), squeeze=False, sharey=True)
    seeds = sorted(summary.seed.unique())
    colours = dict(zip(seeds, sns.color_palette(n_colors=len(seeds))))
    for ax, k in zip(axes[0], ks):
        for _, run in summary.loc[summary.k == k].iterrows():
            h = history.loc[(history.k == k) & (history.seed == run.seed) & (history.variant == run.variant)]
            x = np.r_[0, h.steps.to_numpy()]
            y = 100 * np.r_[run.valid_r2_init, h[metric].to_numpy()]
            net = run.variant == "network"
            ax.plot(x, y, ls="-" if net else ":", marker="o" if net else None, ms=3, lw=1.2, color=colours[run.seed],
                    label=f"seed {run.seed}" if net else f"seed {run.seed} {run.variant}")
            if net:
                ax.axhline(100 * run.valid_r2_init, ls="--", lw=0.8, color=colours[run.seed])
        ax.set(title=f"K = {k} (dashed: untrained)", xlabel="optimizer steps", ylabel="validation R^2 (%)")
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def r2_by_k(frame: pd.DataFrame, *, title: str, metrics: tuple[str, ...] = ("r2_total", "r2_pred")) -> plt.Figure:
    """R^2 (%) against K, one line per model, one panel per metric.

    ``frame`` is :func:`riskstudy.cae.study.metrics_frame`'s long table (``model, K, <metric>`` and,
    for seeded models, ``<metric>_min`` / ``<metric>_max``, drawn as a band over seeds).
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.6), squeeze=False)
    models = list(dict.fromkeys(frame.model))
    colours = dict(zip(models, sns.color_palette(n_colors=len(models))))
    for ax, m in zip(axes[0], metrics):
        for model in models:
            d = frame.loc[frame.model == model].sort_values("K")
            ax.plot(d.K, 100 * d[m], marker="o", ms=4, lw=1.3, color=colours[model], label=model)
            if f"{m}_min" in d and d[f"{m}_min"].notna().any():
                ax.fill_between(d.K, 100 * d[f"{m}_min"], 100 * d[f"{m}_max"], color=colours[model], alpha=0.15)
        ax.axhline(0, color="grey", lw=0.6)
        ax.set(title=m, xlabel="K", ylabel="R^2 (%)")
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def bars(df: pd.DataFrame, *, title: str, ylabel: str = "", err: pd.DataFrame | None = None, figsize=(9, 3.5)) -> plt.Figure:
    """Grouped bar chart (index = groups, columns = series), optional error bars."""
    fig, ax = plt.subplots(figsize=figsize)
    df.plot.bar(ax=ax, yerr=err, capsize=2, rot=0)
    ax.set(title=title, ylabel=ylabel, xlabel=df.index.name or "")
    return fig


def exposure_snapshot(exposures: np.ndarray, names: list[str], *, title: str) -> plt.Figure:
    """Distribution of each factor's exposures on one day (``exposures (N, K)``) and their correlation."""
    ok = np.isfinite(exposures).all(1)
    df = pd.DataFrame(exposures[ok], columns=names)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), gridspec_kw={"width_ratios": [3, 2]})
    sns.boxplot(data=df, ax=axes[0], fliersize=1)
    axes[0].set(title=title, ylabel="exposure")
    axes[0].tick_params(axis="x", rotation=45)
    sns.heatmap(df.corr(), ax=axes[1], cmap="RdBu_r", vmin=-1, vmax=1, cbar=False, annot=len(names) <= 10, fmt=".1f")
    axes[1].set(title="cross-sectional correlation")
    fig.tight_layout()
    return fig
