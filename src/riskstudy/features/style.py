"""Price/volume style factors: the exposures of the fundamental baseline (FRM).

All factors at day ``t`` use data up to ``t`` only. Definitions (Barra-USE4
inspired, restricted to what daily price/volume data supports):

size
    ``log`` of the trailing ``liquidity_window`` mean dollar volume. We have no
    shares outstanding, so traded value is the size proxy.
beta
    Slope of the stock's daily return on the benchmark's over ``beta_window`` days.
momentum
    Sum of log returns from ``t - momentum_window`` to ``t - momentum_skip``.
residual_volatility
    Standard deviation of the beta-regression residuals over ``resvol_window`` days.
nonlinear_size
    Cube of standardised size, orthogonalised to size across the day's stocks.
liquidity
    ``log`` of trailing ``liquidity_window`` mean dollar volume over its
    ``beta_window`` mean (relative trading activity), orthogonalised to size.

Book-to-price, earnings yield, growth and leverage need accounting data that
these price-only datasets lack: they are absent from our FRM.

Each factor is winsorised at 3 standard deviations and standardised per day to a
size-weighted mean of zero and unit cross-sectional standard deviation over
the day's universe.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskstudy.data.panel import Panel

STYLE_FACTORS = ("size", "beta", "momentum", "residual_volatility", "nonlinear_size", "liquidity")


def _rolling(a: np.ndarray, window: int, how: str = "mean") -> np.ndarray:
    r = pd.DataFrame(a).rolling(window, min_periods=max(2, window * 2 // 3))
    return getattr(r, how)().to_numpy()


def standardize(x: np.ndarray, mask: np.ndarray, weights: np.ndarray | None = None, *, clip: float = 3.0) -> np.ndarray:
    """Per-day winsorised z-score with a weighted zero mean and unit std.

    Parameters
    ----------
    x, mask, weights : ndarray (T, N)

    Returns
    -------
    ndarray (T, N), NaN off ``mask`` or where ``x`` is missing.
    """
    x = np.where(mask & np.isfinite(x), x, np.nan)
    w = np.where(np.isfinite(x), 1.0 if weights is None else np.nan_to_num(weights), 0.0)
    for _ in range(2):  # winsorise on a first z-score, then re-standardise
        mu = np.nansum(w * x, 1, keepdims=True) / np.maximum(w.sum(1, keepdims=True), 1e-12)
        sd = np.nanstd(x, 1, keepdims=True)
        x = np.clip(x, mu - clip * sd, mu + clip * sd)
    mu = np.nansum(w * x, 1, keepdims=True) / np.maximum(w.sum(1, keepdims=True), 1e-12)
    sd = np.nanstd(x, 1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x - mu) / sd


def _orthogonalize(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Residual of the per-day OLS of ``y`` on ``[1, x]`` (both ``(T, N)``)."""
    ok = np.isfinite(y) & np.isfinite(x)
    n = ok.sum(1, keepdims=True)
    xm = np.where(ok, x, 0).sum(1, keepdims=True) / np.maximum(n, 1)
    ym = np.where(ok, y, 0).sum(1, keepdims=True) / np.maximum(n, 1)
    xc, yc = np.where(ok, x - xm, 0), np.where(ok, y - ym, 0)
    b = (xc * yc).sum(1, keepdims=True) / np.maximum((xc * xc).sum(1, keepdims=True), 1e-12)
    return np.where(ok, yc - b * xc, np.nan)


def style_factors(
    panel: Panel,
    benchmark: pd.Series,
    *,
    beta_window: int,
    momentum_window: int,
    momentum_skip: int,
    resvol_window: int,
    liquidity_window: int,
) -> np.ndarray:
    """Standardised style exposures, shape ``(T, N, 6)`` in the order of :data:`STYLE_FACTORS`.

    ``benchmark`` is the market return series aligned to ``panel.dates``.
    """
    r = panel["ret"]
    m = benchmark.reindex(panel.dates).to_numpy(dtype=float)[:, None]
    mask = panel.member
    dv = np.where(panel["dollar_volume"] > 0, panel["dollar_volume"], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        size = np.log(_rolling(dv, liquidity_window))
        both = np.isfinite(r) & np.isfinite(m)
        rr, mm = np.where(both, r, np.nan), np.where(both, m, np.nan)
        cov = _rolling(rr * mm, beta_window) - _rolling(rr, beta_window) * _rolling(mm, beta_window)
        var_m = _rolling(mm * mm, beta_window) - _rolling(mm, beta_window) ** 2
        beta = cov / var_m
        var_r = _rolling(rr * rr, resvol_window) - _rolling(rr, resvol_window) ** 2
        resvol = np.sqrt(np.maximum(var_r - beta**2 * var_m, 0.0))
        logret = pd.DataFrame(np.log1p(r)).fillna(0.0)
        cum = logret.cumsum().to_numpy()
        momentum = np.full_like(cum, np.nan)
        momentum[momentum_window:] = cum[momentum_window - momentum_skip : len(cum) - momentum_skip] - cum[: len(cum) - momentum_window]
        liq = size - np.log(_rolling(dv, beta_window))
    w = np.exp(size)
    z_size = standardize(size, mask, w)
    raw = {
        "size": z_size,
        "beta": beta,
        "momentum": momentum,
        "residual_volatility": resvol,
        "nonlinear_size": _orthogonalize(z_size**3, z_size),
        "liquidity": _orthogonalize(liq, z_size),
    }
    return np.stack([standardize(raw[k], mask, w) for k in STYLE_FACTORS], axis=-1)
