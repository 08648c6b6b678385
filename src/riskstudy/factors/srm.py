"""SRM: the statistical risk model, loadings on the principal components of trailing returns.

Config section ``srm`` (window, refit cadence); the number of components is chosen by the study
(``K = drm.n_factors`` and ``drm.k_double``, so SRM and DRM are compared at equal K).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import eigh
from tqdm.auto import tqdm

from riskstudy.config import Params, SRMConfig
from riskstudy.data.market import MarketData
from riskstudy.factors.base import FactorModel, ModelSpec, Run
from riskstudy.features.windows import trailing_window


def _top_components(x: np.ndarray, k: int) -> np.ndarray:
    """Unit-norm top-``k`` right singular vectors of ``x`` (n, N) -> (N, k), largest first.

    Uses the smaller Gram matrix: ``eig(x x')`` when ``n < N`` (then ``v = x' u / s``), else ``eig(x' x)``.
    """
    n, N = x.shape
    if n < N:
        e, u = eigh(x @ x.T, subset_by_index=[n - k, n - 1])
        v = x.T @ u / np.sqrt(np.clip(e, 1e-300, None))
    else:
        v = eigh(x.T @ x, subset_by_index=[N - k, N - 1])[1]
    return v[:, ::-1]


def pca_exposures(
    returns: np.ndarray,
    *,
    k: int,
    window: int = 252,
    refit_every: int = 1,
    mask: np.ndarray | None = None,
    min_obs: int | None = None,
) -> np.ndarray:
    """Statistical risk model exposures: loadings on the first ``k`` principal components.

    At each refit day ``t_r`` (every ``refit_every`` days from ``window - 1``) the
    demeaned trailing window ``returns[t_r-window+1 : t_r+1]`` of eligible stocks is
    decomposed, ``R = U S V'``; the first ``k`` columns of ``V`` (unit norm) are the loadings.
    Days ``t_r <= t < t_r + refit_every`` reuse them (point in time); stocks that
    were not eligible at ``t_r`` have NaN exposures until the next refit. Signs are
    fixed so that each loading vector has a positive dot product with the previous
    refit's over common stocks (the first one: positive sum). Each day the exposures
    are z-scored over the stocks in ``mask[t]``.

    Parameters
    ----------
    returns : ndarray (T, N)
    k : int
        Number of components.
    window : int
    refit_every : int
        1 = daily, 21 = monthly.
    mask : ndarray of bool (T, N), optional
        Universe (eligibility at refits, coverage each day).
    min_obs : int, optional
        Finite returns needed in the window (default ``window // 2``).

    Returns
    -------
    ndarray (T, N, k)
        NaN before ``window - 1`` and for uncovered stocks.
    """
    T, N = returns.shape
    raw = np.full((T, N, k), np.nan)
    prev = np.full((N, k), np.nan)
    for t in tqdm(range(window - 1, T, refit_every), desc="pca_exposures", leave=False, mininterval=5):
        x, assets = trailing_window(returns, t, window=window, mask=mask, min_obs=min_obs)
        if assets.size < k:
            continue
        v = _top_components(x, k)  # (n_assets, k)
        common = np.isfinite(prev[assets, 0])
        ref = (v[common] * prev[assets][common]).sum(axis=0) if common.any() else v.sum(axis=0)
        v = v * np.where(ref < 0, -1.0, 1.0)
        prev = np.full((N, k), np.nan)
        prev[assets] = v
        raw[t : t + refit_every, assets] = v
    if mask is not None:
        raw[~mask] = np.nan
    return _zscore_days(raw)


def _zscore_days(x: np.ndarray) -> np.ndarray:
    """Cross-sectional z-score of ``(T, N, K)`` per day and factor over finite entries (population std)."""
    n = np.isfinite(x).sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(x, axis=1, keepdims=True) / n
        std = np.sqrt(np.nansum((x - mean) ** 2, axis=1, keepdims=True) / n)
        return (x - mean) / std


class PCAFactorModel(FactorModel):
    """Rolling PCA loadings (:func:`pca_exposures`), refitted every ``config.refit_every`` days.

    Parameters
    ----------
    n_factors : int
        K, the number of principal components.
    config : SRMConfig
        The ``srm`` section (trailing ``window``, ``refit_every``).
    """

    def __init__(self, *, n_factors: int, config: SRMConfig) -> None:
        self.k, self.config = n_factors, config

    def fit(self, md: MarketData, *, train_rows: np.ndarray, valid_rows: np.ndarray | None = None) -> "PCAFactorModel":
        self.names_ = [f"pc{i + 1}" for i in range(self.k)]
        return self

    def exposures(self, md: MarketData, *, rows: np.ndarray) -> np.ndarray:
        p = md.panel
        x = pca_exposures(p["ret"], k=self.k, window=self.config.window, refit_every=self.config.refit_every, mask=p.member)
        return x[np.asarray(rows, dtype=np.int64)]


def static_loadings(returns: np.ndarray, *, k: int, mask: np.ndarray | None = None, min_obs: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` principal-component loadings of one window of returns.

    Each stock's returns are demeaned over its own finite, in-universe days; missing days count
    as 0 (no information), and stocks with fewer than ``min_obs`` such days get no loadings.

    Parameters
    ----------
    returns : ndarray, shape (T_w, N)
    k : int
    mask : ndarray of bool, shape (T_w, N), optional
        Universe membership (default: every finite return).
    min_obs : int

    Returns
    -------
    loadings : ndarray, shape (N, k)
        Unit-norm loadings, largest component first (NaN for stocks without enough history);
        each column's sign makes its sum positive.
    covered : ndarray of bool, shape (N,)
    """
    ok = np.isfinite(returns) & (True if mask is None else mask)
    covered = ok.sum(0) >= min_obs
    x = np.where(ok, returns, np.nan)[:, covered]
    x = np.nan_to_num(x - np.nanmean(x, axis=0), nan=0.0)
    v = _top_components(x, k)
    v = v * np.where(v.sum(0) < 0, -1.0, 1.0)
    out = np.full((returns.shape[1], k), np.nan)
    out[covered] = v
    return out, covered


class StaticPCAFactorModel(FactorModel):
    r"""Principal-component loadings of the training window, held fixed for every later day.

    The classical linear reference of the Deep Risk Model section: no refits and no information
    after the training window. :meth:`fit` computes :func:`static_loadings` of the training rows'
    returns; :meth:`exposures` gives each member its training loadings, z-scored per day over the
    members that have them, and 0 to members without training history (so they are explained by
    the intercept only; their share is ``coverage_``).

    Parameters
    ----------
    n_factors : int
        K.
    min_obs : int
        Training days a stock needs to get loadings.
    """

    def __init__(self, *, n_factors: int, min_obs: int = 60) -> None:
        self.k, self.min_obs = n_factors, min_obs

    def fit(self, md: MarketData, *, train_rows: np.ndarray, valid_rows: np.ndarray | None = None) -> "StaticPCAFactorModel":
        p = md.panel
        rows = np.asarray(train_rows, dtype=np.int64)
        self.loadings_, self.covered_ = static_loadings(p["ret"][rows], k=self.k, mask=p.member[rows], min_obs=self.min_obs)
        self.names_ = [f"spc{i + 1}" for i in range(self.k)]
        return self

    def exposures(self, md: MarketData, *, rows: np.ndarray) -> np.ndarray:
        member = md.panel.member[np.asarray(rows, dtype=np.int64)]  # (T, N)
        have = member & self.covered_[None, :]
        z = _zscore_days(np.where(have[..., None], self.loadings_[None], np.nan))
        z = np.where(member[..., None] & ~have[..., None], 0.0, z)
        self.coverage_ = float(have.sum() / max(member.sum(), 1))
        return z


def _runs(params: Params, market: str) -> list[Run]:
    d = params.drm
    ks = (("", d.n_factors), (" x2", d.k_double))
    return ([Run(f"SRM{sfx}", f"SRM{sfx}", factor_model=lambda k=k: PCAFactorModel(n_factors=k, config=params.srm))
             for sfx, k in ks] +
            [Run(f"PCA static{sfx}", f"PCA static{sfx}", factor_model=lambda k=k: StaticPCAFactorModel(n_factors=k))
             for sfx, k in ks])


#: Registered as ``srm``: rows "SRM" (K = ``drm.n_factors``) and "SRM x2" (K = ``drm.k_double``), and the
#: training-window loadings held fixed ("PCA static", "PCA static x2"; the linear reference of the DRM section).
SPEC = ModelSpec("srm", runs=_runs)
