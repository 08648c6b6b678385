"""Factor diagnostics: significance, multicollinearity, stability and predictive power.

All statistics are computed for all days at once on ``(T, N, K)`` exposure arrays
(``NaN`` = stock not covered that day).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata

logger = logging.getLogger(__name__)


def _rowcorr(a: np.ndarray, b: np.ndarray, axis: int = 1) -> np.ndarray:
    """Pearson correlation along ``axis`` over the entries finite in both ``a`` and ``b``."""
    ok = np.isfinite(a) & np.isfinite(b)
    n = ok.sum(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(ok, a, 0.0)
        b = np.where(ok, b, 0.0)
        a = np.where(ok, a - a.sum(axis=axis, keepdims=True) / n, 0.0)
        b = np.where(ok, b - b.sum(axis=axis, keepdims=True) / n, 0.0)
        return (a * b).sum(axis=axis) / np.sqrt((a**2).sum(axis=axis) * (b**2).sum(axis=axis))


def t_stat_summary(t_stats: np.ndarray, names: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean ``|t|`` and share of days with ``|t| > 2`` per factor.

    Parameters
    ----------
    t_stats : ndarray (T, P)
        Daily regression t-statistics (NaN days ignored).
    names : sequence of str, optional

    Returns
    -------
    DataFrame indexed by factor with ``mean_abs_t``, ``pct_abs_t_gt_2`` (in %), ``n_days``.
    """
    a = np.abs(t_stats)
    n = np.isfinite(a).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_abs = np.nansum(a, axis=0) / n
        pct = 100.0 * (a > 2).sum(axis=0) / n
    idx = list(names) if names is not None else [f"factor_{k}" for k in range(t_stats.shape[1])]
    return pd.DataFrame({"mean_abs_t": mean_abs, "pct_abs_t_gt_2": pct, "n_days": n}, index=idx)


def vif(exposures: np.ndarray, *, mask: np.ndarray | None = None, weights: np.ndarray | None = None) -> np.ndarray:
    """Variance inflation factors averaged over days.

    ``VIF_k = 1 / (1 - R_k^2)`` of regressing factor ``k`` on the others (with an
    intercept) equals the ``k``-th diagonal element of the inverse (weighted)
    correlation matrix of the exposures, which is what is computed per day.

    Parameters
    ----------
    exposures : ndarray (T, N, K)
    mask : ndarray of bool (T, N), optional
        Stocks used each day (also need finite exposures).
    weights : ndarray (T, N), optional
        Regression weights (default equal).

    Returns
    -------
    ndarray (K,)
        Mean over days with at least ``K + 2`` stocks; ``inf`` on exact collinearity.
    """
    T, N, K = exposures.shape
    ok = np.isfinite(exposures).all(axis=2)
    if mask is not None:
        ok &= mask
    w = np.where(ok, 1.0 if weights is None else weights, 0.0)
    x = np.where(ok[..., None], exposures, 0.0)
    sw = w.sum(axis=1)
    days = (ok.sum(axis=1) >= K + 2) & (sw > 0)
    x, w, sw = x[days], w[days], sw[days]
    xc = x - np.einsum("tn,tnk->tk", w, x)[:, None, :] / sw[:, None, None]
    cov = np.einsum("tn,tnk,tnl->tkl", w, xc, xc) / sw[:, None, None]
    sd = np.sqrt(np.einsum("tkk->tk", cov))
    good = (sd > 0).all(axis=1)
    corr = cov[good] / (sd[good, :, None] * sd[good, None, :])
    out = np.full((len(cov), K), np.inf)
    if not len(out):
        return np.full(K, np.nan)
    try:
        out[good] = np.einsum("tkk->tk", np.linalg.inv(corr))
    except np.linalg.LinAlgError:
        for i, c in zip(np.flatnonzero(good), corr, strict=True):
            try:
                out[i] = np.diag(np.linalg.inv(c))
            except np.linalg.LinAlgError:
                logger.debug("vif: exactly collinear exposures on one day")
    return out.mean(axis=0)


def rank_autocorrelation(exposures: np.ndarray, *, mask: np.ndarray | None = None, daily: bool = False) -> np.ndarray:
    """Lag-1 Spearman autocorrelation of exposures, per day then averaged.

    For every day ``t >= 1`` and factor ``k``: the Spearman correlation of
    ``X[t, :, k]`` and ``X[t-1, :, k]`` over stocks covered on both days.

    Parameters
    ----------
    exposures : ndarray (T, N, K)
    mask : ndarray of bool (T, N), optional
    daily : bool
        Return the daily correlations instead of their mean.

    Returns
    -------
    ndarray
        ``(K,)`` mean over days of the daily rank correlations, or with ``daily`` the
        ``(T, K)`` daily values (row 0 and days with < 3 common stocks are NaN).
    """
    x = exposures if mask is None else np.where(mask[..., None], exposures, np.nan)
    both = np.isfinite(x[1:]) & np.isfinite(x[:-1])
    cur = rankdata(np.where(both, x[1:], np.nan), axis=1, nan_policy="omit")
    prev = rankdata(np.where(both, x[:-1], np.nan), axis=1, nan_policy="omit")
    rho = np.full(exposures.shape[::2], np.nan)
    rho[1:] = np.where(both.sum(axis=1) >= 3, _rowcorr(cur, prev, axis=1), np.nan)
    if daily:
        return rho
    n = np.isfinite(rho).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nansum(rho, axis=0) / n


def information_coefficient(
    scores: np.ndarray, returns: np.ndarray, *, mask: np.ndarray | None = None, rank: bool = True
) -> np.ndarray:
    """Daily IC of a score known at ``t`` against the next day's returns.

    ``IC_t = corr(score[t], returns[t + 1])`` across stocks (Spearman if ``rank``).

    Parameters
    ----------
    scores : ndarray (T, N)
        Known at the close of ``t``.
    returns : ndarray (T, N)
        ``returns[t]`` realised on day ``t``; shifted here, so pass them unshifted.
    mask : ndarray of bool (T, N), optional
        Universe at ``t``.
    rank : bool
        Rank IC (Spearman) or Pearson IC.

    Returns
    -------
    ndarray (T,)
        NaN for the last day and days with < 3 stocks.
    """
    s = scores[:-1] if mask is None else np.where(mask[:-1], scores[:-1], np.nan)
    r = returns[1:]
    both = np.isfinite(s) & np.isfinite(r)
    s, r = np.where(both, s, np.nan), np.where(both, r, np.nan)
    if rank:
        s, r = rankdata(s, axis=1, nan_policy="omit"), rankdata(r, axis=1, nan_policy="omit")
    ic = np.full(len(scores), np.nan)
    ic[:-1] = np.where(both.sum(axis=1) >= 3, _rowcorr(s, r, axis=1), np.nan)
    return ic


def ic_summary(ic: np.ndarray) -> dict[str, float]:
    """Mean, std, information ratio ``mean / std`` and t-statistic ``mean / std * sqrt(n)`` of a daily IC series."""
    x = ic[np.isfinite(ic)]
    mean, sd = np.float64(x.mean()), np.float64(x.std(ddof=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        ir = mean / sd
    return {"ic_mean": float(mean), "ic_std": float(sd), "ic_ir": float(ir), "ic_t": float(ir * np.sqrt(len(x))),
            "n_days": float(len(x))}


def factor_diagnostics(
    t_stats: np.ndarray,
    exposures: np.ndarray,
    names: Sequence[str],
    *,
    mask: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> pd.DataFrame:
    """One table per factor: mean ``|t|``, % ``|t| > 2``, VIF and lag-1 rank autocorrelation.

    Parameters
    ----------
    t_stats : ndarray (T, K)
        t-statistics of the ``K`` factors whose exposures are given (e.g. ``cs.t_stats[:, -K:]``).
    exposures : ndarray (T, N, K)
    names : sequence of str, length K
    mask, weights
        See :func:`vif`.
    """
    out = t_stat_summary(t_stats, names)
    out["vif"] = vif(exposures, mask=mask, weights=weights)
    out["rank_autocorr"] = rank_autocorrelation(exposures, mask=mask)
    return out
