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
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

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
