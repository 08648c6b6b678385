r"""Target-weight rules of the backtests (:func:`riskstudy.sharpe.backtest.run_strategy`'s ``target``).

Each maps a decision row ``t`` and the returns ``past = returns[: t + 1]`` (never later ones) to
weights over the ``N`` stocks, 0 for a stock without a return on ``t``:

* :func:`equal_weight` -- :math:`1/N_t` over the stocks present;
* :func:`ledoit_wolf_min_variance` -- long-only minimum variance on the Ledoit-Wolf covariance of
  the trailing ``window`` returns (stocks with a full window; equal weight while fewer than two
  have one);
* :func:`ledoit_wolf_max_sharpe` -- long-only maximum Sharpe with the trailing ``mu_window`` mean
  (in excess of the risk-free rate) as expected returns (equal weight when no stock has a positive mean or a full window);
* :func:`min_variance` / :func:`max_sharpe_portfolio` -- the same two rules on any covariance
  forecast ``model_at(t, past)`` (:func:`ledoit_wolf_model`, or :func:`from_models`: a table of
  daily :class:`~riskstudy.risk.model.RiskModel` of the covariance network, FRM or SRM);
* :func:`from_table` -- a network's precomputed decisions (its weights at the close of ``t``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from riskstudy.portfolio.optimize import max_sharpe, min_variance_weights
from riskstudy.risk.estimators import DenseRiskModel, ledoit_wolf_covariance
from riskstudy.risk.model import RiskModel
from riskstudy.sharpe.backtest import Target


def equal_weight(t: int, past: np.ndarray) -> np.ndarray:
    ok = np.isfinite(past[-1])
    return ok / max(ok.sum(), 1)


def _window(past: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    x = past[-window:]
    ok = np.isfinite(x).all(axis=0) & (len(x) == window)
    return x[:, ok], ok


#: A covariance forecast at decision row ``t`` from ``past = returns[: t + 1]``; ``None`` when there is none.
ModelAt = Callable[[int, np.ndarray], RiskModel | None]


def ledoit_wolf_model(window: int) -> ModelAt:
    """The Ledoit-Wolf covariance of the trailing ``window`` returns of the stocks with a full window
    (``None`` while fewer than two have one)."""

    def model_at(t: int, past: np.ndarray) -> RiskModel | None:
        x, ok = _window(past, window)
        return DenseRiskModel(ledoit_wolf_covariance(x), np.flatnonzero(ok)) if ok.sum() >= 2 else None

    return model_at


def _lookup(table: Mapping[int, Any], what: str) -> Callable[[int, np.ndarray], Any]:
    def get(t: int, past: np.ndarray) -> Any:
        if t not in table:
            raise KeyError(f"no {what} at row {t}")
        return table[t]

    return get


def from_models(models: Mapping[int, RiskModel | None]) -> ModelAt:
    """A precomputed forecast per decision row (a network's or a factor model's; a ``KeyError`` names a missing row)."""
    return _lookup(models, "risk model")


def min_variance(model_at: ModelAt) -> Target:
    """Long-only minimum variance on ``model_at``'s covariance (equal weight without a forecast)."""

    def target(t: int, past: np.ndarray) -> np.ndarray:
        m = model_at(t, past)
        if m is None:
            return equal_weight(t, past)
        w = np.zeros(past.shape[1])
        w[m.positions()] = min_variance_weights(m, long_only=True)
        return w

    return target


def max_sharpe_portfolio(model_at: ModelAt, mu_window: int, *, risk_free: float = 0.0) -> Target:
    """Long-only maximum Sharpe on ``model_at``'s covariance with the trailing ``mu_window`` mean in excess of
    ``risk_free`` (annual) as expected returns (equal weight without a forecast or a positive mean)."""

    def target(t: int, past: np.ndarray) -> np.ndarray:
        m = model_at(t, past)
        if m is None:
            return equal_weight(t, past)
        pos = m.positions()
        mu = np.nanmean(past[-mu_window:][:, pos], axis=0) - risk_free / 252
        if not (mu > 0).any():
            return equal_weight(t, past)
        w = np.zeros(past.shape[1])
        w[pos] = max_sharpe(mu, m)
        return w

    return target


def ledoit_wolf_min_variance(window: int) -> Target:
    """Minimum variance (long-only) on the trailing Ledoit-Wolf covariance (module docstring)."""
    return min_variance(ledoit_wolf_model(window))


def ledoit_wolf_max_sharpe(window: int, mu_window: int, *, risk_free: float = 0.0) -> Target:
    """Maximum Sharpe (long-only) on the trailing Ledoit-Wolf covariance and the trailing mean in excess of
    ``risk_free`` (annual; module docstring)."""
    return max_sharpe_portfolio(ledoit_wolf_model(window), mu_window, risk_free=risk_free)


def from_table(weights: Mapping[int, np.ndarray]) -> Target:
    """The decisions of a network: ``weights[t]`` (a ``KeyError`` names a row it did not decide)."""
    return _lookup(weights, "network decision")
