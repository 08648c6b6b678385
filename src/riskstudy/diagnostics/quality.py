"""Per-factor quality of a model's exposures through the risk harness's own regression, and adaptive selection.

:func:`factor_quality` runs :func:`riskstudy.risk.factor_model.factor_regression` (the WLS of the
returns of ``t + 1`` on ``[country, sectors, X_t]`` with the harness's weights) over some panel
rows and reports, for each of the model's ``K`` factors: ``evr``
(:func:`~riskstudy.diagnostics.measures.explained_variance_ratio` of its contribution), ``vif``
(:func:`~riskstudy.evaluation.factor_stats.vif` with the regression weights), ``t`` (the design
document's :math:`\\bar f / (s_f / \\sqrt n)` of its factor returns), and the paper's
``mean_abs_t`` / ``pct_abs_t_gt_2`` of the daily cross-sectional t-statistics.

:func:`select` keeps the factors with ``evr >= min_evr``, ``vif <= max_vif`` and ``|t| > min_t``
(the document's defaults 0.1, 5.0, 1.96); :class:`Selected` wraps any factor model and decides on
its training rows only (so the decision is re-made at each fit).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskstudy.data.market import MarketData
from riskstudy.data.panel import Panel
from riskstudy.diagnostics.measures import explained_variance_ratio, mean_t
from riskstudy.evaluation.factor_stats import t_stat_summary, vif
from riskstudy.factors.base import FactorModel
from riskstudy.risk.factor_model import factor_regression, size_and_weights
from riskstudy.risk.regression import lagged


def factor_quality(panel: Panel, exposures: np.ndarray, rows: slice, *, names: list[str]) -> pd.DataFrame:
    """Quality of each factor over the panel ``rows`` (module docstring); ``exposures (T, N, K)`` on the panel calendar.

    Returns
    -------
    DataFrame
        Indexed by factor: ``evr``, ``vif``, ``t``, ``mean_abs_t``, ``pct_abs_t_gt_2`` (fraction), ``n_days``,
        plus the attribute ``attrs["r2"]``: the regressions' pooled uncentred R^2 (every regressor).
    """
    k = len(names)
    cs, design = factor_regression(panel, exposures, rows, factor_names=names)
    regressors = lagged(design)  # row t regresses r_t on the design known at t - 1
    evr = explained_variance_ratio(regressors, cs.factor_returns, panel["ret"][rows], cs.weights)
    _, w = size_and_weights(panel)
    ts = t_stat_summary(cs.t_stats[:, -k:], names)
    prev = slice(max(rows.start - 1, 0), rows.stop - 1)  # the regressors: exposures and weights known at t - 1
    out = pd.DataFrame({
        "evr": evr[-k:],
        "vif": vif(exposures[prev], mask=panel.member[prev], weights=w[prev]),
        "t": mean_t(cs.factor_returns[:, -k:]),
        "mean_abs_t": ts["mean_abs_t"].to_numpy(),
        "pct_abs_t_gt_2": ts["pct_abs_t_gt_2"].to_numpy() / 100.0,
        "n_days": ts["n_days"].to_numpy(),
    }, index=list(names))
    out.attrs["evr_other"] = float(evr[:-k].sum())  # country and sectors
    return out


def select(quality: pd.DataFrame, *, min_evr: float = 0.1, max_vif: float = 5.0, min_t: float = 1.96,
           keep_at_least: int = 1) -> list[str]:
    """Factors passing all three rules, in their order; when fewer than ``keep_at_least`` pass, the
    ``keep_at_least`` with the largest EVR (a risk model needs a factor)."""
    ok = (quality.evr >= min_evr) & (quality.vif <= max_vif) & (quality.t.abs() > min_t)
    kept = list(quality.index[ok])
    if len(kept) < keep_at_least:
        kept = list(quality.evr.sort_values(ascending=False).index[:keep_at_least])
        kept = [n for n in quality.index if n in kept]
    return kept


class Selected(FactorModel):
    """Any factor model reduced to the factors that :func:`select` keeps on its training rows.

    The decision is made inside :meth:`fit`, from the rows it is given only, so it is re-made at
    every refit and nothing after those rows can change it.

    Parameters
    ----------
    base : FactorModel
    min_evr, max_vif, min_t : float
        The rules of :func:`select`.
    decide_on : {"train", "valid"}
        Which rows of :meth:`fit` decide: ``train_rows`` (default) or ``valid_rows`` (for stored
        exposures that start at the validation window, e.g. the DRM's).

    Attributes
    ----------
    quality_ : DataFrame
        :func:`factor_quality` of the base model on the training rows.
    keep_ : list of int
        Columns of the base model kept.
    passed_ : list of str
        The factors passing all three rules (``names_`` is the fallback when none does).
    names_ : list of str
    """

    def __init__(self, base: FactorModel, *, min_evr: float = 0.1, max_vif: float = 5.0, min_t: float = 1.96,
                 decide_on: str = "train") -> None:
        if decide_on not in ("train", "valid"):
            raise ValueError(f"decide_on must be 'train' or 'valid', got {decide_on!r}")
        self.base, self.min_evr, self.max_vif, self.min_t, self.decide_on = base, min_evr, max_vif, min_t, decide_on

    def fit(self, md: MarketData, *, train_rows: np.ndarray, valid_rows: np.ndarray | None = None) -> "Selected":
        self.base.fit(md, train_rows=train_rows, valid_rows=valid_rows)
        decide = train_rows if self.decide_on == "train" else valid_rows
        if decide is None or len(decide) == 0:
            raise ValueError(f"Selected(decide_on={self.decide_on!r}).fit needs {self.decide_on}_rows")
        decide = np.asarray(decide, dtype=np.int64)
        rows = slice(int(decide.min()), int(decide.max()) + 1)
        expo = self.base.full_exposures(md, rows=np.arange(rows.start, rows.stop))
        self.quality_ = factor_quality(md.panel, expo, rows, names=list(self.base.names_))
        if not (self.quality_.n_days > 0).any():
            raise ValueError(f"Selected: the base model has no exposures on its {self.decide_on} rows "
                             f"({md.panel.dates[rows.start].date()} .. {md.panel.dates[rows.stop - 1].date()})")
        kept = select(self.quality_, min_evr=self.min_evr, max_vif=self.max_vif, min_t=self.min_t)
        self.passed_ = select(self.quality_, min_evr=self.min_evr, max_vif=self.max_vif, min_t=self.min_t, keep_at_least=0)
        self.keep_ = [list(self.base.names_).index(n) for n in kept]
        self.names_ = kept
        return self

    def exposures(self, md: MarketData, *, rows: np.ndarray) -> np.ndarray:
        return self.base.exposures(md, rows=rows)[..., self.keep_]
