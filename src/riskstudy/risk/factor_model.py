"""Daily factor risk models from exposures: the one place that builds ``Sigma_t = X_t F_t X_t' + D_t``.

For exposures ``X_t`` known at the close of ``t`` (any model: style factors, PCA, DRM):

1. cross-sectional WLS of the returns of ``t + 1`` on ``[country, sectors, X_t]``
   (:func:`riskstudy.risk.regression.cross_sectional_regression`) with weights
   ``sqrt(size)`` clipped at the 95% quantile (:func:`size_and_weights`), giving factor
   returns, t-statistics, R^2 and residuals (:func:`factor_regression`);
2. EWMA/VRA factor covariance ``F_t`` and shrunk EWMA specific variance ``D_t``
   (:func:`riskstudy.risk.covariance.build_risk_models`), kept in factor form
   (:func:`factor_risk_models`).

All of it runs over the rows of an :class:`EvalWindow` (history for the factor returns and
the covariance burn-in, then the test days).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from riskstudy.config import RiskConfig
from riskstudy.data.panel import Panel
from riskstudy.features.weights import regression_weights
from riskstudy.features.windows import trailing_mean
from riskstudy.risk.covariance import RiskModelSeries, build_risk_models
from riskstudy.risk.regression import CrossSectionResult, cross_sectional_regression, design_matrix, lagged

log = logging.getLogger(__name__)

DateLike = date | str | pd.Timestamp


@dataclass
class EvalWindow:
    """The panel rows a factor model is estimated and scored on.

    Attributes
    ----------
    rows : slice
        Panel rows used (history for factor returns and the covariance burn-in, then the test days);
        every array of the pipeline is relative to ``rows``.
    test : ndarray of int (D,)
        Decision days, window-relative; the returns of ``t + 1`` (also in the window) are the outcome.
    """

    rows: slice
    test: np.ndarray

    @classmethod
    def from_dates(
        cls, panel: Panel, *, history_start: DateLike, test_start: DateLike, test_end: DateLike
    ) -> EvalWindow:
        """Rows from ``history_start`` on; decision days ``test_start <= t < test_end`` with ``t + 1`` in the window."""
        rows = panel.date_slice(history_start, None)
        d = panel.dates[rows]
        # decision days t in [test_start, test_end) so that t + 1 <= test_end
        test = np.flatnonzero((d >= pd.Timestamp(test_start)) & (d < pd.Timestamp(test_end)))
        test = test[test + 1 < len(d)]
        return cls(rows, test)


def size_and_weights(panel: Panel, *, size_window: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Size proxy and regression weights of every panel day.

    Returns
    -------
    size : ndarray (T, N)
        Trailing ``size_window``-day mean dollar volume.
    weights : ndarray (T, N)
        ``sqrt(size)`` clipped at its daily 95% quantile over members with a size
        (:func:`riskstudy.features.weights.regression_weights`).
    """
    size = trailing_mean(panel["dollar_volume"], size_window, min_periods=1)
    return size, regression_weights(size, panel.member & np.isfinite(size))


def factor_regression(
    panel: Panel, exposures: np.ndarray, rows: slice, *, factor_names: list[str], use_sectors: bool = True
) -> tuple[CrossSectionResult, np.ndarray]:
    """Regression of each day's returns on the previous day's exposures, over the panel ``rows``.

    Row ``t`` regresses ``r_t`` on ``[country, sectors, X_{t-1}]`` over the stocks in the universe
    on ``t - 1`` and ``t`` with a return and exposures, WLS weights from :func:`size_and_weights`
    known at ``t - 1``.

    Parameters
    ----------
    panel : Panel
        ``T`` days, ``N`` stocks.
    exposures : ndarray (T, N, K)
        ``X_t`` known at the close of ``t`` on the panel calendar (NaN = not covered).
    rows : slice
        Panel rows to use (e.g. :attr:`EvalWindow.rows`); the outputs are relative to them.
    factor_names : list of str
        ``K`` names of the exposure columns.
    use_sectors : bool
        Include the panel's sector dummies (when it has sectors).

    Returns
    -------
    cs : CrossSectionResult
        Over the ``T_w`` window rows, columns ``[country, sectors, factors]``.
    design : ndarray (T_w, N, P)
        The unlagged design ``[country, sectors, X_t]`` known at ``t`` (NaN rows for stocks without
        exposures), the ``X_t`` of the risk model forecasting ``t + 1``.
    """
    codes, labels = panel.sector_codes()
    sectors = codes if (use_sectors and labels) else None
    _, w = size_and_weights(panel)
    X = exposures[rows]
    Xl = lagged(X)
    mask = panel.member[rows] & lagged(panel.member[rows].astype(float)).astype(bool) & np.isfinite(panel["ret"][rows])
    mask &= np.isfinite(Xl).all(-1)
    cs = cross_sectional_regression(
        panel["ret"][rows], np.nan_to_num(Xl), weights=lagged(w[rows]) * mask, mask=mask, sectors=sectors,
        factor_names=factor_names, sector_names=labels if sectors is not None else None,
    )
    n_sec = len(labels) if sectors is not None else None
    design = design_matrix(X, sectors, n_sectors=n_sec)
    design[~np.isfinite(X).all(-1)] = np.nan
    return cs, design


def factor_risk_models(
    panel: Panel,
    exposures: np.ndarray,
    rows: slice,
    *,
    factor_names: list[str],
    risk: RiskConfig,
    use_sectors: bool = True,
) -> tuple[CrossSectionResult, RiskModelSeries]:
    """The regression and the daily factor-form risk models ``Sigma_t = X_t F_t X_t' + D_t`` over ``rows``.

    Parameters
    ----------
    panel, exposures, rows, factor_names, use_sectors
        See :func:`factor_regression`.
    risk : RiskConfig
        Half-lives, VRA, Newey-West lags, eigenfactor adjustment (100 draws when on), specific-risk
        shrinkage, minimum history and seed (:func:`riskstudy.risk.covariance.build_risk_models`).

    Returns
    -------
    cs : CrossSectionResult
        See :func:`factor_regression`.
    series : RiskModelSeries
        ``T_w`` window-relative days; ``series.model(t)`` (a :class:`~riskstudy.risk.model.RiskModel`
        over the day's members) forecasts the returns of ``t + 1``.
    """
    cs, design = factor_regression(panel, exposures, rows, factor_names=factor_names, use_sectors=use_sectors)
    series = build_risk_models(cs, design, risk=risk, mask=panel.member[rows])
    return cs, series
