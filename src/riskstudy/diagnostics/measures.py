r"""Factor-quality measures of any factor model's exposures (the design document's list, made real).

Shapes: ``T`` days, ``N`` stocks, ``K`` factors; exposures ``X (T, N, K)`` are known at the close of
``t`` (NaN off-universe), returns ``r (T, N)`` are realised on day ``t``.

* **Information coefficient** (:func:`ic_series`): for each day and factor, the cross-sectional
  correlation (Spearman or Pearson) of ``X[t, :, k]`` with the return over the next ``h`` days,
  :math:`R^{(h)}_{t,i} = \prod_{s=1}^{h} (1 + r_{t+s,i}) - 1` (:func:`forward_returns`; strictly
  future). Summarised by its mean, the IC information ratio ``mean / sd`` and a Newey-West
  t-statistic (:func:`newey_west_t`; overlapping ``h``-day returns make the daily ICs
  autocorrelated, so the lag is at least ``h``).
* **t-statistic of factor returns** (the document's :math:`t = \bar f / (s_f / \sqrt n)`,
  :func:`mean_t`), beside the paper's mean cross-sectional :math:`|t|`
  (:func:`riskstudy.evaluation.factor_stats.t_stat_summary`).
* **Explained-variance ratio** (:func:`explained_variance_ratio`): the share of the (weighted)
  return variance carried by one regressor's contribution :math:`x_{t,ik} f_{t,k}`,

  .. math:: \mathrm{EVR}_k = \frac{\sum_{t,i} w_{t,i} (x_{t,ik} f_{t,k})^2}{\sum_{t,i} w_{t,i} r_{t,i}^2},

  the document's :math:`\mathrm{Var}(f) / \mathrm{Var}(r)` with the exposures' scale. For
  regressors orthogonal in the weighted inner product the EVRs sum to the regression's
  (uncentred, pooled) R^2; for correlated ones they do not (cross terms).
* **VIF**: :func:`riskstudy.evaluation.factor_stats.vif` (regression of each factor on the
  others, cross-section by cross-section, averaged).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata

from riskstudy.evaluation.factor_stats import _rowcorr


def forward_returns(returns: np.ndarray, horizon: int) -> np.ndarray:
    r"""Compounded return over the next ``horizon`` days ``(T, N)``: row ``t`` holds days ``t+1 .. t+horizon``.

    NaN when any of those days is missing or lies beyond the panel (strictly future: row ``t``
    never uses ``returns[t]``).
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    T = len(returns)
    logs = np.log1p(returns)
    c = np.concatenate([np.zeros((1, *returns.shape[1:])), np.cumsum(np.where(np.isfinite(logs), logs, 0.0), axis=0)])
    bad = np.concatenate([np.zeros((1, *returns.shape[1:])), np.cumsum(~np.isfinite(logs), axis=0)])
    out = np.full(returns.shape, np.nan)
    if horizon < T:
        s = slice(0, T - horizon)
        total = c[1 + horizon:] - c[1:T - horizon + 1]
        missing = bad[1 + horizon:] - bad[1:T - horizon + 1]
        out[s] = np.where(missing == 0, np.expm1(total), np.nan)
    return out


def ic_series(exposures: np.ndarray, future: np.ndarray, *, mask: np.ndarray | None = None,
              rank: bool = True, min_stocks: int = 3) -> np.ndarray:
    """Daily cross-sectional IC of every factor ``(T, K)``: ``corr(X[t, :, k], future[t])`` over stocks finite in both.

    Parameters
    ----------
    exposures : ndarray, shape (T, N, K)
    future : ndarray, shape (T, N)
        Returns after ``t`` (:func:`forward_returns`), aligned on the exposures' rows.
    mask : ndarray of bool, shape (T, N), optional
        The day's universe.
    rank : bool
        Spearman (ranks among the common stocks) or Pearson.
    min_stocks : int
        Days with fewer common stocks are NaN.
    """
    x = np.moveaxis(exposures, 2, 1)  # (T, K, N)
    r = np.broadcast_to(future[:, None, :], x.shape)
    ok = np.isfinite(x) & np.isfinite(r)
    if mask is not None:
        ok &= mask[:, None, :]
    x, r = np.where(ok, x, np.nan), np.where(ok, r, np.nan)
    if rank:
        x, r = rankdata(x, axis=2, nan_policy="omit"), rankdata(r, axis=2, nan_policy="omit")
    return np.where(ok.sum(axis=2) >= min_stocks, _rowcorr(x, r, axis=2), np.nan)


def default_nw_lags(n: int) -> int:
    """Newey-West's rule of thumb :math:`\\lfloor 4 (n / 100)^{2/9} \\rfloor`."""
    return int(np.floor(4 * (max(n, 1) / 100) ** (2 / 9)))


def newey_west_t(x: np.ndarray, *, lags: int | None = None) -> np.ndarray:
    r"""t-statistic of the mean of each column of ``x`` ``(T, K)`` with a Newey-West (Bartlett) standard error.

    .. math:: t = \bar x / \sqrt{\hat\Omega / n}, \qquad
              \hat\Omega = \hat\gamma_0 + 2 \sum_{l=1}^{L} \big(1 - \tfrac{l}{L+1}\big) \hat\gamma_l

    over each column's finite values (in time order, gaps closed); ``lags`` ``L`` defaults to
    :func:`default_nw_lags`. ``L = 0`` is the plain :math:`\bar x / (s / \sqrt n)` with the
    biased variance. NaN with fewer than 3 values.
    """
    x = np.asarray(x, dtype=float)
    x = x[:, None] if x.ndim == 1 else x
    out = np.full(x.shape[1], np.nan)
    for k in range(x.shape[1]):  # K columns, each a 1-D HAC sum (no loop over stocks or days)
        v = x[np.isfinite(x[:, k]), k]
        n = len(v)
        if n < 3:
            continue
        L = default_nw_lags(n) if lags is None else min(int(lags), n - 1)
        e = v - v.mean()
        omega = e @ e / n
        for lag in range(1, L + 1):
            omega += 2 * (1 - lag / (L + 1)) * (e[lag:] @ e[:-lag]) / n
        out[k] = v.mean() / np.sqrt(omega / n) if omega > 0 else np.nan
    return out


def mean_t(f: np.ndarray) -> np.ndarray:
    r"""The design document's t-statistic of each factor-return column ``(T, K)``: :math:`\bar f / (s_f / \sqrt n)` (NaN dropped)."""
    f = np.asarray(f, dtype=float)
    f = f[:, None] if f.ndim == 1 else f
    n = np.isfinite(f).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nanmean(f, axis=0) / (np.nanstd(f, axis=0, ddof=1) / np.sqrt(n))


def ic_summary(ic: np.ndarray, *, horizon: int = 1) -> dict[str, np.ndarray]:
    """Per factor: ``ic`` (mean), ``icir`` (mean / sd) and ``ic_t`` (Newey-West, lag at least ``horizon``)."""
    n = np.isfinite(ic).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(ic, axis=0)
        icir = mean / np.nanstd(ic, axis=0, ddof=1)
    lags = max(default_nw_lags(int(n.max()) if n.size else 0), horizon)
    return {"ic": mean, "icir": icir, "ic_t": newey_west_t(ic, lags=lags), "n_days": n}


def explained_variance_ratio(design: np.ndarray, coefs: np.ndarray, returns: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """EVR of every regressor ``(P,)`` (module docstring), pooled over days and stocks.

    Parameters
    ----------
    design : ndarray, shape (T, N, P)
        The regressors of each day's regression (NaN or zero weight where a stock is out).
    coefs : ndarray, shape (T, P)
        Each day's coefficients (NaN days are left out).
    returns : ndarray, shape (T, N)
    weights : ndarray, shape (T, N)
        Regression weights (0 off the regression).
    """
    ok = np.isfinite(design).all(axis=2) & np.isfinite(returns) & np.isfinite(coefs).all(axis=1)[:, None] & (weights > 0)
    w = np.where(ok, weights, 0.0)
    contrib = np.where(ok[..., None], design, 0.0) * np.where(np.isfinite(coefs), coefs, 0.0)[:, None, :]
    total = float((w * np.where(ok, returns, 0.0) ** 2).sum())
    return np.einsum("tn,tnp->p", w, contrib ** 2) / total


def pooled_r2(design: np.ndarray, coefs: np.ndarray, returns: np.ndarray, weights: np.ndarray) -> float:
    """Uncentred pooled R^2 ``1 - sum w e^2 / sum w r^2`` of the same regressions as :func:`explained_variance_ratio`."""
    ok = np.isfinite(design).all(axis=2) & np.isfinite(returns) & np.isfinite(coefs).all(axis=1)[:, None] & (weights > 0)
    w = np.where(ok, weights, 0.0)
    fit = np.einsum("tnp,tp->tn", np.where(ok[..., None], design, 0.0), np.where(np.isfinite(coefs), coefs, 0.0))
    r = np.where(ok, returns, 0.0)
    return 1.0 - float((w * (r - fit) ** 2).sum()) / float((w * r ** 2).sum())


def ic_table(exposures: np.ndarray, returns: np.ndarray, *, names: Sequence[str], mask: np.ndarray | None = None,
             horizons: Sequence[int] = (1, 20), rows: slice | None = None,
             min_stocks: int = 3) -> dict[str, dict[str, float]]:
    """Spearman and Pearson IC of every factor at each horizon: ``{factor: {"ic", "ic_t", "icir", "ic_pearson",
    "ic_pearson_t", ...}}`` (keys of horizons after the first get a ``_<h>d`` suffix).

    ``exposures (T, N, K)``, ``returns`` and ``mask`` ``(T, N)`` are on one calendar; ``rows`` (default all)
    are the decision days scored, whose future returns may lie after them (up to ``h`` days)."""
    rows = slice(None) if rows is None else rows
    out: dict[str, dict[str, float]] = {n: {} for n in names}
    for j, h in enumerate(horizons):
        fut = forward_returns(returns, h)[rows]
        suffix = "" if j == 0 else f"_{h}d"
        for rank, tag in ((True, ""), (False, "_pearson")):
            ic = ic_series(exposures[rows], fut, mask=None if mask is None else mask[rows], rank=rank, min_stocks=min_stocks)
            s = ic_summary(ic, horizon=h)
            for i, n in enumerate(names):
                out[n][f"ic{tag}{suffix}"] = float(s["ic"][i])
                out[n][f"ic{tag}_t{suffix}"] = float(s["ic_t"][i])
                out[n][f"icir{tag}{suffix}"] = float(s["icir"][i])
    return out
