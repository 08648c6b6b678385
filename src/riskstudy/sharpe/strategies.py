r"""Target-weight rules of the backtests (:func:`riskstudy.sharpe.backtest.run_strategy`'s ``target``).

Each maps a decision row ``t`` and the returns ``past = returns[: t + 1]`` (never later ones) to
weights over the ``N`` stocks, 0 for a stock without a return on ``t``:

* :func:`equal_weight` -- :math:`1/N_t` over the stocks present;
* :func:`ledoit_wolf_min_variance` -- long-only minimum variance on the Ledoit-Wolf covariance of
  the trailing ``window`` returns (stocks with a full window; equal weight while fewer than two
  have one);
* :func:`ledoit_wolf_max_sharpe` -- long-only maximum Sharpe with the trailing ``mu_window`` mean
  (in excess of the risk-free rate) as expected returns (equal weight when no stock has a positive mean or a full window);
* :func:`from_table` -- a network's precomputed decisions (its weights at the close of ``t``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from riskstudy.portfolio.optimize import gmv_long_only_dense, max_sharpe
from riskstudy.risk.estimators import DenseRiskModel, ledoit_wolf_covariance
from riskstudy.sharpe.backtest import Target


def equal_weight(t: int, past: np.ndarray) -> np.ndarray:
    ok = np.isfinite(past[-1])
    return ok / max(ok.sum(), 1)


def _window(past: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    x = past[-window:]
    ok = np.isfinite(x).all(axis=0) & (len(x) == window)
    return x[:, ok], ok


def ledoit_wolf_min_variance(window: int) -> Target:
    """Minimum variance (long-only) on the trailing Ledoit-Wolf covariance (module docstring)."""

    def target(t: int, past: np.ndarray) -> np.ndarray:
        x, ok = _window(past, window)
        if ok.sum() < 2:
            return equal_weight(t, past)
        w = np.zeros(past.shape[1])
        w[ok] = gmv_long_only_dense(ledoit_wolf_covariance(x))
        return w

    return target


def ledoit_wolf_max_sharpe(window: int, mu_window: int, *, risk_free: float = 0.0) -> Target:
    """Maximum Sharpe (long-only) on the trailing Ledoit-Wolf covariance and the trailing mean in excess of
    ``risk_free`` (annual; module docstring)."""

    def target(t: int, past: np.ndarray) -> np.ndarray:
        x, ok = _window(past, window)
        mu = np.nanmean(past[-mu_window:][:, ok], axis=0) - risk_free / 252
        if ok.sum() < 2 or not (mu > 0).any():
            return equal_weight(t, past)
        w = np.zeros(past.shape[1])
        w[ok] = max_sharpe(mu, DenseRiskModel(ledoit_wolf_covariance(x)))
        return w

    return target


def from_table(weights: Mapping[int, np.ndarray]) -> Target:
    """The decisions of a network: ``weights[t]`` (a ``KeyError`` names a row it did not decide)."""

    def target(t: int, past: np.ndarray) -> np.ndarray:
        if t not in weights:
            raise KeyError(f"no network decision at row {t}")
        return weights[t]

    return target
