"""Cross-sectional regression weights from a size proxy (the risk regression and the DRM loss use the same)."""

from __future__ import annotations

import numpy as np


def regression_weights(size: np.ndarray, mask: np.ndarray, *, clip_quantile: float = 0.95) -> np.ndarray:
    """Barra regression weights ``w = min(sqrt(size), q_t)``.

    Parameters
    ----------
    size : ndarray (T, N)
        Positive size proxy (market cap, or dollar volume here). NaN/non-positive -> weight 0.
    mask : ndarray of bool (T, N)
        Stocks in the regression universe.
    clip_quantile : float
        Daily cap ``q_t`` = this quantile of ``sqrt(size)`` over the masked stocks.

    Returns
    -------
    ndarray (T, N)
        Non-negative weights, 0 off-mask.
    """
    with np.errstate(invalid="ignore"):
        root = np.where(mask & (size > 0), np.sqrt(np.where(size > 0, size, np.nan)), np.nan)
    cap = np.full(len(root), np.nan)
    has = np.isfinite(root).any(axis=1)
    cap[has] = np.nanquantile(root[has], clip_quantile, axis=1)
    return np.nan_to_num(np.minimum(root, cap[:, None]), nan=0.0)
