"""Dense covariance estimators beyond the paper (the PCA exposures of SRM are :mod:`riskstudy.factors.srm`).

The trailing-window estimators -- sample covariance, Ledoit-Wolf shrinkage
(:class:`sklearn.covariance.LedoitWolf`) and POET (Fan, Liao & Mincheva 2013, via
:class:`qlib.model.riskmodel.POETCovEstimator`) -- have no factor structure to
exploit and necessarily produce a dense ``N x N`` matrix; that is fine for the
study's ``N ~ 300`` universes. They are wrapped in :class:`DenseRiskModel`, a
:class:`~riskstudy.risk.model.RiskModel` like
:class:`~riskstudy.risk.covariance.FactorRiskModel`, so that portfolios and forecast
evaluation treat all models alike.

Window convention: the estimate at day ``t`` uses return rows ``t - window + 1 .. t``
(all known at ``t``); stocks need ``min_obs`` finite returns in the window, missing
returns are set to the stock's window mean (0 after demeaning).

The sample covariance of ``n`` demeaned observations has rank ``<= n - 1``: with a window of
``n <= N`` days it is singular and defines no GMV portfolio, so :func:`trailing_covariance`
refuses it (the study's 252-day window and ~300 stocks are such a case). Ledoit-Wolf
(shrinkage toward a scaled identity) is positive definite at any window; a covariance that
is not positive definite is an error in :meth:`DenseRiskModel.solve`, never silently ridged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from sklearn.covariance import EmpiricalCovariance, LedoitWolf

from riskstudy.features.windows import trailing_window
from riskstudy.risk.model import RiskModel

if TYPE_CHECKING:
    import cvxpy as cp

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DenseRiskModel(RiskModel):
    """A dense covariance forecast ``Sigma`` (N, N) as a :class:`~riskstudy.risk.model.RiskModel`.

    Attributes
    ----------
    cov : ndarray (N, N)
    assets : ndarray of int (N,), optional
        Positions of these stocks in the full universe.
    """

    cov: np.ndarray
    assets: np.ndarray | None = None

    @property
    def n_assets(self) -> int:
        """``N``, the rows of ``cov``."""
        return self.cov.shape[0]

    def covariance(self) -> np.ndarray:
        """``Sigma`` itself (N, N)."""
        return self.cov

    def portfolio_variance(self, w: np.ndarray) -> np.ndarray | float:
        """``w' Sigma w`` for ``w`` (N,) or (N, M)."""
        return (w * (self.cov @ w)).sum(axis=0)

    def solve(self, b: np.ndarray) -> np.ndarray:
        """``Sigma^{-1} b`` by Cholesky.

        Raises
        ------
        numpy.linalg.LinAlgError
            If ``Sigma`` is not positive definite: a singular estimate has no inverse (and no
            GMV portfolio), and no ridge is added behind the caller's back.
        """
        try:
            return cho_solve(cho_factor(self.cov), b)
        except np.linalg.LinAlgError as err:
            raise np.linalg.LinAlgError(
                f"DenseRiskModel.solve: the {self.n_assets} x {self.n_assets} covariance is not positive definite "
                "(singular estimate, e.g. a sample covariance from no more observations than stocks); "
                "use a shrinkage or factor estimator (ledoit_wolf, poet)"
            ) from err

    def risk_scale(self) -> float:
        """``s = mean_i Sigma_ii``, the mean variance."""
        return np.diag(self.cov).mean()

    def cvxpy_risk(self, w: cp.Expression) -> cp.Expression:
        """``w' (Sigma / s) w`` as ``quad_form`` with ``Sigma / s`` wrapped as PSD (not checked)."""
        import cvxpy as cp

        return cp.quad_form(w, cp.psd_wrap(self.cov / self.risk_scale()))


# ------------------------------------------------------------ estimators
def sample_covariance(x: np.ndarray) -> np.ndarray:
    """Sample (maximum-likelihood, ``1/n``) covariance of ``x`` (n, N) -> (N, N)."""
    return EmpiricalCovariance().fit(x).covariance_


def ledoit_wolf_covariance(x: np.ndarray) -> np.ndarray:
    """Ledoit-Wolf shrinkage toward a scaled identity, ``x`` (n, N) -> (N, N)."""
    return LedoitWolf().fit(x).covariance_


def poet_covariance(x: np.ndarray, *, n_factors: int = 5, thresh: float = 1.0, method: str = "soft") -> np.ndarray:
    """POET: ``K`` principal components plus a thresholded residual covariance.

    ``Sigma = sum_{i<=K} l_i l_i' + S_u^tau`` where the residual correlations are
    soft/hard thresholded at ``tau = thresh * (1/sqrt(N) + sqrt(log N / n))``
    (qlib's implementation of Fan, Liao & Mincheva 2013).

    Parameters
    ----------
    x : ndarray (n, N)
        Returns (finite).
    n_factors : int
    thresh : float
    method : {"soft", "hard", "scad"}

    Returns
    -------
    ndarray (N, N)
    """
    from qlib.model.riskmodel import POETCovEstimator  # heavy import, only when used

    est = POETCovEstimator(
        num_factors=n_factors, thresh=thresh, thresh_method=method, nan_option="fill", scale_return=False
    )
    return np.real(est.predict(x, is_price=False))


ESTIMATORS: dict[str, Callable[..., np.ndarray]] = {
    "sample": sample_covariance,
    "ledoit_wolf": ledoit_wolf_covariance,
    "poet": poet_covariance,
}


def trailing_covariance(
    returns: np.ndarray,
    t: int,
    *,
    method: str = "ledoit_wolf",
    window: int = 252,
    mask: np.ndarray | None = None,
    min_obs: int | None = None,
    **kwargs: Any,
) -> DenseRiskModel | None:
    """Dense covariance forecast at day ``t`` from the trailing window of returns.

    Parameters
    ----------
    returns : ndarray (T, N)
    t : int
        Forecast day (uses rows ``<= t``).
    method : {"sample", "ledoit_wolf", "poet"}
    window : int
        Trailing observations.
    mask : ndarray of bool (T, N), optional
        Universe at ``t``.
    min_obs : int, optional
        Finite returns a stock needs in the window (default ``window // 2``).
    **kwargs
        Passed to the estimator (e.g. ``n_factors`` for POET).

    Returns
    -------
    DenseRiskModel or None
        ``None`` when ``t + 1 < window`` or fewer than 2 stocks qualify.

    Raises
    ------
    ValueError
        For ``method="sample"`` when the window has no more rows than qualifying stocks: the
        demeaned sample covariance then has rank ``< N`` (singular).
    """
    if method not in ESTIMATORS:
        raise ValueError(f"trailing_covariance: unknown method {method!r}; choose one of {sorted(ESTIMATORS)}")
    if t + 1 < window:
        return None
    x, assets = trailing_window(returns, t, window=window, mask=mask, min_obs=min_obs)
    if assets.size < 2:
        return None
    if method == "sample" and x.shape[0] <= assets.size:
        raise ValueError(
            f"trailing_covariance: the sample covariance of {assets.size} stocks from {x.shape[0]} demeaned "
            f"observations (day {t}) has rank <= {x.shape[0] - 1} and is singular, so it defines no GMV portfolio; "
            "use a window longer than the number of stocks, or a defined estimator (ledoit_wolf, poet)"
        )
    return DenseRiskModel(ESTIMATORS[method](x, **kwargs), assets)
