"""Daily cross-sectional weighted least squares (Barra-style factor returns).

On every day ``t`` the stock returns are regressed on the design matrix

.. math::

    r_{t,i} = f^{c}_t + \\sum_s D_{i s} f^{s}_t + \\sum_k X_{t,i k} f^{k}_t + e_{t,i},

``[country (all ones), sector dummies D, K factor exposures]`` with regression
weights ``w_{t,i}`` (``sqrt(size)`` clipped at the daily 95th percentile). The
country and the sector dummies are collinear, so the sector returns obey the
Barra constraint :math:`\\sum_s c_s f^s_t = 0`, ``c_s = sum of the weights of
sector s``. It is imposed by the reparametrisation ``f = R theta`` where ``R``
(``P x (P-1)``) writes the return of a reference sector (the largest one that
day) as ``-sum_{s != ref} (c_s / c_ref) f_s``; ``theta`` is then an ordinary
unconstrained WLS on ``X R``.

Timing convention: row ``t`` of ``returns`` is regressed on row ``t`` of
``exposures``. For a risk model pass exposures known *before* the return is
realised, e.g. ``lagged(exposures)`` so that ``exposures[t] = X_{t-1}`` and
``factor_returns[t]`` is the factor return realised on day ``t`` (known at ``t``).

Everything is batched over days (``einsum`` and ``np.linalg.solve`` on stacked
``(B, P, P)`` systems) in blocks of ``chunk`` days to bound memory.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)


@dataclass
class CrossSectionResult:
    """Output of :func:`cross_sectional_regression` for ``T`` days, ``N`` stocks, ``P`` factors.

    Attributes
    ----------
    factor_returns : ndarray (T, P)
        WLS factor returns ``[country, sectors..., factors...]``; NaN on invalid days
        and for factors with no exposure that day (e.g. an empty sector).
    t_stats : ndarray (T, P)
        ``f / se(f)`` with ``cov(f) = R sigma^2 (X~' W X~)^{-1} R'``,
        ``sigma^2 = sum w e^2 / (n - p)``.
    r2 : ndarray (T,)
        Weighted R^2 (uncentred ``1 - sum w e^2 / sum w y^2`` unless ``centred``).
    residuals : ndarray (T, N)
        ``e = y - X f``; NaN off the regression mask.
    names : list of str
        Factor names, length ``P``.
    weights : ndarray (T, N)
        Regression weights actually used (0 off-mask).
    n_obs : ndarray (T,)
        Stocks in each day's regression.
    """

    factor_returns: np.ndarray
    t_stats: np.ndarray
    r2: np.ndarray
    residuals: np.ndarray
    names: list[str]
    weights: np.ndarray
    n_obs: np.ndarray


def lagged(a: np.ndarray, periods: int = 1) -> np.ndarray:
    """Shift ``a`` forward in time along axis 0: ``out[t] = a[t - periods]`` (NaN for ``t < periods``)."""
    out = np.full(a.shape, np.nan)
    if periods < len(a):
        out[periods:] = a[: len(a) - periods]
    return out


def design_matrix(
    exposures: np.ndarray, sectors: np.ndarray | None, *, intercept: bool = True, n_sectors: int | None = None
) -> np.ndarray:
    """The full design ``[country, sector dummies, exposures]``.

    Parameters
    ----------
    exposures : ndarray (T, N, K)
    sectors : ndarray of int (N,) or (T, N), or None
        Sector code per stock, ``-1`` = unknown (no dummy). ``None`` = no sector block.
    intercept : bool
        Include the country column of ones.
    n_sectors : int, optional
        Number of sector dummies ``S`` (default ``max(code) + 1``).

    Returns
    -------
    ndarray (T, N, P), ``P = intercept + S + K``
    """
    T, N, _ = exposures.shape
    blocks = [np.ones((T, N, 1))] if intercept else []
    if sectors is not None:
        S = int(np.max(sectors)) + 1 if n_sectors is None else n_sectors
        codes = np.broadcast_to(sectors, (T, N))
        blocks.append((codes[..., None] == np.arange(S)).astype(float))
    blocks.append(exposures)
    return np.concatenate(blocks, axis=2)


def _wls(
    y: np.ndarray, X: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Batched WLS ``min sum_i w_i (y_i - x_i' b)^2``.

    Parameters
    ----------
    y : (B, n); X : (B, n, p); w : (B, n) with zeros for excluded rows (no NaN anywhere).

    Returns
    -------
    beta : (B, p)
        Coefficients; columns with no weighted variation (``x' W x = 0``) get 0.
    cov_unscaled : (B, p, p)
        ``(X' W X)^{-1}`` (identity on the empty columns).
    resid : (B, n)
    p_eff : (B,)
        Number of non-empty columns.
    """
    XtW = X.transpose(0, 2, 1) * w[:, None, :]
    A = XtW @ X
    empty = np.einsum("bpp->bp", A) <= 0
    A = A + np.eye(X.shape[2]) * empty[:, None, :]  # identity rows/cols for empty columns
    rhs = np.concatenate([(XtW @ y[..., None]), np.broadcast_to(np.eye(X.shape[2]), A.shape)], axis=2)
    try:
        sol = np.linalg.solve(A, rhs)
    except np.linalg.LinAlgError:
        logger.warning("singular WLS system (collinear regressors); using the pseudo-inverse")
        sol = np.linalg.pinv(A) @ rhs
    beta, inv = sol[:, :, 0], sol[:, :, 1:]
    resid = y - np.einsum("bnp,bp->bn", X, beta)
    return beta, inv, resid, (~empty).sum(axis=1)


def _r2(y: np.ndarray, resid: np.ndarray, w: np.ndarray, centred: bool) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        if centred:
            y = y - (w * y).sum(axis=1, keepdims=True) / w.sum(axis=1, keepdims=True)
        return 1.0 - (w * resid**2).sum(axis=1) / (w * y**2).sum(axis=1)


def wls_r2(y: np.ndarray, X: np.ndarray, w: np.ndarray, *, centred: bool = False) -> np.ndarray:
    """Batched weighted R^2 of regressing ``y`` on ``X``.

    Parameters
    ----------
    y : ndarray (B, n)
    X : ndarray (B, n, p)
    w : ndarray (B, n)
        Non-negative weights; rows with weight 0 or any NaN in ``y``/``X`` are ignored.
    centred : bool
        ``False``: ``1 - sum w e^2 / sum w y^2`` (uncentred, as in the Deep Risk
        Model paper). ``True``: the denominator uses ``y - ybar_w``.

    Returns
    -------
    ndarray (B,)
    """
    ok = np.isfinite(y) & np.isfinite(X).all(axis=2) & (w > 0)
    w = np.where(ok, w, 0.0)
    y, X = np.where(ok, y, 0.0), np.where(ok[..., None], X, 0.0)
    _, _, resid, _ = _wls(y, X, w)
    return _r2(y, resid, w, centred)


def _constraint_matrix(cap: np.ndarray, offset: int, P: int) -> np.ndarray:
    """``R`` (B, P, P-1) with ``f = R theta`` and ``sum_s cap_s f_s = 0`` for sectors ``offset .. offset+S-1``."""
    B, S = cap.shape
    ref = np.argmax(cap, axis=1)  # reference sector: the largest one that day
    keep = np.ones((B, P), dtype=bool)
    keep[np.arange(B), offset + ref] = False
    R = np.zeros((B, P, P - 1))
    cols = np.nonzero(keep)[1].reshape(B, P - 1)  # original index of each free parameter
    R[np.arange(B)[:, None], cols, np.arange(P - 1)] = 1.0
    cap_ref = cap[np.arange(B), ref][:, None]
    ratio = -np.divide(cap, cap_ref, out=np.zeros_like(cap), where=cap_ref > 0)  # (B, S)
    in_sector = (cols >= offset) & (cols < offset + S)
    R[np.arange(B), offset + ref, :] = np.where(
        in_sector, np.take_along_axis(ratio, np.clip(cols - offset, 0, S - 1), axis=1), 0.0
    )
    return R


def cross_sectional_regression(
    returns: np.ndarray,
    exposures: np.ndarray,
    *,
    weights: np.ndarray,
    mask: np.ndarray,
    sectors: np.ndarray | None = None,
    intercept: bool = True,
    centred: bool = False,
    factor_names: Sequence[str] | None = None,
    sector_names: Sequence[str] | None = None,
    min_obs: int | None = None,
    chunk: int = 256,
) -> CrossSectionResult:
    """Daily cross-sectional WLS of returns on ``[country, sectors, factors]``.

    Parameters
    ----------
    returns : ndarray (T, N)
        ``y_t``; row ``t`` is regressed on ``exposures[t]`` (see module timing note).
    exposures : ndarray (T, N, K)
        Style / deep / PCA exposures; NaN rows drop the stock that day.
    weights : ndarray (T, N)
        Regression weights (see :func:`riskstudy.features.weights.regression_weights`).
    mask : ndarray of bool (T, N)
        Regression universe; a stock also needs finite return and exposures.
    sectors : ndarray of int (N,) or (T, N), or None
        Sector codes (``-1`` unknown). ``None`` (China): country + factors only.
    intercept : bool
        Include the country factor; the sector sum-to-zero constraint is
        imposed only when both country and sectors are present.
    centred : bool
        R^2 flavour (see :func:`wls_r2`).
    factor_names, sector_names : sequence of str, optional
        Names for the ``K`` factors and the ``S`` sectors (``S`` = ``len(sector_names)``,
        default ``max(code) + 1``).
    min_obs : int, optional
        Fewest stocks for a valid day (default ``P + 1``); also requires ``n > p``.
    chunk : int
        Days per batched block.

    Returns
    -------
    CrossSectionResult
    """
    T, N, K = exposures.shape
    if returns.shape != (T, N) or weights.shape != (T, N) or mask.shape != (T, N):
        raise ValueError(
            f"cross_sectional_regression: returns {returns.shape}, weights {weights.shape}, mask {mask.shape} "
            f"must all be (T, N) = {(T, N)} to match exposures {exposures.shape}"
        )
    S = 0 if sectors is None else (len(sector_names) if sector_names is not None else int(np.max(sectors)) + 1)
    if sectors is not None and np.max(sectors) >= S:
        raise ValueError(f"cross_sectional_regression: sector code {np.max(sectors)} >= number of sector names {S}")
    P = int(intercept) + S + K
    names = (["country"] if intercept else []) + (
        list(sector_names) if sector_names is not None else [f"sector_{s}" for s in range(S)]
    ) + (list(factor_names) if factor_names is not None else [f"factor_{k}" for k in range(K)])
    if len(names) != P:
        raise ValueError(f"cross_sectional_regression: got {len(names)} names for P = {P} factors")
    constrained = intercept and S > 0
    min_obs = P + 1 if min_obs is None else min_obs

    ok = mask & np.isfinite(returns) & np.isfinite(exposures).all(axis=2) & (weights > 0)
    f_out, t_out = np.full((T, P), np.nan), np.full((T, P), np.nan)
    r2, resid_out, n_obs = np.full(T, np.nan), np.full((T, N), np.nan), ok.sum(axis=1)
    w_all = np.where(ok, weights, 0.0)
    for lo in range(0, T, chunk):
        sl = slice(lo, min(lo + chunk, T))
        w, m = w_all[sl], ok[sl]
        y = np.where(m, returns[sl], 0.0)
        sec = sectors[sl] if sectors is not None and np.ndim(sectors) == 2 else sectors
        X = design_matrix(np.where(m[..., None], exposures[sl], 0.0), sec, intercept=intercept, n_sectors=S)
        X *= m[..., None]
        if constrained:
            cap = np.einsum("bn,bns->bs", w, X[:, :, 1 : 1 + S])
            R = _constraint_matrix(cap, 1, P)
            theta, inv, resid, p_eff = _wls(y, X @ R, w)
            beta = np.einsum("bpq,bq->bp", R, theta)
            cov = R @ inv @ R.transpose(0, 2, 1)
        else:
            beta, cov, resid, p_eff = _wls(y, X, w)
        n = m.sum(axis=1)
        dof = n - p_eff
        valid = (n >= min_obs) & (dof > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            sigma2 = (w * resid**2).sum(axis=1) / dof
            se = np.sqrt(sigma2[:, None] * np.einsum("bpp->bp", cov))
            tstat = beta / se
        exposed = (w[:, :, None] * X**2).sum(axis=1) > 0  # factor has exposure that day
        beta, tstat = np.where(exposed, beta, np.nan), np.where(exposed, tstat, np.nan)
        f_out[sl] = np.where(valid[:, None], beta, np.nan)
        t_out[sl] = np.where(valid[:, None], tstat, np.nan)
        r2[sl] = np.where(valid, _r2(y, resid, w, centred), np.nan)
        resid_out[sl] = np.where(m & valid[:, None], resid, np.nan)
    n_bad = int((~np.isfinite(r2)).sum())
    if n_bad:
        logger.info("cross_sectional_regression: %d of %d days invalid (fewer than %d stocks)", n_bad, T, min_obs)
    return CrossSectionResult(f_out, t_out, r2, resid_out, names, w_all, n_obs)
