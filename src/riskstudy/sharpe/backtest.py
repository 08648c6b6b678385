r"""The Sharpe section's one backtester: periodic rebalancing with a cap on weight changes and costs.

Every strategy is a function ``target(t, past)`` of a decision row ``t`` and the returns up to and
including ``t`` (``past = returns[: t + 1]``: the only returns it is ever shown) giving target
weights over the ``N`` stocks. :func:`run_strategy` rebalances every ``rebalance_every`` rows from
``start``: the held portfolio has drifted with prices since the last rebalance; the new weights are
the target projected onto the feasible set (:func:`riskstudy.portfolio.constraints.cap_weight_change`:
no stock's weight moves by more than ``max_change`` of capital, bounds ``[lower, upper]``, sum 1),
except at the first decision, which builds the portfolio from cash uncapped. The weights decided
at the close of ``t`` earn the returns of ``t + 1`` onwards (:func:`riskstudy.portfolio.backtest.backtest`,
which charges ``cost_bps`` per unit of traded weight on the next day's return).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from riskstudy.portfolio.backtest import BacktestResult, backtest
from riskstudy.portfolio.constraints import cap_weight_change
from riskstudy.portfolio.metrics import portfolio_metrics

Target = Callable[[int, np.ndarray], np.ndarray]

#: The issue's metric names for :func:`riskstudy.portfolio.metrics.portfolio_metrics`' keys.
METRIC_NAMES: dict[str, str] = {"cumulative_return": "cum_return", "annual_return": "ann_return",
                                "annual_volatility": "vol", "max_drawdown": "max_drawdown", "sharpe": "sharpe",
                                "calmar": "calmar", "sortino": "sortino", "turnover": "turnover"}


def drift(held: np.ndarray, returns: np.ndarray) -> np.ndarray:
    """Weights ``(N,)`` after holding ``held`` through the rows of ``returns (k, N)`` (missing = 0, cash at 0%)."""
    w = np.asarray(held, dtype=float).copy()
    for r in returns:
        r0 = np.where(np.isfinite(r), r, 0.0)
        w = w * (1.0 + r0) / (1.0 + w @ r0)
    return w


@dataclass
class StrategyRun:
    """One strategy's backtest: the :class:`BacktestResult`, the capped weights set at each rebalance
    (``{row: (N,)}``), the uncapped targets, and how many rebalances the cap changed."""

    result: BacktestResult
    decisions: dict[int, np.ndarray]
    targets: dict[int, np.ndarray]
    n_capped: int
    n_infeasible: int


def run_strategy(target: Target, returns: np.ndarray, *, start: int, end: int, rebalance_every: int = 21,
                 max_change: float | None = 0.10, lower: float = 0.0, upper: float = 1.0,
                 cost_bps: float = 10.0) -> StrategyRun:
    """Backtest ``target`` (module docstring) over decision rows ``start <= t < end``.

    Parameters
    ----------
    target : callable ``(t, returns[: t + 1]) -> ndarray (N,)``
    returns : ndarray (T, N)
    start, end : int
    rebalance_every : int
    max_change : float or None
        Cap on each weight's change at a rebalance (``None``: uncapped).
    lower, upper : float
    cost_bps : float
    """
    decisions: dict[int, np.ndarray] = {}
    targets: dict[int, np.ndarray] = {}
    state = {"held": None, "since": start, "capped": 0, "infeasible": 0}

    def weights_fn(t: int) -> np.ndarray:
        w_star = np.nan_to_num(np.asarray(target(t, returns[: t + 1]), dtype=float))
        targets[t] = w_star
        if state["held"] is None or max_change is None:
            w = w_star
        else:
            held = drift(state["held"], returns[state["since"] + 1: t + 1])
            w, ok = cap_weight_change(w_star, held, max_change=max_change, lower=lower, upper=upper)
            state["capped"] += int(not np.allclose(w, w_star, atol=1e-10))
            state["infeasible"] += int(not ok)
        state["held"], state["since"] = w, t
        decisions[t] = w
        return w

    res = backtest(weights_fn, returns, start=start, end=end, rebalance_every=rebalance_every, cost_bps=cost_bps)
    return StrategyRun(res, decisions, targets, state["capped"], state["infeasible"])


def metrics(returns: np.ndarray, *, turnover: np.ndarray | None = None, risk_free: float = 0.02) -> dict[str, float]:
    """:func:`portfolio_metrics` under the issue's names (Sharpe and Sortino in excess of ``risk_free``)."""
    m = portfolio_metrics(returns, turnover=turnover, risk_free=risk_free)
    return {new: m[old] for old, new in METRIC_NAMES.items()}


def equity(returns: np.ndarray, capital: float) -> np.ndarray:
    """Capital path ``capital * prod(1 + r)`` over the rows with a return (NaN rows hold the previous value)."""
    r = np.where(np.isfinite(returns), returns, 0.0)
    return capital * np.cumprod(1.0 + r)
