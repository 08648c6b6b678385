"""Factor covariance, specific risk and the per-day factor risk model ``X F X' + D``.

Stock covariance is never formed densely (except :meth:`FactorRiskModel.covariance`
for tests): everything works in factor form,

.. math::  \\Sigma_t = X_t F_t X_t' + \\operatorname{diag}(d_t).

Timing: ``F_t`` and ``d_t`` use factor returns and residuals of rows ``<= t``
(the regression must have been run with exposures known before each return, see
:mod:`riskstudy.risk.regression`), ``X_t`` are the exposures known at ``t``, so
``Sigma_t`` forecasts the covariance of the returns of day ``t + 1``.

EWMA averages are normalised, ``sum_s lam^(t-s) v_s x_s / sum_s lam^(t-s) v_s``
with ``lam = 0.5^(1/half_life)`` and ``v_s`` the validity of observation ``s``
(pairwise for covariances), computed for all days at once with
:func:`scipy.signal.lfilter`; returns are assumed zero-mean (daily).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.signal import lfilter

from riskstudy.risk.model import RiskModel
from riskstudy.config import RiskConfig
from riskstudy.risk.regression import CrossSectionResult

#: Simulations of the eigenfactor risk adjustment when ``risk.eigen_adjust`` is on.
EIGEN_ADJUST_SIMS = 100

if TYPE_CHECKING:
    import cvxpy as cp

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------- EWMA tools
def ewma_weights(half_life: float, n: int) -> np.ndarray:
    """Normalised EWMA weights of the last ``n`` observations, oldest first: ``w_s ∝ 0.5^((n-1-s)/half_life)``."""
    w = 0.5 ** (np.arange(n - 1, -1, -1) / half_life)
    return w / w.sum()


def ewma(x: np.ndarray, valid: np.ndarray, half_life: float) -> np.ndarray:
    """Normalised EWMA along axis 0 ignoring invalid entries.

    Parameters
    ----------
    x : ndarray (T, ...)
        Observations (values where ``valid`` is False are ignored).
    valid : ndarray of bool, broadcastable to ``x``
    half_life : float
        In observations; decay ``lam = 0.5 ** (1 / half_life)``.

    Returns
    -------
    ndarray (T, ...)
        ``m_t = sum_{s<=t} lam^(t-s) v_s x_s / sum_{s<=t} lam^(t-s) v_s`` (NaN before the first valid entry).
    """
    lam = 0.5 ** (1.0 / half_life)
    v = np.broadcast_to(valid, x.shape).astype(float)
    num = lfilter([1.0], [1.0, -lam], np.where(v > 0, x, 0.0), axis=0)
    den = lfilter([1.0], [1.0, -lam], v, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def ewma_covariance(f: np.ndarray, half_life: float, *, newey_west_lags: int = 0) -> np.ndarray:
    """Zero-mean EWMA covariance of ``f`` (T, P) for every day, with Bartlett Newey-West lags.

    ``C_t = G0_t + sum_{l=1..L} (1 - l/(L+1)) (Gl_t + Gl_t')``, ``Gl_t = EWMA_s(f_s f_{s-l}')``.

    Returns
    -------
    ndarray (T, P, P)
    """
    v = np.isfinite(f)
    f0 = np.where(v, f, 0.0)
    cov = ewma(f0[:, :, None] * f0[:, None, :], v[:, :, None] & v[:, None, :], half_life)
    for lag in range(1, newey_west_lags + 1):
        prod = np.zeros_like(cov)
        ok = np.zeros(cov.shape, dtype=bool)
        prod[lag:] = f0[lag:, :, None] * f0[:-lag, None, :]
        ok[lag:] = v[lag:, :, None] & v[:-lag, None, :]
        g = np.nan_to_num(ewma(prod, ok, half_life))
        cov = cov + (1.0 - lag / (newey_west_lags + 1)) * (g + g.transpose(0, 2, 1))
    return cov


# ---------------------------------------------------------- factor covariance
@dataclass
class FactorCovariance:
    """Daily factor covariance forecasts.

    Attributes
    ----------
    cov : ndarray (T, P, P)
        ``F_t``, forecast for day ``t + 1`` from rows ``<= t``; NaN before ``min_history``.
    vra_scale : ndarray (T,)
        ``lambda_F,t^2`` applied (1 without VRA).
    bias_sq : ndarray (T,)
        Squared cross-sectional bias statistic ``B_t^2 = mean_k (f_{t,k} / sigma_{t-1,k})^2`` (NaN where undefined).
    """

    cov: np.ndarray
    vra_scale: np.ndarray
    bias_sq: np.ndarray


def eigenfactor_adjustment(
    cov: np.ndarray, *, n_sims: int = 100, horizon: int = 252, scale: float = 1.2, seed: int = 0, chunk: int = 32
) -> np.ndarray:
    """Simulation-based eigenfactor risk adjustment (Menchero, Wang & Orr 2012).

    For ``F = U diag(e) U'`` draw ``n_sims`` samples of ``horizon`` returns from
    ``N(0, diag(e))`` (common random numbers for all days), estimate their sample
    covariance ``F_m = U_m diag(e_m) U_m'``, and measure the bias of the simulated
    eigenfactors ``v_k^2 = mean_m (u_mk' diag(e) u_mk / e_mk)``. The adjusted
    matrix is ``U diag(gamma^2 e) U'`` with ``gamma = scale (v - 1) + 1``.

    Parameters
    ----------
    cov : ndarray (T, P, P)
        Factor covariances; days with NaN are returned unchanged.
    n_sims, horizon : int
        Monte-Carlo draws and observations per draw.
    scale : float
        Empirical scaling ``a`` of the bias.
    seed : int
        Seed of the simulated returns (deterministic output).

    Returns
    -------
    ndarray (T, P, P)
    """
    P = cov.shape[1]
    z = np.random.default_rng(seed).standard_normal((n_sims, P, horizon))
    sz = z @ z.transpose(0, 2, 1) / horizon  # (M, P, P) sample covariance of unit draws
    out = cov.copy()
    days = np.flatnonzero(np.isfinite(cov).all(axis=(1, 2)))
    for lo in range(0, len(days), chunk):
        idx = days[lo : lo + chunk]
        e, U = np.linalg.eigh(cov[idx])  # (c, P), (c, P, P)
        e = np.clip(e, 0.0, None)
        root = np.sqrt(e)[:, None, :, None] * np.sqrt(e)[:, None, None, :]
        em, Um = np.linalg.eigh(root * sz[None])  # simulated covariances in the eigenbasis of F
        true = np.einsum("cmjk,cj->cmk", Um**2, e)
        ok = em > 1e-12 * np.maximum(e.max(axis=1), 1e-300)[:, None, None]
        ratio = np.where(ok, true / np.where(ok, em, 1.0), 1.0)
        v = np.sqrt(ratio.mean(axis=1))
        gamma = scale * (v - 1.0) + 1.0
        out[idx] = (U * (gamma**2 * e)[:, None, :]) @ U.transpose(0, 2, 1)
    return out


def factor_covariance(
    factor_returns: np.ndarray,
    *,
    corr_half_life: float,
    vol_half_life: float,
    vra_half_life: float | None,
    newey_west_lags: int = 0,
    eigen_adjust_sims: int = 0,
    eigen_horizon: int = 252,
    eigen_scale: float = 1.2,
    seed: int = 0,
    min_history: int = 60,
) -> FactorCovariance:
    """EWMA factor covariance with separate vol/correlation half-lives, eigen adjustment and VRA.

    ``F_t = diag(sigma_t) C_t diag(sigma_t)`` where ``sigma_t^2`` is the diagonal of the
    EWMA covariance with ``vol_half_life`` and ``C_t`` the correlation of the one with
    ``corr_half_life`` (both with ``newey_west_lags``). Then, optionally, the
    eigenfactor adjustment (:func:`eigenfactor_adjustment`) and the Volatility Regime
    Adjustment (Barra USE4): ``B_t^2 = mean_k (f_{t,k} / sigma_{t-1,k})^2`` with
    ``sigma_{t-1}`` the forecast made the day before, ``lambda_t^2 = EWMA_{vra}(B^2)``
    and ``F_t <- lambda_t^2 F_t``.

    Parameters
    ----------
    factor_returns : ndarray (T, P)
        NaN = not observed (invalid day or empty factor); ignored pairwise.
    corr_half_life, vol_half_life : float
        EWMA half-lives in days for correlations and volatilities.
    vra_half_life : float or None
        Half-life of the VRA bias EWMA; ``None`` disables VRA.
    newey_west_lags : int
        Bartlett-weighted autocovariance lags.
    eigen_adjust_sims : int
        Monte-Carlo draws of the eigenfactor risk adjustment (:func:`eigenfactor_adjustment`);
        0 (default) disables it.
    eigen_horizon, eigen_scale, seed
        Its observations per draw, scaling and seed.
    min_history : int
        Valid days (rows with any finite factor return) needed before the first forecast.

    Returns
    -------
    FactorCovariance
        With ``cov`` (T, P, P): NaN before ``min_history``; unobserved factors get 0 rows/columns.
    """
    T, P = factor_returns.shape
    vol2 = np.einsum("tpp->tp", ewma_covariance(factor_returns, vol_half_life, newey_west_lags=newey_west_lags))
    cc = ewma_covariance(factor_returns, corr_half_life, newey_west_lags=newey_west_lags)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(np.einsum("tpp->tp", cc))
        corr = cc / (sd[:, :, None] * sd[:, None, :])
        sig = np.sqrt(np.clip(vol2, 0.0, None))
    cov = np.nan_to_num(corr * sig[:, :, None] * sig[:, None, :])
    history = np.cumsum(np.isfinite(factor_returns).any(axis=1))
    cov[history < min_history] = np.nan
    if eigen_adjust_sims > 0:
        cov = eigenfactor_adjustment(cov, n_sims=eigen_adjust_sims, horizon=eigen_horizon, scale=eigen_scale, seed=seed)

    bias_sq = np.full(T, np.nan)
    scale = np.ones(T)
    if vra_half_life is not None:
        prev_sd = np.full((T, P), np.nan)
        prev_sd[1:] = np.sqrt(np.einsum("tpp->tp", cov[:-1]))
        with np.errstate(invalid="ignore", divide="ignore"):
            z2 = (factor_returns / prev_sd) ** 2
        z2[~(prev_sd > 0)] = np.nan
        has = np.isfinite(z2).any(axis=1)
        bias_sq[has] = np.nanmean(z2[has], axis=1)
        lam2 = ewma(np.nan_to_num(bias_sq), has, vra_half_life)
        scale = np.where(np.isfinite(lam2), lam2, 1.0)
        cov = cov * scale[:, None, None]
    return FactorCovariance(cov, scale, bias_sq)


# ------------------------------------------------------------- specific risk
def specific_variance(
    residuals: np.ndarray,
    *,
    half_life: float = 60,
    shrinkage: float = 0.1,
    buckets: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    min_obs: int = 20,
    floor: float = 1e-6,
) -> np.ndarray:
    """EWMA specific variance with cross-sectional shrinkage.

    ``d_raw = EWMA(e^2)``; ``d = (1 - kappa) d_raw + kappa mean_bucket(d_raw)``;
    stocks in ``mask`` with fewer than ``min_obs`` residuals get the cross-sectional
    median of ``d``; finally ``d >= floor``.

    Parameters
    ----------
    residuals : ndarray (T, N)
        Regression residuals (NaN = not in that day's regression).
    half_life : float
    shrinkage : float
        ``kappa`` in [0, 1].
    buckets : ndarray of int (N,) or (T, N), optional
        Shrinkage groups (e.g. size decile or sector); ``-1`` or ``None`` = whole cross-section.
    mask : ndarray of bool (T, N), optional
        Universe for the cross-sectional mean/median and the fill; default: stocks with enough history.
    min_obs : int
        Residuals needed before a stock's own EWMA is used.
    floor : float
        Minimum daily specific variance.

    Returns
    -------
    ndarray (T, N)
        NaN outside ``mask`` for stocks without enough history.
    """
    T, N = residuals.shape
    valid = np.isfinite(residuals)
    raw = ewma(np.where(valid, residuals, 0.0) ** 2, valid, half_life)
    enough = np.cumsum(valid, axis=0) >= min_obs
    raw = np.where(enough, raw, np.nan)
    universe = enough if mask is None else mask
    member = universe & enough
    codes = np.zeros((T, N), dtype=np.int64) if buckets is None else np.broadcast_to(buckets, (T, N)).astype(np.int64)
    n_b = int(codes.max()) + 2  # last slot = "whole cross-section" for code -1
    codes = np.where(codes < 0, n_b - 1, codes)
    flat = (np.arange(T)[:, None] * n_b + codes)[member]
    sums = np.bincount(flat, weights=raw[member], minlength=T * n_b).reshape(T, n_b)
    counts = np.bincount(flat, minlength=T * n_b).reshape(T, n_b)
    all_mean = sums.sum(axis=1) / np.maximum(counts.sum(axis=1), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        bucket_mean = np.where(counts > 0, sums / counts, all_mean[:, None])
    bucket_mean[:, n_b - 1] = all_mean
    target = np.take_along_axis(bucket_mean, codes, axis=1)
    d = (1.0 - shrinkage) * raw + shrinkage * target
    has = member.any(axis=1)
    median = np.full(T, np.nan)
    median[has] = np.nanmedian(np.where(member, d, np.nan)[has], axis=1)
    d = np.where(universe & ~enough, median[:, None], d)
    return np.maximum(d, floor)


# ------------------------------------------------------------ the risk model
@dataclass(frozen=True)
class FactorRiskModel(RiskModel):
    """One day's risk model ``Sigma = X F X' + diag(d)`` kept in factor form (a :class:`RiskModel`).

    Every method costs ``O(N P^2 + P^3)`` at most; only :meth:`covariance` forms the ``N x N`` matrix.

    Attributes
    ----------
    exposures : ndarray (N, P)
        ``X``.
    factor_cov : ndarray (P, P)
        ``F`` (PSD, may be singular).
    specific_var : ndarray (N,)
        ``d > 0``.
    assets : ndarray of int (N,), optional
        Positions of these stocks in the full universe.
    """

    exposures: np.ndarray
    factor_cov: np.ndarray
    specific_var: np.ndarray
    assets: np.ndarray | None = None

    @property
    def n_assets(self) -> int:
        """``N``, the rows of ``X``."""
        return self.exposures.shape[0]

    def covariance(self) -> np.ndarray:
        """Dense ``(N, N)`` covariance -- for tests and small ``N`` only."""
        X = self.exposures
        return X @ self.factor_cov @ X.T + np.diag(self.specific_var)

    def factor_loadings(self) -> np.ndarray:
        """``L = X F^{1/2}`` (N, P) with ``L L' = X F X'`` (symmetric PSD square root of ``F``)."""
        e, U = np.linalg.eigh(self.factor_cov)
        return self.exposures @ (U * np.sqrt(np.clip(e, 0.0, None))) @ U.T

    def portfolio_variance(self, w: np.ndarray) -> np.ndarray | float:
        """``w' Sigma w`` for ``w`` (N,) -> float or (N, M) -> (M,), in ``O(N P)``."""
        b = self.exposures.T @ w
        d = self.specific_var if w.ndim == 1 else self.specific_var[:, None]
        return (b * (self.factor_cov @ b)).sum(axis=0) + (d * w**2).sum(axis=0)

    def solve(self, b: np.ndarray) -> np.ndarray:
        """``Sigma^{-1} b`` for ``b`` (N,) or (N, M) by Woodbury, valid for singular ``F``.

        ``Sigma^{-1} b = D^{-1} b - D^{-1} X (I + F X' D^{-1} X)^{-1} F X' D^{-1} b``
        (the usual ``(F^{-1} + X' D^{-1} X)^{-1}`` written as ``(I + F X'D^{-1}X)^{-1} F``).
        """
        X, F = self.exposures, self.factor_cov
        d = self.specific_var if b.ndim == 1 else self.specific_var[:, None]
        db = b / d
        XtD = X.T / self.specific_var
        small = np.eye(F.shape[0]) + F @ (XtD @ X)
        return db - XtD.T @ np.linalg.solve(small, F @ (X.T @ db))

    def risk_scale(self) -> float:
        """``s = mean(d)``, the mean specific variance."""
        return self.specific_var.mean()

    def cvxpy_risk(self, w: cp.Expression) -> cp.Expression:
        """``w' Sigma w / s = ||L' w||^2 / s + sum_i (d_i / s) w_i^2`` in factor form (``L`` of :meth:`factor_loadings`)."""
        import cvxpy as cp

        s = self.risk_scale()
        return cp.sum_squares(self.factor_loadings().T @ w) / s + cp.sum_squares(
            cp.multiply(np.sqrt(self.specific_var / s), w)
        )


@dataclass
class RiskModelSeries:
    """Batched daily factor risk models for ``T`` days, ``N`` stocks, ``P`` factors.

    Attributes
    ----------
    exposures : ndarray (T, N, P)
        ``X_t`` known at ``t`` (NaN = not covered).
    factor_cov : ndarray (T, P, P)
        ``F_t`` (NaN before enough history).
    specific_var : ndarray (T, N)
        ``d_t``.
    names : list of str
        Factor names.
    mask : ndarray of bool (T, N), optional
        Universe; :meth:`model` keeps only these stocks.
    vra_scale : ndarray (T,)
        VRA multiplier applied to ``F_t``.
    """

    exposures: np.ndarray
    factor_cov: np.ndarray
    specific_var: np.ndarray
    names: list[str]
    mask: np.ndarray | None = None
    vra_scale: np.ndarray | None = None

    @property
    def valid_days(self) -> np.ndarray:
        """Indices ``t`` with a factor covariance forecast."""
        return np.flatnonzero(np.isfinite(self.factor_cov).all(axis=(1, 2)))

    def model(self, t: int) -> FactorRiskModel | None:
        """Day ``t``'s model over covered stocks (finite ``X`` and ``d``, in ``mask``); ``None`` without a forecast."""
        F = self.factor_cov[t]
        if not np.isfinite(F).all():
            return None
        ok = np.isfinite(self.exposures[t]).all(axis=1) & np.isfinite(self.specific_var[t])
        if self.mask is not None:
            ok &= self.mask[t]
        assets = np.flatnonzero(ok)
        if assets.size == 0:
            return None
        return FactorRiskModel(self.exposures[t, assets], F, self.specific_var[t, assets], assets)


def build_risk_models(
    cs: CrossSectionResult,
    exposures_full: np.ndarray,
    *,
    risk: RiskConfig,
    mask: np.ndarray | None = None,
    specific_buckets: np.ndarray | None = None,
) -> RiskModelSeries:
    """Daily factor risk models from a cross-sectional regression.

    Parameters
    ----------
    cs : CrossSectionResult
        Regression of day-``t`` returns on exposures known before them.
    exposures_full : ndarray (T, N, P)
        Design ``[country, sectors, factors]`` known at ``t`` (unlagged), same columns as ``cs.names``.
    risk : RiskConfig
        The ``risk`` section, passed whole: half-lives, VRA, Newey-West lags, eigenfactor adjustment
        (100 simulations when on), minimum history and seed (:func:`factor_covariance`), specific
        half-life and shrinkage (:func:`specific_variance`).
    mask : ndarray of bool (T, N), optional
        Universe of each day's model.
    specific_buckets : ndarray, optional
        See :func:`specific_variance`.

    Returns
    -------
    RiskModelSeries
        ``Sigma_t = X_t F_t X_t' + D_t`` forecasts the returns of day ``t + 1``.
    """
    if exposures_full.shape[2] != len(cs.names) or exposures_full.shape[:2] != cs.residuals.shape:
        raise ValueError(
            f"build_risk_models: exposures_full {exposures_full.shape} does not match the regression "
            f"(T, N) = {cs.residuals.shape} with P = {len(cs.names)} factors {cs.names}"
        )
    fc = factor_covariance(
        cs.factor_returns,
        corr_half_life=risk.corr_half_life,
        vol_half_life=risk.vol_half_life,
        vra_half_life=risk.vra_half_life,
        newey_west_lags=risk.newey_west_lags,
        eigen_adjust_sims=EIGEN_ADJUST_SIMS if risk.eigen_adjust else 0,
        seed=risk.seed,
        min_history=risk.min_history,
    )
    d = specific_variance(
        cs.residuals, half_life=risk.specific_half_life, shrinkage=risk.specific_shrinkage, buckets=specific_buckets, mask=mask
    )
    return RiskModelSeries(exposures_full, fc.cov, d, list(cs.names), mask, fc.vra_scale)
