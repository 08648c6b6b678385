"""Scoring one risk model for Table 1: portfolios, their volatility and the forecast quality.

Every model (Market aside) goes through the same steps:

1. daily risk models: factor models from their exposures
   (:func:`riskstudy.risk.factor_model.factor_risk_models`: WLS regression, EWMA/VRA factor
   covariance, specific variance, ``Sigma_t = X F X' + D`` in factor form); dense estimators
   (Ledoit-Wolf, POET; the sample covariance only where its window is longer than the universe,
   since otherwise it is singular) from a trailing window
   (:func:`riskstudy.risk.estimators.trailing_covariance`, ``N x N``, unavoidable for them);
2. GMV (closed form, :meth:`~riskstudy.risk.model.RiskModel.gmv_weights`) and long-only GMV+
   (CVXPY) re-solved every test day and held for the next day only -- one rule for every row
   (:func:`riskstudy.portfolio.backtest.rebalance_daily`);
3. risk-forecast quality of the same day's model: bias statistics and QLIKE of the GMV and of
   fixed random long-only portfolios (:func:`riskstudy.evaluation.forecast.portfolio_outcomes`).

All linear algebra here is on ``N ~ 300`` matrices, where multi-threaded OpenBLAS costs more
than it gains (measured 2.5-3x slower on 2 cores for the dense estimators), so the evaluation
functions run with one BLAS thread (:func:`one_blas_thread`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from riskstudy.config import DenseConfig, RiskConfig
from riskstudy.data.panel import Panel
from riskstudy.evaluation.forecast import ForecastPanel, bias_band, bias_statistic, portfolio_outcomes, qlike, random_portfolios
from riskstudy.portfolio.backtest import rebalance_daily
from riskstudy.risk.estimators import trailing_covariance
from riskstudy.risk.factor_model import EvalWindow, factor_risk_models
from riskstudy.risk.model import RiskModel
from riskstudy.risk.regression import CrossSectionResult

log = logging.getLogger(__name__)

#: Annualisation of daily volatilities, ``sqrt(252)``.
ANN = np.sqrt(252.0)


def one_blas_thread() -> threadpool_limits:
    """Context manager limiting BLAS (OpenBLAS/MKL used by NumPy/SciPy) to one thread."""
    return threadpool_limits(limits=1, user_api="blas")


@dataclass
class ModelEvaluation:
    """Evaluation of one model over an :class:`~riskstudy.risk.factor_model.EvalWindow`.

    Attributes
    ----------
    name : str
    r2 : Series or None
        Daily R^2 of the regression of day ``t + 1`` returns on exposures at ``t``, indexed by the
        decision day ``t`` (``None`` for dense estimators).
    cs : CrossSectionResult or None
        The regression over the window rows (window-relative; ``None`` for dense estimators).
    gmv_returns, gmv_long_returns : Series
        Next-day returns of the daily GMV and GMV+ portfolios on the test days with a model
        (GMV+ NaN when it was skipped).
    forecast : dict
        Bias statistics and QLIKE (see :func:`_forecast_quality`).
    turnover : dict str -> float
        Mean one-way daily turnover of ``"gmv"`` and ``"gmv_long"`` over the test days.
    """

    name: str
    r2: pd.Series | None
    cs: CrossSectionResult | None
    gmv_returns: pd.Series
    gmv_long_returns: pd.Series
    forecast: dict
    turnover: dict[str, float] = field(default_factory=dict)

    def table1_row(self) -> dict:
        """``r2`` (mean daily R^2), ``gmv_vol`` and ``gmv_long_vol`` (annualised volatilities)."""
        return {
            "r2": None if self.r2 is None else float(self.r2.mean()),
            "gmv_vol": float(self.gmv_returns.std() * ANN),
            "gmv_long_vol": float(self.gmv_long_returns.std() * ANN),
        }


def _forecast_quality(panel: ForecastPanel, *, n_random: int) -> dict:
    """Bias statistics and QLIKE of column 0 (GMV) and the ``n_random`` random portfolios after it.

    Keys: ``bias_gmv``, ``bias_random_mean``, ``random_in_band`` (share of random portfolios with a
    bias statistic in the 95% band), ``qlike_gmv``, ``qlike_random`` (mean over random portfolios),
    ``bias_band`` and ``n_days``; the random ones NaN without random portfolios.
    """
    realised, variance = panel.realised, panel.variance
    bias = bias_statistic(realised, variance)
    lo, hi = bias_band(len(panel.days))
    return {
        "bias_gmv": float(bias[0]),
        "bias_random_mean": float(np.nanmean(bias[1:])) if n_random else float("nan"),
        "random_in_band": float(np.mean((bias[1:] >= lo) & (bias[1:] <= hi))) if n_random else float("nan"),
        "qlike_gmv": float(qlike(realised[:, 0], variance[:, 0])),
        "qlike_random": float(np.nanmean(qlike(realised[:, 1:], variance[:, 1:]))) if n_random else float("nan"),
        "bias_band": [lo, hi],
        "n_days": int(len(panel.days)),
    }


def _portfolio_runs(
    window: EvalWindow,
    returns: np.ndarray,
    model_at: Callable[[int], RiskModel | None],
    *,
    long_solver: Callable[[RiskModel], np.ndarray] | None,
    n_random: int,
    seed: int,
    desc: str,
) -> tuple[pd.Series, pd.Series, dict, dict]:
    """GMV / GMV+ backtests and forecast quality of the daily models ``model_at(t)`` on the test days.

    Portfolios (GMV and, with ``long_solver``, GMV+) are re-solved every test day ``t`` and earn the
    returns of ``t + 1`` only (:func:`~riskstudy.portfolio.backtest.rebalance_daily`). Forecast
    quality compares, on the same day's model, the predicted variance ``w' Sigma_t w`` of the GMV
    portfolio and of ``n_random`` fixed random long-only portfolios with the realised
    ``(w' r_{t+1})^2`` (:func:`~riskstudy.evaluation.forecast.portfolio_outcomes`).

    Parameters
    ----------
    window : EvalWindow
    returns : ndarray (T_w, N)
        Window-relative returns.
    model_at : callable ``t -> RiskModel or None``
    long_solver : callable ``model -> weights``, optional
        GMV+; ``None`` skips it (NaN returns, turnover reported as 0).
    n_random, seed : int
        Random portfolios (:func:`~riskstudy.evaluation.forecast.random_portfolios`).
    desc : str
        Progress bar label.

    Returns
    -------
    gmv, gmv_long : Series
        Next-day returns on the test days with a model (positional index).
    forecast : dict
        :func:`_forecast_quality`.
    turnover : dict
        Mean daily one-way turnover over the test days, ``"gmv"`` and ``"gmv_long"``.
    """
    T, N = returns.shape
    test = window.test
    rand = random_portfolios(N, n_random, seed=seed)
    realised = np.full((T, 1 + n_random), np.nan)
    variance = np.full((T, 1 + n_random), np.nan)

    def score(t: int, m: RiskModel, w: dict[str, np.ndarray]) -> None:
        realised[t], variance[t] = portfolio_outcomes(m, returns[t + 1], named=[w["gmv"]], random=rand)

    strategies: dict[str, Callable[[RiskModel], np.ndarray]] = {"gmv": lambda m: m.gmv_weights()}
    if long_solver is not None:
        strategies["gmv_long"] = long_solver
    runs = rebalance_daily(model_at, returns, test, strategies=strategies, on_day=score, desc=desc)
    days = runs.days
    bt = runs.backtests["gmv"]
    g = pd.Series(bt.returns[days + 1])
    if long_solver is not None:
        bt_long = runs.backtests["gmv_long"]
        gl = pd.Series(bt_long.returns[days + 1], index=g.index)
        turnover_long = float(bt_long.turnover[test].mean())
    else:
        gl = pd.Series(np.nan, index=g.index)
        turnover_long = 0.0  # nothing held, nothing traded
    names = ["gmv"] + [f"random_{j}" for j in range(n_random)]
    forecast = _forecast_quality(ForecastPanel(days, realised[days], variance[days], names), n_random=n_random)
    turnover = {"gmv": float(bt.turnover[test].mean()), "gmv_long": turnover_long}
    return g, gl, forecast, turnover


def evaluate_factor_model(
    name: str,
    panel: Panel,
    exposures: np.ndarray,
    window: EvalWindow,
    *,
    factor_names: list[str],
    risk: RiskConfig,
    use_sectors: bool = True,
    long_only: bool = True,
) -> ModelEvaluation:
    """Full pipeline for a factor model with exposures ``(T, N, K)`` on the panel calendar.

    ``long_only=False`` skips the CVXPY GMV+ backtest (its returns are then NaN).
    """
    from riskstudy.portfolio.optimize import GMVLongOnly  # cvxpy is slow to import; long_only=False never needs it

    log.info("evaluating %s (%d factors)", name, exposures.shape[-1])
    r = window.rows
    with one_blas_thread():
        cs, series = factor_risk_models(panel, exposures, r, factor_names=factor_names, risk=risk, use_sectors=use_sectors)
        # one compiled GMV+ problem for the whole test window: as many slots as the largest daily universe
        solver = GMVLongOnly(long_only=True, capacity=max(1, int(panel.member[r][window.test].sum(1).max())))
        g, gl, fc, to = _portfolio_runs(
            window, panel["ret"][r], series.model, long_solver=solver.solve if long_only else None,
            n_random=risk.n_random_portfolios, seed=risk.seed, desc=name,
        )
    dates = panel.dates[r]
    # R^2 of day t+1 returns on exposures at t, reported at the decision day t
    r2 = pd.Series(cs.r2[window.test + 1], index=dates[window.test], name=name)
    return ModelEvaluation(name, r2, cs, g, gl, fc, to)


def evaluate_dense_estimator(
    name: str, panel: Panel, window: EvalWindow, *, method: str, dense: DenseConfig, risk: RiskConfig
) -> ModelEvaluation:
    """Trailing-window dense covariance estimators through the same portfolio/forecast steps.

    ``dense`` gives the trailing window and POET's number of factors; ``risk`` the forecast-quality
    portfolios (as for every model).

    GMV and GMV+ are re-solved every test day, as for the factor models; the dense long-only
    problem (``N x N``) is rebuilt each day (~90-130 ms at ``N ~ 300``, one BLAS thread).
    """
    from riskstudy.portfolio.optimize import min_variance_weights

    r = window.rows
    ret = panel["ret"][r]
    mask = panel.member[r]
    kw = {"n_factors": dense.poet_k} if method == "poet" else {}

    def model_at(t: int) -> RiskModel | None:
        return trailing_covariance(ret, t, method=method, window=dense.window, mask=mask, **kw)

    with one_blas_thread():
        g, gl, fc, to = _portfolio_runs(
            window, ret, model_at, long_solver=min_variance_weights, n_random=risk.n_random_portfolios,
            seed=risk.seed, desc=name,
        )
    return ModelEvaluation(name, None, None, g, gl, fc, to)


def market_row(benchmark: pd.Series, panel: Panel, window: EvalWindow) -> dict:
    """The Market row of Table 1: the benchmark's realised volatility over the test days (no R^2)."""
    d = panel.dates[window.rows][window.test + 1]
    vol = float(benchmark.reindex(d).std() * ANN)
    return {"r2": None, "gmv_vol": vol, "gmv_long_vol": vol}
