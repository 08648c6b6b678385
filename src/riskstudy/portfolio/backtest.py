"""Daily (or every-``k``-days) rebalanced backtest of a weights-producing function.

Timing (no look-ahead): on decision day ``t`` the strategy ``weights_fn(t)``
returns the target weights using information up to the close of ``t``; they
earn the returns of day ``t + 1`` only,

.. math::  r^p_{t+1} = \\sum_i w_{t,i} r_{t+1,i} - c \\sum_i |\\Delta w_{t,i}|.

The backtest never passes returns to the strategy, so a strategy cannot see
``returns[t + 1:]`` through it. Between rebalances the weights drift with
prices, ``w_i <- w_i (1 + r_i) / (1 + r^p)`` (uninvested weight is cash at 0%).

Missing next-day returns of held stocks: ``missing="zero"`` (default) treats
them as 0 (a suspended stock keeps its price; no future information is used);
``missing="renormalise"`` drops them and rescales the other weights to the same
total, which uses the knowledge that a return will be missing.

Turnover on a rebalance day is one-way, ``1/2 sum_i |w_target - w_drifted|``;
the initial build from cash is not counted.

:func:`rebalance_daily` is the rule of every row of Table 1: on each decision day the
day's risk model is built once, each strategy (GMV, GMV+, ...) solves its portfolio
on it, and the portfolio is held for the next day only (a day without a model holds
nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from riskstudy.risk.model import RiskModel

logger = logging.getLogger(__name__)


@dataclass
class BacktestResult:
    """Backtest output over ``T`` days and ``N`` stocks.

    Attributes
    ----------
    returns : ndarray (T,)
        Net portfolio return realised on day ``t`` (NaN where no position was held).
    weights : ndarray (T, N)
        Weights held from the close of ``t`` to the close of ``t + 1`` (after any rebalance at ``t``).
    turnover : ndarray (T,)
        One-way turnover traded at the close of ``t`` (0 on days without a rebalance).
    """

    returns: np.ndarray
    weights: np.ndarray
    turnover: np.ndarray


def embed(w: np.ndarray, assets: np.ndarray, n: int) -> np.ndarray:
    """Full-universe weights (n,): ``w`` at positions ``assets``, 0 elsewhere."""
    out = np.zeros(n)
    out[assets] = w
    return out


def backtest(
    weights_fn: Callable[[int], np.ndarray],
    returns: np.ndarray,
    *,
    start: int,
    end: int | None = None,
    rebalance_every: int = 1,
    missing: str = "zero",
    cost_bps: float = 0.0,
) -> BacktestResult:
    """Run a rebalanced backtest.

    Parameters
    ----------
    weights_fn : callable ``t -> ndarray (N,)``
        Target weights decided at the close of ``t`` (NaN = 0). Must use data up to ``t`` only.
    returns : ndarray (T, N)
        Simple returns; ``returns[t]`` is realised on day ``t``.
    start : int
        First decision day.
    end : int, optional
        Decision days are ``start <= t < end`` (default ``T - 1``, the last day with a next return).
    rebalance_every : int
        Call ``weights_fn`` every this many decision days; weights drift in between.
    missing : {"zero", "renormalise"}
        Treatment of a held stock's missing next-day return (see module docstring).
    cost_bps : float
        Cost per unit of traded weight ``sum |dw|`` in basis points, charged on the next return.

    Returns
    -------
    BacktestResult
    """
    T, N = returns.shape
    end = T - 1 if end is None else end
    if not 0 <= start < end <= T - 1:
        raise ValueError(f"backtest: need 0 <= start < end <= T-1, got start={start}, end={end}, T={T}")
    if missing not in ("zero", "renormalise"):
        raise ValueError(f"backtest: missing must be 'zero' or 'renormalise', got {missing!r}")
    port = np.full(T, np.nan)
    weights = np.zeros((T, N))
    turnover = np.zeros(T)
    held = np.zeros(N)
    for i, t in enumerate(range(start, end)):
        if i % rebalance_every == 0:
            target = np.nan_to_num(np.asarray(weights_fn(t), dtype=float))
            if target.shape != (N,):
                raise ValueError(f"backtest: weights_fn({t}) returned shape {target.shape}, expected ({N},)")
            turnover[t] = 0.0 if i == 0 else 0.5 * np.abs(target - held).sum()
            held = target
        weights[t] = held
        r_next = returns[t + 1]
        ok = np.isfinite(r_next)
        r0 = np.where(ok, r_next, 0.0)
        if missing == "renormalise" and not ok[held != 0].all():
            kept = np.where(ok, held, 0.0)
            held = kept * (held.sum() / kept.sum()) if kept.sum() != 0 else kept
        gross = held @ r0
        port[t + 1] = gross - 2.0 * turnover[t] * cost_bps * 1e-4
        held = held * (1.0 + r0) / (1.0 + gross)
    return BacktestResult(port, weights, turnover)


@dataclass
class DailyRebalance:
    """Portfolios re-solved every decision day and held for the next day only (:func:`rebalance_daily`).

    Attributes
    ----------
    days : ndarray of int (D,)
        Decision days that had a model, in order.
    weights : dict str -> dict int -> ndarray (N,)
        Per strategy, the full-universe weights decided on each of ``days``.
    backtests : dict str -> BacktestResult
        Per strategy, the backtest over all decision days passed (first to last) holding
        ``weights[name][t]`` over day ``t + 1`` (nothing after a day without a model).
    """

    days: np.ndarray
    weights: dict[str, dict[int, np.ndarray]]
    backtests: dict[str, BacktestResult]


def rebalance_daily(
    model_at: Callable[[int], RiskModel | None],
    returns: np.ndarray,
    days: Iterable[int],
    *,
    strategies: Mapping[str, Callable[[RiskModel], np.ndarray]],
    on_day: Callable[[int, RiskModel, dict[str, np.ndarray]], None] | None = None,
    desc: str = "rebalance_daily",
) -> DailyRebalance:
    """Re-solve each strategy's portfolio on every decision day's model and hold it for the next day.

    For each decision day ``t`` (in order) the model ``m = model_at(t)`` is built once; each
    strategy, in the order given, maps it to weights over ``m``'s stocks (stateful solvers, e.g.
    a warm-started :class:`~riskstudy.portfolio.optimize.GMVLongOnly`, see the days in order),
    and ``on_day(t, m, weights)`` may score the same model and weights (e.g. forecast quality)
    without building it again. Then every strategy is backtested (:func:`backtest`, one call per
    decision day, no drift) with ``w_t`` embedded in the universe, earning

    .. math::  r^p_{t+1} = \\sum_i w_{t,i} r_{t+1,i},

    and 0 weights on days without a model.

    Parameters
    ----------
    model_at : callable ``t -> RiskModel or None``
        Day ``t``'s forecast from data up to ``t`` (``None``: no model that day).
    returns : ndarray (T, N)
        Simple returns of the universe; ``returns[t]`` is realised on day ``t``.
    days : iterable of int
        Decision days, increasing, each ``< T - 1``.
    strategies : mapping name -> callable ``model -> ndarray (n_assets,)``
        E.g. ``{"gmv": lambda m: m.gmv_weights()}``.
    on_day : callable ``(t, model, {name: weights over model's stocks}) -> None``, optional
    desc : str
        Progress bar label.

    Returns
    -------
    DailyRebalance
    """
    T, N = returns.shape
    days = np.asarray(list(days), dtype=int)
    weights: dict[str, dict[int, np.ndarray]] = {name: {} for name in strategies}
    solved: list[int] = []
    for t in tqdm(days, desc=desc, leave=False, disable=None):
        m = model_at(t)
        if m is None:
            continue
        w = {name: fn(m) for name, fn in strategies.items()}
        for name, w_name in w.items():
            weights[name][t] = embed(w_name, m.positions(), N)
        if on_day is not None:
            on_day(t, m, w)
        solved.append(int(t))
    start, end = int(days[0]), int(days[-1]) + 1
    backtests = {
        name: backtest(lambda t, held=held: held.get(t, np.zeros(N)), returns, start=start, end=end)
        for name, held in weights.items()
    }
    return DailyRebalance(np.asarray(solved, dtype=int), weights, backtests)
