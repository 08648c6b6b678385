"""Trailing windows of a panel: rolling means, and the return windows of the window-based estimators (SRM's PCA, dense covariances)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def trailing_window(
    returns: np.ndarray, t: int, *, window: int, mask: np.ndarray | None = None, min_obs: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Demeaned window ``returns[t-window+1 : t+1]`` of the eligible stocks, NaN -> 0, and their positions.

    Parameters
    ----------
    returns : ndarray (T, N)
    t : int
        Last row of the window (information up to the close of ``t``).
    window : int
    mask : ndarray of bool (T, N), optional
        Universe: a stock is eligible only if it is in ``mask[t]``.
    min_obs : int, optional
        Finite returns a stock needs in the window (default ``window // 2``).

    Returns
    -------
    x : ndarray (n, N_t)
        Demeaned returns of the ``N_t`` eligible stocks, ``n <= window`` rows.
    assets : ndarray of int (N_t,)
        Their column positions.
    """
    block = returns[max(t - window + 1, 0) : t + 1]
    need = window // 2 if min_obs is None else min_obs
    ok = np.isfinite(block).sum(axis=0) >= need
    if mask is not None:
        ok &= mask[t]
    assets = np.flatnonzero(ok)
    x = block[:, assets]
    x = np.nan_to_num(x - np.nanmean(x, axis=0))
    return x, assets


def trailing_mean(a: np.ndarray, window: int, min_periods: int | None = None) -> np.ndarray:
    """NaN-aware trailing mean over ``window`` rows (rows ``t-window+1..t``), shape ``(T, N)``."""
    return pd.DataFrame(a).rolling(window, min_periods=min_periods or window).mean().to_numpy()
