"""Portfolio performance statistics."""

from __future__ import annotations

import numpy as np


def max_drawdown(returns: np.ndarray) -> float:
    """Largest peak-to-trough loss of wealth ``W_t = prod_{s<=t} (1 + r_s)`` (``W_0 = 1``), as a positive fraction."""
    wealth = np.cumprod(np.r_[1.0, 1.0 + returns])
    return float(np.max(1.0 - wealth / np.maximum.accumulate(wealth)))


def _ratio(num: float, den: float) -> float:
    if den > 0:
        return num / den
    return float(np.sign(num) * np.inf) if num != 0 else float("nan")


def portfolio_metrics(
    returns: np.ndarray,
    weights: np.ndarray | None = None,
    periods_per_year: int = 252,
    risk_free: float = 0.0,
    *,
    turnover: np.ndarray | None = None,
) -> dict[str, float]:
    """Summary statistics of a periodic return series.

    Parameters
    ----------
    returns : ndarray (T,)
        Simple portfolio returns; NaN entries (no position) are dropped.
    weights : ndarray (T, N), optional
        Weights history; turnover ``1/2 sum_i |w_t - w_{t-1}|`` (one-way, ignoring drift).
    periods_per_year : int
    risk_free : float
        Annual risk-free rate; per period ``rf = risk_free / periods_per_year``.
    turnover : ndarray (T,), optional
        Precomputed one-way turnover per period (e.g. :class:`BacktestResult.turnover`,
        which accounts for drift); takes precedence over ``weights``.

    Returns
    -------
    dict
        ``cumulative_return`` ``prod(1 + r) - 1``; ``annual_return`` geometric,
        ``(1 + cum)^(ppy / T) - 1``; ``annual_volatility`` ``std(r, ddof=1) sqrt(ppy)``;
        ``sharpe`` ``mean(r - rf) / std(r) sqrt(ppy)``; ``sortino`` ``mean(r - rf) /
        sqrt(mean(min(r - rf, 0)^2)) sqrt(ppy)``; ``max_drawdown`` (positive fraction);
        ``calmar`` ``annual_return / max_drawdown``; ``turnover`` mean one-way turnover
        per period (NaN if neither ``weights`` nor ``turnover``); ``n_periods``.
        Ratios with a zero denominator are ``+-inf`` (or NaN for 0/0).
    """
    r = np.asarray(returns, dtype=float)
    r = r[np.isfinite(r)]
    n = len(r)
    excess = r - risk_free / periods_per_year
    cum = float(np.prod(1.0 + r) - 1.0)
    ann_ret = (1.0 + cum) ** (periods_per_year / n) - 1.0 if n else float("nan")
    sd = float(np.std(r, ddof=1)) if n > 1 else float("nan")
    sd = 0.0 if n > 1 and sd < 1e-14 * max(np.abs(r).max(), 1e-300) else sd  # constant series
    downside = float(np.sqrt(np.mean(np.minimum(excess, 0.0) ** 2))) if n else float("nan")
    mdd = max_drawdown(r) if n else float("nan")
    if turnover is not None:
        to = float(np.nanmean(turnover))
    elif weights is not None:
        w = np.nan_to_num(np.asarray(weights, dtype=float))
        to = float(0.5 * np.abs(np.diff(w, axis=0)).sum(axis=1).mean()) if len(w) > 1 else float("nan")
    else:
        to = float("nan")
    root = np.sqrt(periods_per_year)
    return {
        "cumulative_return": cum,
        "annual_return": ann_ret,
        "annual_volatility": sd * root,
        "sharpe": _ratio(float(excess.mean()), sd) * root if n > 1 else float("nan"),
        "sortino": _ratio(float(excess.mean()), downside) * root if n else float("nan"),
        "max_drawdown": mdd,
        "calmar": _ratio(ann_ret, mdd),
        "turnover": to,
        "n_periods": float(n),
    }
