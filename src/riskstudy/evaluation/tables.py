"""Scoring tables of daily risk forecasts that come from outside the factor-model pipeline.

A *risk table* maps a decision row ``t`` to that day's :class:`~riskstudy.risk.model.RiskModel`
(or ``None``): a network's predicted covariance (the Sharpe section's covariance network), or a
classical model fitted on another universe. :func:`score_risk_tables` puts every table through the
same steps as Table 1 (:mod:`riskstudy.evaluation.scoring`; for factor-form tables the same compiled
GMV+ solver, :func:`long_only_solver`): GMV and long-only GMV+ re-solved each day and held one day, and the bias statistic and QLIKE of the GMV and of fixed random long-only
portfolios. A route with several tables (one per seed) is reported as the seed mean with its
Student-t interval.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from riskstudy.config import RiskConfig
from riskstudy.evaluation.scoring import ANN, _portfolio_runs, one_blas_thread
from riskstudy.portfolio.optimize import GMVLongOnly, min_variance_weights
from riskstudy.risk.covariance import FactorRiskModel
from riskstudy.risk.factor_model import EvalWindow
from riskstudy.risk.model import RiskModel
from riskstudy.stats import mean_ci

#: The scores of :func:`score_risk_tables`, in column order.
SCORES = ("gmv_vol", "gmv_long_vol", "bias_gmv", "qlike_gmv", "bias_random_mean", "random_in_band", "qlike_random")


def long_only_solver(models: Iterable[RiskModel | None]) -> Callable[[RiskModel], np.ndarray]:
    """The GMV+ solver of a table: a compiled :class:`GMVLongOnly` (re-solved with new parameters day after
    day, as Table 1's scoring does) when every model is a :class:`FactorRiskModel`, else
    :func:`min_variance_weights` (one CVXPY problem per day, any :class:`RiskModel`)."""
    ms = [m for m in models if m is not None]
    if ms and all(isinstance(m, FactorRiskModel) for m in ms):
        return GMVLongOnly(long_only=True, capacity=max(m.n_assets for m in ms)).solve
    return min_variance_weights


def score_risk_tables(returns: np.ndarray, routes: Mapping[str, Sequence[Mapping[int, RiskModel | None]]],
                      days: np.ndarray, *, risk: RiskConfig, n_random: int | None = None) -> pd.DataFrame:
    """Daily GMV / GMV+ volatility and forecast quality of each route's tables on the decision rows ``days``.

    Parameters
    ----------
    returns : ndarray (T, N)
        Daily returns; the forecast of row ``t`` is judged on ``returns[t + 1]``.
    routes : mapping
        ``{name: [table, ...]}``, a table ``{t: RiskModel or None}`` per seed; every row of ``days``
        must be a key (``None``: no forecast that day, the day is skipped).
    days : ndarray of int (D,)
        Decision rows, each with ``t + 1 < T``.
    risk : RiskConfig
        ``n_random_portfolios`` and ``seed`` of the random portfolios.
    n_random : int, optional
        Overrides ``risk.n_random_portfolios``.

    Returns
    -------
    DataFrame
        One row per route: :data:`SCORES` (volatilities annualised) with ``<score>_lo`` / ``_hi``
        (the Student-t interval over the route's tables; NaN for a single table), ``n_days`` and ``seeds``.
    """
    n_random = risk.n_random_portfolios if n_random is None else n_random
    window = EvalWindow(rows=slice(0, returns.shape[0]), test=np.asarray(days, dtype=int))
    out = []
    with one_blas_thread():
        for name, tables in routes.items():
            per = []
            for j, table in enumerate(tables):
                g, gl, fc, _ = _portfolio_runs(window, returns, lambda t, tb=table: tb[int(t)],
                                               long_solver=long_only_solver(table.values()), n_random=n_random, seed=risk.seed,
                                               desc=f"{name} {j}")
                per.append({"gmv_vol": float(g.std() * ANN), "gmv_long_vol": float(gl.std() * ANN),
                            **{k: fc[k] for k in SCORES[2:]}, "n_days": fc["n_days"]})
            row: dict[str, float | str] = {"route": name, "seeds": len(per)}
            for k in SCORES:
                ci = mean_ci([p[k] for p in per])
                row[k], row[f"{k}_lo"], row[f"{k}_hi"] = ci["mean"], ci["lo"], ci["hi"]
            row["n_days"] = min(p["n_days"] for p in per)
            out.append(row)
    return pd.DataFrame(out).set_index("route")
