"""Point-in-time universe selection by trailing dollar volume.

Generic over ``(T, N)`` arrays, so any :class:`~riskstudy.data.panel.Panel`-like
data can use it. With ``traded[t, i] = isfinite(close[t, i]) & (dollar_volume[t, i] > 0)``
and rebalance days ``r = window - 1 + k * rebalance_every`` (``k = 0, 1, ...``):

.. math::

    \\mathrm{cov}_{r,i} = \\frac{1}{W} \\sum_{u=r-W+1}^{r} \\mathrm{traded}_{u,i}, \\qquad
    \\overline{DV}_{r,i} = \\frac{\\sum_u \\mathrm{traded}_{u,i}\\, DV_{u,i}}{\\sum_u \\mathrm{traded}_{u,i}}

An instrument is selected on ``r`` when ``cov >= min_coverage`` and its
``DV-bar`` ranks among the ``top_n`` largest of the eligible ones (ties: lower
column first). The selection is held until the next rebalance, and
``member[t, i] = selected[r(t), i] & traded[t, i]`` with ``r(t)`` the last
rebalance day ``<= t``. Only data up to and including ``r`` enter the
selection, so membership on any day never depends on later data.
"""

from __future__ import annotations

import numpy as np


def _window_sum(x: np.ndarray, rows: np.ndarray, window: int) -> np.ndarray:
    """``sum_{u=r-window+1}^{r} x[u]`` for each ``r`` in ``rows``; ``x`` is ``(T, N)``, result ``(len(rows), N)``."""
    csum = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
    return csum[rows + 1] - csum[np.maximum(rows + 1 - window, 0)]


def rebalance_days(n_days: int, *, window: int, rebalance_every: int) -> np.ndarray:
    """Row indices of the rebalance days: ``window - 1, window - 1 + rebalance_every, ... < n_days``."""
    return np.arange(window - 1, n_days, rebalance_every)


def select_universe(
    close: np.ndarray,
    dollar_volume: np.ndarray,
    *,
    top_n: int,
    window: int = 252,
    min_coverage: float = 0.9,
    rebalance_every: int = 21,
) -> np.ndarray:
    """Point-in-time top-``top_n`` universe by trailing mean dollar volume.

    Parameters
    ----------
    close : numpy.ndarray, shape (T, N)
        Prices; NaN where missing.
    dollar_volume : numpy.ndarray, shape (T, N)
        Traded value; ``0`` on non-trading (e.g. forward-filled) days. A day counts
        as traded when the close is valid and ``dollar_volume > 0`` (equivalently
        ``volume > 0``).
    top_n : int
        Universe size at each rebalance.
    window : int
        Trailing window in days for coverage and mean dollar volume.
    min_coverage : float
        Minimum fraction of traded days in the window.
    rebalance_every : int
        Days between re-selections.

    Returns
    -------
    numpy.ndarray of bool, shape (T, N)
        ``member[t, i]``; all False before the first rebalance (row ``window - 1``).
    """
    if close.shape != dollar_volume.shape:
        raise ValueError(f"close {close.shape} and dollar_volume {dollar_volume.shape} differ in shape")
    if window < 1 or rebalance_every < 1 or top_n < 1 or not 0.0 <= min_coverage <= 1.0:
        raise ValueError(
            f"invalid universe settings: top_n={top_n}, window={window}, "
            f"min_coverage={min_coverage}, rebalance_every={rebalance_every}"
        )
    T, N = close.shape
    with np.errstate(invalid="ignore"):
        traded = np.isfinite(close) & (dollar_volume > 0)
    rows = rebalance_days(T, window=window, rebalance_every=rebalance_every)
    member = np.zeros((T, N), dtype=bool)
    if len(rows) == 0:
        return member

    n_traded = _window_sum(traded.astype(float), rows, window)  # (R, N)
    dv_sum = _window_sum(np.where(traded, dollar_volume, 0.0), rows, window)
    eligible = n_traded >= min_coverage * window
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_dv = np.where(eligible, dv_sum / n_traded, -np.inf)
    order = np.argsort(-mean_dv, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(N)[None, :].repeat(len(rows), axis=0), axis=1)
    selected = eligible & (rank < top_n)  # (R, N)

    held = np.searchsorted(rows, np.arange(T), side="right") - 1  # last rebalance <= t, -1 before the first
    on = held >= 0
    member[on] = selected[held[on]] & traded[on]
    return member
