"""Figures of the factor-diagnostics section (notebook 60)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

#: The panels of :func:`factor_profiles`: column of the per-factor table, axis label, reference line.
PANELS: tuple[tuple[str, str, float | None], ...] = (
    ("ic", "IC (Spearman, next day)", 0.0),
    ("ic_t", "IC Newey-West t", None),
    ("vif", "VIF (log)", 5.0),
    ("mean_abs_t", "mean cross-sectional |t|", 2.0),
    ("evr", "explained-variance ratio", None),
)


def factor_profiles(factors: dict[str, pd.DataFrame], *, title: str, max_vif: float = 5.0) -> plt.Figure:
    """One panel per measure (:data:`PANELS`), factor position on x, one marker series per Table-1 row.

    ``factors``: row -> per-factor table (:func:`riskstudy.diagnostics.study.factor_table`).
    """
    fig, axes = plt.subplots(1, len(PANELS), figsize=(3.2 * len(PANELS), 3.4))
    for ax, (col, label, ref) in zip(axes, PANELS):
        for row, t in factors.items():
            ax.plot(np.arange(1, len(t) + 1), t[col].to_numpy(dtype=float), marker="o", ms=3, lw=0.8, label=row)
        if col == "ic_t":
            for y in (-2, 2):
                ax.axhline(y, color="grey", lw=0.6, ls="--")
        elif ref is not None:
            ax.axhline(max_vif if col == "vif" else ref, color="grey", lw=0.6, ls="--")
        if col == "vif":
            ax.set_yscale("log")
        ax.set(title=label, xlabel="factor")
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
