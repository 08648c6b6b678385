"""Risk-forecast quality: bias statistics and QLIKE loss on GMV and random portfolios.

For a portfolio ``w_t`` formed at the close of ``t`` from the day-``t`` model, the
prediction is ``sigma_t^2 = w_t' Sigma_t w_t`` and the outcome ``r_{t+1} = w_t' r_{t+1}``
(missing returns count as 0, as in the backtest's default).

* Bias statistic: ``b = std(z)`` with ``z_t = r_{t+1} / sigma_t``; a calibrated model
  has ``b ~ 1`` with approximate 95% band ``1 +- sqrt(2 / T)`` under normality.
* QLIKE (Patton 2011): ``L_t = log sigma_t^2 + r_{t+1}^2 / sigma_t^2`` (default); it
  differs from the normalised form ``r^2/sigma^2 - log(r^2/sigma^2) - 1`` only by a term
  free of ``sigma``, so both rank models identically; the default is finite when ``r = 0``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from riskstudy.risk.model import RiskModel

logger = logging.getLogger(__name__)


@dataclass
class ForecastPanel:
    """Predicted variances and realised returns of ``M`` portfolios on ``D`` forecast days.

    Attributes
    ----------
    days : ndarray of int (D,)
        Forecast days ``t`` (outcome on ``t + 1``).
    realised : ndarray (D, M)
    variance : ndarray (D, M)
    names : list of str
        ``M`` portfolio names (named portfolios first, then ``random_0 ...``).
    """

    days: np.ndarray
    realised: np.ndarray
    variance: np.ndarray
    names: list[str]


def bias_statistic(realised: np.ndarray, variance: np.ndarray, *, window: int | None = None) -> np.ndarray:
    """Standard deviation of standardised returns ``z = r / sigma``.

    Parameters
    ----------
    realised : ndarray (T,) or (T, M)
    variance : ndarray like ``realised``
        Predicted variances.
    window : int, optional
        Rolling window; ``None`` = full period.

    Returns
    -------
    ndarray
        ``(M,)`` (or scalar array) for the full period; ``(T, M)`` rolling (NaN until a full window).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        z = realised / np.sqrt(variance)
    if window is None:
        n = np.isfinite(z).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.nansum(z, axis=0) / n
            return np.sqrt(np.nansum((z - mean) ** 2, axis=0) / (n - 1))
    return pd.DataFrame(z).rolling(window, min_periods=window).std(ddof=1).to_numpy().reshape(np.shape(z))


def bias_band(n: int) -> tuple[float, float]:
    """Approximate 95% band ``1 +- sqrt(2 / n)`` of the bias statistic over ``n`` observations."""
    h = float(np.sqrt(2.0 / n))
    return 1.0 - h, 1.0 + h


def qlike(realised: np.ndarray, variance: np.ndarray, *, normalised: bool = False) -> np.ndarray:
    """Mean QLIKE loss over time (lower is better).

    Parameters
    ----------
    realised : ndarray (T,) or (T, M)
    variance : ndarray like ``realised``
    normalised : bool
        ``False``: ``log sigma^2 + r^2 / sigma^2``. ``True``: ``r^2/sigma^2 - log(r^2/sigma^2) - 1``
        (>= 0, observations with ``r = 0`` dropped).

    Returns
    -------
    ndarray (M,) or scalar array
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = realised**2 / variance
        loss = ratio - np.log(ratio) - 1.0 if normalised else np.log(variance) + ratio
    loss = np.where(np.isfinite(loss), loss, np.nan)
    n = np.isfinite(loss).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.nansum(loss, axis=0) / n)


def random_portfolios(n_assets: int, n_portfolios: int, *, seed: int = 0, long_only: bool = True) -> np.ndarray:
    """Random weights (N, M): long-only ``Dirichlet(1)``, else Gaussian scaled to unit gross exposure."""
    rng = np.random.default_rng(seed)
    if long_only:
        g = rng.standard_exponential((n_assets, n_portfolios))
        return g / g.sum(axis=0)
    g = rng.standard_normal((n_assets, n_portfolios))
    return g / np.abs(g).sum(axis=0)


def restrict_portfolios(random: np.ndarray, assets: np.ndarray) -> np.ndarray:
    """Full-universe portfolios restricted to the stocks ``assets`` and renormalised.

    ``W[:, j] = random[assets, j] / sum_i random[assets_i, j]`` (a sum below 1e-12 is taken as 1e-12).

    Parameters
    ----------
    random : ndarray (N_universe, M)
        Long-only weights, e.g. :func:`random_portfolios`.
    assets : ndarray of int (N,)

    Returns
    -------
    ndarray (N, M)
    """
    r = random[assets]
    return r / np.maximum(r.sum(axis=0), 1e-12)


def portfolio_outcomes(
    model: RiskModel, next_returns: np.ndarray, *, named: Sequence[np.ndarray], random: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Realised next-day return and predicted variance of one day's portfolios over ``model``'s stocks.

    The portfolios are ``W = [named..., random[assets] / 1'random[assets]]`` (N, M): the named ones
    as given, then the full-universe random portfolios restricted to the model's stocks and
    renormalised (:func:`restrict_portfolios`). Realised ``W' r_{t+1}`` with missing returns as 0;
    predicted ``diag(W' Sigma_t W)`` (:meth:`RiskModel.portfolio_variance`).

    Parameters
    ----------
    model : RiskModel
        Day ``t``'s forecast over its ``N`` stocks.
    next_returns : ndarray (N_universe,)
        Returns of day ``t + 1`` over the full universe.
    named : sequence of ndarray (N,)
        Weights over the model's stocks (e.g. its GMV portfolio).
    random : ndarray (N_universe, M_random)
        Full-universe random portfolios (:func:`random_portfolios`).

    Returns
    -------
    realised, variance : ndarray (M,)
        ``M = len(named) + M_random``.
    """
    assets = model.positions()
    W = np.column_stack([*named, restrict_portfolios(random, assets)])
    return np.nan_to_num(next_returns[assets]) @ W, model.portfolio_variance(W)


def forecast_panel(
    model_at: Callable[[int], RiskModel | None],
    returns: np.ndarray,
    days: Iterable[int],
    *,
    portfolios: dict[str, Callable[[RiskModel], np.ndarray]] | None = None,
    n_random: int = 100,
    seed: int = 0,
) -> ForecastPanel:
    """Predicted variance and next-day return of GMV and random portfolios.

    Random portfolios are long-only ``Dirichlet(1)`` weights drawn once over the full
    universe (seeded), restricted to each day's covered stocks and renormalised, so
    the same portfolios are tracked through time (:func:`portfolio_outcomes`).

    Parameters
    ----------
    model_at : callable ``t -> model or None``
        E.g. ``RiskModelSeries.model`` or a dense estimator; models carry ``assets``.
    returns : ndarray (T, N)
    days : iterable of int
        Forecast days ``t < T - 1``.
    portfolios : dict name -> callable ``model -> weights over model's stocks``
        Default ``{"gmv": model.gmv_weights()}``.
    n_random : int
    seed : int

    Returns
    -------
    ForecastPanel
        Rows of days without a model are NaN.
    """
    portfolios = portfolios or {"gmv": lambda m: m.gmv_weights()}
    T, N = returns.shape
    days = np.asarray(list(days), dtype=int)
    if days.size and days.max() >= T - 1:
        raise ValueError(f"forecast_panel: forecast day {days.max()} has no next-day return (T = {T})")
    rand = random_portfolios(N, n_random, seed=seed)
    M = len(portfolios) + n_random
    realised, variance = np.full((len(days), M), np.nan), np.full((len(days), M), np.nan)
    for i, t in enumerate(tqdm(days, desc="forecast_panel", leave=False, mininterval=5)):
        model = model_at(int(t))
        if model is None:
            continue
        named = [fn(model) for fn in portfolios.values()]
        realised[i], variance[i] = portfolio_outcomes(model, returns[t + 1], named=named, random=rand)
    return ForecastPanel(days, realised, variance, list(portfolios) + [f"random_{j}" for j in range(n_random)])
